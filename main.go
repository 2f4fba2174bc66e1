// Command latch is an OAuth 2.1 authorization server and OpenID Connect
// provider that delegates the login and consent decision to a host app.
package main

func main() {}
