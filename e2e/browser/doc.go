// Package browser holds the real-browser test of the example story: Debian's
// chromium, driven by chromedp, clicks through "Sign in with ExampleApp"
// (examples/stack). Outside CI it skips when chromium is missing; under
// CI=true it fails instead.
package browser
