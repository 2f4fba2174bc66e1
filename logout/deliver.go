package logout

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/ory/fosite/token/jwt"

	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/secret"
	"github.com/latchhq/latch/storage"
)

// maxPerPass bounds one pass, so a long queue cannot keep a pass from
// seeing ctx end for long.
const maxPerPass = 100

// Run delivers due logout tokens until ctx ends: every interval, and at
// once when a logout through this instance queued some.
func (s *Service) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := s.DeliverDue(ctx); err != nil && ctx.Err() == nil {
			// The database is away: the rows stay queued and the next
			// pass tries again.
			s.log.Warn("back-channel logout deliveries", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
	}
}

// DeliverDue sends every due logout token once and returns how many were
// delivered. Failures are rescheduled or, after the last attempt,
// dropped; each outcome is audited.
func (s *Service) DeliverDue(ctx context.Context) (int, error) {
	delivered := 0
	for range maxPerPass {
		if err := ctx.Err(); err != nil {
			return delivered, err
		}
		lease := secret.New()
		d, err := s.store.ClaimLogoutDelivery(ctx, lease, s.opt.Lease)
		if storage.IsNotFound(err) {
			return delivered, nil
		}
		if err != nil {
			return delivered, err
		}
		ok, err := s.deliver(ctx, d, lease)
		if err != nil {
			return delivered, err
		}
		if ok {
			delivered++
		}
	}
	return delivered, nil
}

// deliver sends one claimed token and records the outcome; the error is
// only for the database, a failed send is an outcome.
func (s *Service) deliver(ctx context.Context, d *storage.LogoutDelivery, lease string) (bool, error) {
	c, err := s.store.Client(ctx, d.ClientID)
	if storage.IsNotFound(err) {
		// The client was deleted after the logout: no one to tell.
		return false, ignoreLostLease(s.store.FinishLogoutDelivery(ctx, d.ID, lease))
	}
	if err != nil {
		return false, err
	}
	sendErr := s.send(ctx, c, d)
	event := audit.Event{Name: audit.LogoutDelivered, User: d.Subject, ClientID: d.ClientID,
		Details: map[string]any{"jti": d.ID, "sid": d.SID, "attempt": d.Attempts}}
	switch {
	case sendErr == nil:
		err = s.store.FinishLogoutDelivery(ctx, d.ID, lease)
	case d.Attempts >= s.opt.MaxAttempts:
		event.Name, event.Outcome = audit.LogoutFailed, audit.Failure
		event.Details["error"], event.Details["final"] = sendErr.Error(), true
		err = s.store.FinishLogoutDelivery(ctx, d.ID, lease)
	default:
		next := s.opt.Now().Add(s.backoff(d.Attempts))
		event.Name, event.Outcome = audit.LogoutFailed, audit.Failure
		event.Details["error"], event.Details["final"], event.Details["next_attempt_at"] = sendErr.Error(), false, next.UTC()
		err = s.store.RetryLogoutDelivery(ctx, d.ID, lease, next, sendErr.Error())
	}
	if errors.Is(err, storage.ErrStateConflict) {
		// The lease ran out and another instance took the row: its
		// outcome is the one that counts.
		s.log.Warn("back-channel logout: lease lost during delivery", "client_id", d.ClientID)
		return false, nil
	}
	if err != nil {
		return false, err
	}
	s.audit.Record(ctx, event)
	return sendErr == nil, nil
}

func ignoreLostLease(err error) error {
	if errors.Is(err, storage.ErrStateConflict) {
		return nil
	}
	return err
}

// backoff is the wait after the attempt-th failure: RetryDelay doubling,
// capped at an hour.
func (s *Service) backoff(attempt int) time.Duration {
	d := s.opt.RetryDelay
	for i := 1; i < attempt && d < maxRetryDelay; i++ {
		d *= 2
	}
	return min(d, maxRetryDelay)
}

// send signs a fresh logout token for d and posts it to the client.
func (s *Service) send(ctx context.Context, c *storage.Client, d *storage.LogoutDelivery) error {
	if c.BackchannelLogoutURI == "" {
		return errors.New("the client no longer has a backchannel_logout_uri")
	}
	tok, err := s.Token(ctx, c, d)
	if err != nil {
		return err
	}
	return s.poster.PostForm(ctx, c.BackchannelLogoutURI, url.Values{"logout_token": {tok}})
}

// Token signs the logout token of d for c (Back-Channel Logout 1.0 §2.4):
// iss, aud, iat, exp, jti, sub and sid, the back-channel logout event, typ
// logout+jwt, and never a nonce, so it cannot pass for an ID token. The jti
// is the delivery's, the same on every attempt.
func (s *Service) Token(ctx context.Context, c *storage.Client, d *storage.LogoutDelivery) (string, error) {
	now := s.opt.Now()
	claims := jwt.MapClaims{
		"iss":    s.opt.Issuer,
		"aud":    c.ID,
		"iat":    now.Unix(),
		"exp":    now.Add(TokenLifetime).Unix(),
		"jti":    d.ID,
		"sub":    d.Subject,
		"sid":    d.SID,
		"events": map[string]any{EventBackchannelLogout: map[string]any{}},
	}
	sctx, signer := s.signer(ctx, c)
	raw, _, err := signer.Generate(sctx, claims, &jwt.Headers{Extra: map[string]any{"typ": "logout+jwt"}})
	if err != nil {
		return "", fmt.Errorf("sign logout token: %w", err)
	}
	return raw, nil
}
