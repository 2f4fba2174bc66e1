// Package logout ends Latch login sessions and tells relying parties: it
// deletes the sessions, revokes what config says the end revokes, and
// queues an OpenID Connect Back-Channel Logout 1.0 token for every client
// that received a grant under them, all in one transaction. A background
// worker on every instance delivers the queue from the database, so an
// instance that dies mid-delivery loses nothing and two instances never
// send one token twice.
package logout

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"time"

	"github.com/ory/fosite/token/jwt"

	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/secret"
	"github.com/latchhq/latch/storage"
)

// Store is what ending sessions and delivering logout tokens need.
type Store interface {
	InTx(ctx context.Context, fn func(ctx context.Context) error) error
	Client(ctx context.Context, id string) (*storage.Client, error)
	EndLoginSessions(ctx context.Context, sel storage.SessionSelector) ([]storage.EndedSession, error)
	RevokeGrant(ctx context.Context, requestID string) error
	EnqueueLogoutDeliveries(ctx context.Context, ds []storage.LogoutDelivery) error
	ClaimLogoutDelivery(ctx context.Context, leaseToken string, lease time.Duration) (*storage.LogoutDelivery, error)
	FinishLogoutDelivery(ctx context.Context, id, leaseToken string) error
	RetryLogoutDelivery(ctx context.Context, id, leaseToken string, next time.Time, lastError string) error
}

// Signer signs logout tokens with Latch's signing keys (keys.Signer).
type Signer interface {
	Generate(ctx context.Context, claims jwt.MapClaims, header jwt.Mapper) (string, string, error)
}

// SignerFor picks the signer for a client's logout tokens: the algorithm
// its ID tokens use, so the relying party verifies both the same way.
type SignerFor func(ctx context.Context, c *storage.Client) (context.Context, Signer)

// Poster sends a form to a URL a client registered (the hardened outbound
// client); a nil error means a 2xx answer.
type Poster interface {
	PostForm(ctx context.Context, rawURL string, form url.Values) error
}

// Options tune the service; zero values take the config defaults.
type Options struct {
	Issuer string
	// RevokeTokens is config.LogoutConfig.RevokeTokens.
	RevokeTokens string
	MaxAttempts  int
	RetryDelay   time.Duration
	// Lease is how long a claimed delivery is held before another
	// instance may take it over; it must outlast one delivery (5 s).
	Lease time.Duration
	Now   func() time.Time
}

// TokenLifetime is how long a logout token is valid; receivers check exp.
const TokenLifetime = 2 * time.Minute

// EventBackchannelLogout is the events member that makes a JWT a logout
// token (Back-Channel Logout 1.0 §2.4).
const EventBackchannelLogout = "http://schemas.openid.net/event/backchannel-logout"

// maxRetryDelay caps the doubling backoff.
const maxRetryDelay = time.Hour

// Service ends sessions and delivers logout tokens.
type Service struct {
	store  Store
	signer SignerFor
	poster Poster
	audit  *audit.Recorder
	log    *slog.Logger
	opt    Options
	// wake nudges this instance's worker when a logout through it queued
	// deliveries, so they go out at once rather than at the next poll.
	wake chan struct{}
}

// New builds the service.
func New(store Store, signer SignerFor, poster Poster, rec *audit.Recorder, log *slog.Logger, o Options) *Service {
	d := config.Default().Logout
	if o.RevokeTokens == "" {
		o.RevokeTokens = d.RevokeTokens
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = d.BackchannelMaxAttempts
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = d.BackchannelRetryDelay
	}
	if o.Lease <= 0 {
		o.Lease = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	return &Service{store: store, signer: signer, poster: poster, audit: rec, log: log, opt: o, wake: make(chan struct{}, 1)}
}

// Reasons a session ends, as the audit log shows them.
const (
	ReasonLogout = "rp_logout"
	ReasonAPI    = "api"
)

// End ends the selected login sessions and returns how many there were.
// Everything that follows from the end commits with it: the revocations
// config asks for and one queued logout token per client with a
// back-channel URI that received a grant under each session.
func (s *Service) End(ctx context.Context, sel storage.SessionSelector, reason string) (int, error) {
	var (
		ended   []storage.EndedSession
		queued  int
		revoked int
	)
	err := s.store.InTx(ctx, func(ctx context.Context) error {
		var err error
		queued, revoked = 0, 0
		if ended, err = s.store.EndLoginSessions(ctx, sel); err != nil {
			return err
		}
		var ds []storage.LogoutDelivery
		for _, e := range ended {
			var notified []string
			for _, g := range e.Grants {
				if s.revokes(g) {
					if err := s.store.RevokeGrant(ctx, g.RequestID); err != nil {
						return fmt.Errorf("revoke a grant of an ended session: %w", err)
					}
					revoked++
				}
				if slices.Contains(notified, g.ClientID) {
					continue
				}
				notified = append(notified, g.ClientID)
				c, err := s.store.Client(ctx, g.ClientID)
				if storage.IsNotFound(err) {
					continue
				}
				if err != nil {
					return fmt.Errorf("load client %s: %w", g.ClientID, err)
				}
				if c.BackchannelLogoutURI != "" {
					ds = append(ds, storage.LogoutDelivery{ID: secret.New(), ClientID: c.ID, Subject: e.Subject, SID: e.SID})
				}
			}
		}
		queued = len(ds)
		return s.store.EnqueueLogoutDeliveries(ctx, ds)
	})
	if err != nil {
		return 0, err
	}
	for _, e := range ended {
		s.audit.Record(ctx, audit.Event{Name: audit.SessionEnded, User: e.Subject,
			Details: map[string]any{"reason": reason, "sid": e.SID, "grants": len(e.Grants)}})
	}
	if len(ended) > 0 {
		s.log.Debug("login sessions ended", "reason", reason, "sessions", len(ended), "logout_tokens", queued, "revoked_grants", revoked)
	}
	if queued > 0 {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	return len(ended), nil
}

// revokes says whether ending a session revokes a grant issued under it.
func (s *Service) revokes(g storage.SessionGrant) bool {
	switch s.opt.RevokeTokens {
	case config.RevokeAll:
		return true
	case config.RevokeNone:
		return false
	default:
		// offline_access asks for access while the user is not logged in
		// (OpenID Connect Core §11): ending the session does not end it.
		return !g.Offline
	}
}
