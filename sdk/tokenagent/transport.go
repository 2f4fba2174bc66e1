package tokenagent

import (
	"errors"
	"net/http"
	"strings"
)

// Transport returns a RoundTripper that authorises each request with the
// agent's token (Bearer, or DPoP with a fresh proof) over base (nil:
// http.DefaultTransport). On 401 it retries once: with the server's DPoP
// nonce when asked for one, or with a refreshed token after invalid_token
// (a token revoked, or signed by a key the API does not know yet).
func (a *Agent) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{a: a, base: base}
}

type transport struct {
	a    *Agent
	base http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	tok, err := t.a.TokenContext(req.Context())
	if err != nil {
		return nil, err
	}
	resp, err := t.send(req, tok)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	challenge := strings.Join(resp.Header.Values("WWW-Authenticate"), ", ")
	retry := false
	switch {
	case strings.Contains(challenge, "use_dpop_nonce") && resp.Header.Get("DPoP-Nonce") != "":
		retry = true
	case strings.Contains(challenge, "invalid_token"):
		t.a.Invalidate(tok)
		if tok, err = t.a.TokenContext(req.Context()); err != nil {
			resp.Body.Close()
			return nil, err
		}
		retry = true
	}
	if !retry || (req.Body != nil && req.GetBody == nil) {
		return resp, nil
	}
	resp.Body.Close()
	r2 := req
	if req.GetBody != nil {
		b, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		r2 = req.Clone(req.Context())
		r2.Body = b
	}
	return t.send(r2, tok)
}

func (t *transport) send(req *http.Request, tok *Token) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", tok.Type()+" "+tok.AccessToken)
	if tok.Type() == "DPoP" {
		if t.a.cfg.DPoP == nil {
			return nil, errors.New("tokenagent: a DPoP token but no DPoP key configured")
		}
		u := *r.URL
		u.RawQuery, u.Fragment = "", ""
		p, err := t.a.cfg.DPoP.Proof(r.Method, u.String(), tok.AccessToken, t.a.nonce(u.String()))
		if err != nil {
			return nil, err
		}
		r.Header.Set("DPoP", p)
	}
	resp, err := t.base.RoundTrip(r)
	if err == nil {
		t.a.rememberNonce(r.URL.String(), resp)
	}
	return resp, err
}
