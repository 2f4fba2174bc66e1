package resource

import (
	"crypto/subtle"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/latchhq/latch/sdk/dpop"
)

// checkProof applies RFC 9449 §4.3 and §7.1 to the request's proof for a
// token bound to jkt: one proof, well formed and signed, by the bound key,
// for this method and URL, recent, with the token's ath, never seen before.
func (v *Verifier) checkProof(r *http.Request, token, jkt string) error {
	proofs := r.Header.Values("DPoP")
	switch {
	case len(proofs) == 0:
		return invalidProof("a DPoP proof is required with a DPoP-bound token")
	case len(proofs) > 1:
		return invalidProof("more than one DPoP header")
	}
	p, err := dpop.Parse(proofs[0])
	if err != nil {
		return invalidProof(err.Error())
	}
	now := v.now()
	window := v.cfg.DPoP.ProofWindow + v.cfg.Leeway
	switch {
	case subtle.ConstantTimeCompare([]byte(p.JKT), []byte(jkt)) != 1:
		return invalidProof("the proof is signed by another key than the token is bound to")
	case p.Method != r.Method:
		return invalidProof("htm does not match the request method")
	case !sameURL(p.URL, v.requestURL(r)):
		return invalidProof("htu does not match the request URL")
	case p.IssuedAt.Before(now.Add(-window)) || p.IssuedAt.After(now.Add(window)):
		return invalidProof("iat is outside the accepted window")
	case subtle.ConstantTimeCompare([]byte(p.ATH), []byte(dpop.ATH(token))) != 1:
		return invalidProof("ath does not match the access token")
	}
	// Remember the jti only after every other check passed, so a bad proof
	// never burns one; keyed by thumbprint so nobody burns another's jti.
	if !v.replay.add(p.JKT+"."+p.JTI, now.Add(2*window), now) {
		return invalidProof("the proof was already used")
	}
	return nil
}

// requestURL is the URL the client called, without query: from PublicURL
// when set (behind a proxy), else from the request itself.
func (v *Verifier) requestURL(r *http.Request) string {
	if v.cfg.PublicURL != "" {
		return strings.TrimRight(v.cfg.PublicURL, "/") + r.URL.EscapedPath()
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.EscapedPath()
}

// replayCache remembers proof jtis until they could no longer pass the iat
// window. It is per process: behind a load balancer without sticky
// sessions, a proof replayed to another instance within the window is not
// caught (use short windows, or put the API behind one instance).
type replayCache struct {
	mu    sync.Mutex
	max   int
	seen  map[string]time.Time
	sweep time.Time
}

// add records key and reports whether it was new.
func (c *replayCache) add(key string, until, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if exp, ok := c.seen[key]; ok && now.Before(exp) {
		return false
	}
	if len(c.seen) >= c.max || now.Sub(c.sweep) > time.Minute {
		for k, exp := range c.seen {
			if !now.Before(exp) {
				delete(c.seen, k)
			}
		}
		c.sweep = now
		if len(c.seen) >= c.max {
			return false
		}
	}
	c.seen[key] = until
	return true
}
