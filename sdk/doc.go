// Package sdk is the Go kit a host application uses beside Latch: approval
// (the consent step), resource (protecting the host app's API with Latch
// tokens), tokenagent (keeping a client's tokens fresh) and dpop (proofs of
// possession). It depends on the standard library and go-jose only, so a host
// app does not pull in Latch's server dependencies.
package sdk
