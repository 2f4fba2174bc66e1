package storage

import (
	"context"
	"net"
	"net/url"
	"slices"

	"github.com/ory/fosite"
)

// fosite checks a client's registered redirect URIs and authentication
// method against the request on its own, with rules Latch widens on
// purpose (SPEC §2): `localhost` joins the loopback any-port rule, and a
// client registered with either secret method may use the other. fosite
// asks the store for the client with no view of the request, so the caller
// names the relevant facts in the context and GetClient hands fosite a copy
// of the client tailored to them. The stored client never changes.

type requestedRedirectKey struct{}

// WithRequestedRedirect names the redirect_uri an authorization request
// sends, so GetClient can admit a `localhost` loopback redirect on any port.
func WithRequestedRedirect(ctx context.Context, uri string) context.Context {
	return context.WithValue(ctx, requestedRedirectKey{}, uri)
}

type secretMethodKey struct{}

// WithSecretMethod names the secret method (client_secret_basic or
// client_secret_post) a token-style request authenticates with.
func WithSecretMethod(ctx context.Context, method string) context.Context {
	return context.WithValue(ctx, secretMethodKey{}, method)
}

// IsSecretMethod reports whether m is one of the two shared-secret methods.
func IsSecretMethod(m string) bool { return m == "client_secret_basic" || m == "client_secret_post" }

// forRequest returns c, or a copy of it tailored to the request facts in
// ctx (see above).
func forRequest(ctx context.Context, c *Client) *Client {
	method, _ := ctx.Value(secretMethodKey{}).(string)
	redirect, _ := ctx.Value(requestedRedirectKey{}).(string)
	swapMethod := IsSecretMethod(method) && IsSecretMethod(c.TokenEndpointAuthMethod) && method != c.TokenEndpointAuthMethod
	addRedirect := redirect != "" && !slices.Contains(c.RedirectURIs, redirect) && c.MatchesLoopback(redirect)
	if !swapMethod && !addRedirect {
		return c
	}
	cp := c.clone()
	if swapMethod {
		cp.TokenEndpointAuthMethod = method
	}
	if addRedirect {
		cp.RedirectURIs = append(cp.RedirectURIs, redirect)
	}
	return cp
}

// MatchesLoopback reports whether requested is one of the client's
// registered loopback redirect URIs on another port (RFC 8252 §7.3): same
// scheme http, same host (127.0.0.1, [::1] or localhost), path and query.
func (c *Client) MatchesLoopback(requested string) bool {
	r, err := url.Parse(requested)
	if err != nil || r.Scheme != "http" || !IsLoopbackHost(r.Hostname()) || r.User != nil || r.Fragment != "" {
		return false
	}
	for _, reg := range c.RedirectURIs {
		g, err := url.Parse(reg)
		if err != nil || g.Scheme != "http" {
			continue
		}
		if g.Hostname() == r.Hostname() && g.Path == r.Path && g.RawQuery == r.RawQuery && IsLoopbackHost(g.Hostname()) {
			return true
		}
	}
	return false
}

// IsLoopbackHost reports whether host (without port or brackets) names the
// loopback interface: an IP loopback literal or `localhost`.
func IsLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// GetResponseModes lets fosite accept response_mode=query and form_post
// (SPEC §2); fragment (implicit and hybrid flows) stays refused.
func (c *Client) GetResponseModes() []fosite.ResponseModeType {
	return []fosite.ResponseModeType{fosite.ResponseModeDefault, fosite.ResponseModeQuery, fosite.ResponseModeFormPost}
}

var _ fosite.ResponseModeClient = (*Client)(nil)
