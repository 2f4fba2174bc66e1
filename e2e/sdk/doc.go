// Package sdke2e holds the SDK's whole-flow tests: sdk/approval,
// sdk/resource and sdk/tokenagent against a real Latch (the latchtest
// harness), which the SDK module itself cannot import.
package sdke2e
