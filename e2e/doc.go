// Package e2e runs Latch against relying-party libraries written outside
// this repository, in their own languages: clients/ holds a Node test
// suite driving openid-client, which TestNodeOpenIDClient runs with
// `node --test` against a real Latch server.
package e2e
