package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/ory/fosite"

	"github.com/latchhq/latch/dpop"
	"github.com/latchhq/latch/provider"
	"github.com/latchhq/latch/storage"
)

// The refresh reuse interval (SPEC §2; storage/refreshreplay.go has the
// rules). A rotation under a positive interval is recorded with the
// rotation and its response stored sealed under a key derived from the data
// key; a retry of the spent token is answered from there, byte for byte.

// replayWait bounds how long a retry that raced the first presentation
// waits for that presentation's response to be stored.
const replayWait = 3 * time.Second

// reuseInterval is the interval for the client a refresh request names:
// its own refresh_reuse_interval, else the server's.
func (s *Server) reuseInterval(c echo.Context) time.Duration {
	if s.replay == nil {
		return 0
	}
	if id := requestClientID(c.Request()); id != "" {
		if cl, err := s.store.Client(c.Request().Context(), id); err == nil && cl.RefreshReuseInterval > 0 {
			return time.Duration(cl.RefreshReuseInterval) * time.Second
		}
	}
	return s.opt.RefreshReuseInterval
}

// refreshSignature is the stored signature of an HMAC refresh token (the
// part after the dot, as fosite's strategy computes it).
func refreshSignature(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 2 {
		return ""
	}
	return parts[1]
}

func replayAAD(signature string) []byte { return []byte("refresh-replay/" + signature) }

// sealRefresh stores the response of a recorded rotation. A failure only
// costs a later retry its grace (it then counts as reuse), so it is logged.
func (s *Server) sealRefresh(ctx context.Context, r *storage.RefreshReuse, resp fosite.AccessResponder) {
	body, err := json.Marshal(resp.ToMap())
	if err == nil {
		err = s.store.SealRefreshResponse(context.WithoutCancel(ctx), r.Spent, s.replay.Seal(body, replayAAD(r.Spent)))
	}
	if err != nil {
		s.log.Warn("storing a refresh response for the reuse interval", "err", err)
	}
}

// replayRefresh answers a retry of a spent refresh token with the response
// its rotation gave, when that rotation is still retryable (unexpired,
// successor unused), was made for this client and, when bound, this DPoP
// key. It waits for a response still being stored by a concurrent first
// presentation. false: nothing was written.
func (s *Server) replayRefresh(c echo.Context, ar fosite.AccessRequester, proof *dpop.Proof) bool {
	if ar == nil || ar.GetClient() == nil {
		return false
	}
	ctx := c.Request().Context()
	sig := refreshSignature(ar.GetRequestForm().Get("refresh_token"))
	jkt := ""
	if proof != nil {
		jkt = proof.JKT
	}
	deadline := time.Now().Add(replayWait)
	for {
		row, err := s.store.RefreshReplay(ctx, sig)
		if err != nil || row.ClientID != ar.GetClient().GetID() || row.JKT != jkt {
			return false
		}
		if row.Response != "" {
			body, err := s.replay.Open(row.Response, replayAAD(sig))
			if err != nil {
				s.log.Warn("opening a stored refresh response", "err", err)
				return false
			}
			h := c.Response().Header()
			h.Set("Content-Type", "application/json;charset=UTF-8")
			h.Set("Cache-Control", "no-store")
			h.Set("Pragma", "no-cache")
			if proof != nil {
				s.setNonce(c)
			}
			c.Response().WriteHeader(http.StatusOK)
			_, _ = c.Response().Write(body)
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// lostRotation reports whether a refresh failed because the presented
// token was rotated concurrently (spent, or a serialization abort).
func lostRotation(err error) bool {
	return errors.Is(err, fosite.ErrInactiveToken) || errors.Is(err, fosite.ErrSerializationFailure) || errors.Is(err, storage.ErrRefreshRetry)
}

// boundJKT is the DPoP key the grant's new tokens are bound to.
func boundJKT(ar fosite.AccessRequester) string {
	if sess, ok := ar.GetSession().(*provider.Session); ok {
		return sess.JKT
	}
	return ""
}
