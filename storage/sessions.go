package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm/clause"
)

// Auth session states. A session moves pending → approved|denied → completed,
// each step by one conditional update, so it changes state exactly once.
const (
	AuthPending   = "pending"
	AuthApproved  = "approved"
	AuthDenied    = "denied"
	AuthCompleted = "completed"
)

var (
	// ErrExpired reports a session past its lifetime.
	ErrExpired = errors.New("storage: expired")
	// ErrStateConflict reports a session no longer in the state required.
	ErrStateConflict = errors.New("storage: state conflict")
)

// AuthSession is one authorization request waiting for, or carrying, the
// host app's decision.
type AuthSession struct {
	ID               string         `gorm:"column:id;primaryKey"`
	ClientID         string         `gorm:"column:client_id"`
	RequestForm      string         `gorm:"column:request_form"`
	RequestedScopes  []string       `gorm:"column:requested_scopes;serializer:json"`
	BrowserHash      string         `gorm:"column:browser_hash"`
	LoginSubject     string         `gorm:"column:login_subject"`
	State            string         `gorm:"column:state"`
	Subject          string         `gorm:"column:subject"`
	GrantedScopes    []string       `gorm:"column:granted_scopes;serializer:json"`
	Claims           map[string]any `gorm:"column:claims;serializer:json"`
	Remember         bool           `gorm:"column:remember"`
	AuthTime         *time.Time     `gorm:"column:auth_time"`
	ACR              string         `gorm:"column:acr"`
	ErrorDescription string         `gorm:"column:error_description"`
	CreatedAt        time.Time      `gorm:"column:created_at"`
	ExpiresAt        time.Time      `gorm:"column:expires_at"`
	DecidedAt        *time.Time     `gorm:"column:decided_at"`
	// VerifierHash is the SHA-256 of the one-time verifier the decision
	// handed out; resume must present the verifier itself.
	VerifierHash string `gorm:"column:verifier_hash"`
	// AccessTokenClaims and IDTokenClaims are what the host app added to
	// the tokens at approval (SPEC §3.3).
	AccessTokenClaims map[string]any `gorm:"column:access_token_claims;serializer:json"`
	IDTokenClaims     map[string]any `gorm:"column:id_token_claims;serializer:json"`
}

func (AuthSession) TableName() string { return "auth_sessions" }

// CreateAuthSession stores a new pending session.
func (s *Store) CreateAuthSession(ctx context.Context, a *AuthSession) error {
	a.State = AuthPending
	a.CreatedAt = s.now()
	if a.RequestedScopes == nil {
		a.RequestedScopes = []string{}
	}
	if a.GrantedScopes == nil {
		a.GrantedScopes = []string{}
	}
	for _, m := range []*map[string]any{&a.Claims, &a.AccessTokenClaims, &a.IDTokenClaims} {
		if *m == nil {
			*m = map[string]any{}
		}
	}
	return translate(s.conn(ctx).Create(a).Error)
}

// wellFormedID reports whether id could be one Latch issued (base64url, a
// sane length). Anything else is unknown without asking the database, which
// on PostgreSQL fails on NUL bytes and invalid UTF-8 instead of finding
// nothing.
func wellFormedID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// errUnknownSession is what a malformed id gets: the same not-found as a
// well-formed id nobody issued.
func errUnknownSession(id string) error {
	return fmt.Errorf("auth session %.40q: %w", id, ErrNotFound)
}

// AuthSession loads a session; ErrNotFound or ErrExpired (with the row).
func (s *Store) AuthSession(ctx context.Context, id string) (*AuthSession, error) {
	if !wellFormedID(id) {
		return nil, errUnknownSession(id)
	}
	var a AuthSession
	if err := s.conn(ctx).Where("id = ?", id).Take(&a).Error; err != nil {
		return nil, translate(err)
	}
	if !a.ExpiresAt.After(s.now()) {
		return &a, ErrExpired
	}
	return &a, nil
}

// Decision is the host app's answer for a pending session.
type Decision struct {
	Approve          bool
	Subject          string
	GrantedScopes    []string
	Claims           map[string]any
	Remember         bool
	AuthTime         time.Time
	ACR              string
	ErrorDescription string
	// AccessTokenClaims and IDTokenClaims go into the tokens (SPEC §3.3).
	AccessTokenClaims map[string]any
	IDTokenClaims     map[string]any
	// Verifier is the one-time value the resume URL will carry; only its
	// hash is stored.
	Verifier string
}

// VerifierHash is the stored form of a resume verifier: a plain SHA-256 is
// enough for a 256-bit random value nobody chose.
func VerifierHash(verifier string) string { return hashKey("resume", verifier) }

// DecideAuthSession moves a pending, unexpired session to approved or denied.
// Exactly one of any number of concurrent callers succeeds; the others get
// ErrStateConflict (or ErrExpired / ErrNotFound).
func (s *Store) DecideAuthSession(ctx context.Context, id string, d Decision) (*AuthSession, error) {
	if !wellFormedID(id) {
		return nil, errUnknownSession(id)
	}
	if d.Verifier == "" {
		return nil, errors.New("storage: a decision needs a resume verifier")
	}
	if d.Approve && d.Subject == "" {
		return nil, errors.New("storage: an approval needs a subject")
	}
	now := s.now()
	fields := map[string]any{"decided_at": now, "error_description": d.ErrorDescription, "verifier_hash": VerifierHash(d.Verifier)}
	if d.Approve {
		fields["state"] = AuthApproved
		fields["subject"] = d.Subject
		fields["granted_scopes"] = jsonText(d.GrantedScopes)
		fields["claims"] = jsonText(d.Claims)
		fields["remember"] = d.Remember
		fields["auth_time"] = d.AuthTime.UTC()
		fields["acr"] = d.ACR
		fields["access_token_claims"] = jsonText(orEmpty(d.AccessTokenClaims))
		fields["id_token_claims"] = jsonText(orEmpty(d.IDTokenClaims))
	} else {
		fields["state"] = AuthDenied
	}
	// RETURNING hands back the decided row in the same round trip.
	var decided AuthSession
	res := s.conn(ctx).Model(&decided).Clauses(clause.Returning{}).
		Where("id = ? AND state = ? AND expires_at > ?", id, AuthPending, now).
		Updates(fields)
	if res.Error != nil {
		return nil, translate(res.Error)
	}
	if res.RowsAffected == 1 {
		return &decided, nil
	}
	a, err := s.AuthSession(ctx, id)
	if err != nil {
		return a, err
	}
	return a, fmt.Errorf("%w: session is %s", ErrStateConflict, a.State)
}

// CompleteAuthSession marks a decided session completed for the browser that
// started it, presenting the verifier the decision handed out, and returns
// it as decided. Only the first caller wins; a browser without the binding,
// a caller without the verifier, a pending or expired session never
// completes. Inside a transaction the completion commits or rolls back with
// the code it leads to, so a failed resume can be retried.
func (s *Store) CompleteAuthSession(ctx context.Context, id, browserHash, verifier string) (*AuthSession, error) {
	if !wellFormedID(id) {
		return nil, errUnknownSession(id)
	}
	vh := VerifierHash(verifier)
	// One conditional update checks state, browser, verifier and expiry
	// together. RETURNING shows the new state; the decided one follows from
	// the subject, which every approval has and no denial does.
	var done AuthSession
	res := s.conn(ctx).Model(&done).Clauses(clause.Returning{}).
		Where("id = ? AND state IN (?, ?) AND browser_hash = ? AND verifier_hash = ? AND expires_at > ?",
			id, AuthApproved, AuthDenied, browserHash, vh, s.now()).
		Update("state", AuthCompleted)
	if res.Error != nil {
		return nil, translate(res.Error)
	}
	if res.RowsAffected == 1 {
		done.State = AuthApproved
		if done.Subject == "" {
			done.State = AuthDenied
		}
		return &done, nil
	}
	// Not completable: find out why, for a precise answer.
	a, err := s.AuthSession(ctx, id)
	if err != nil {
		return nil, err
	}
	switch {
	case a.BrowserHash != browserHash:
		return nil, fmt.Errorf("%w: session belongs to another browser", ErrStateConflict)
	case a.State == AuthPending:
		return nil, fmt.Errorf("%w: session is not decided yet", ErrStateConflict)
	case a.State == AuthCompleted:
		return nil, fmt.Errorf("%w: session already completed", ErrStateConflict)
	default:
		return nil, fmt.Errorf("%w: wrong resume verifier", ErrStateConflict)
	}
}

// LoginSession remembers who a browser is, so later requests skip login.
type LoginSession struct {
	IDHash string `gorm:"column:id_hash;primaryKey"`
	// SID is the session's public id: ID tokens carry it as sid and
	// logout tokens name it. It is not the cookie and does not find it.
	SID       string         `gorm:"column:sid"`
	Subject   string         `gorm:"column:subject"`
	AuthTime  time.Time      `gorm:"column:auth_time"`
	ACR       string         `gorm:"column:acr"`
	Claims    map[string]any `gorm:"column:claims;serializer:json"`
	CreatedAt time.Time      `gorm:"column:created_at"`
	ExpiresAt time.Time      `gorm:"column:expires_at"`
	// The approval's token claims, reused by silent (prompt=none) logins.
	AccessTokenClaims map[string]any `gorm:"column:access_token_claims;serializer:json"`
	IDTokenClaims     map[string]any `gorm:"column:id_token_claims;serializer:json"`
}

func (LoginSession) TableName() string { return "login_sessions" }

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// CreateLoginSession stores a login session under the hash of its cookie.
func (s *Store) CreateLoginSession(ctx context.Context, l *LoginSession) error {
	l.CreatedAt = s.now()
	l.Claims, l.AccessTokenClaims, l.IDTokenClaims = orEmpty(l.Claims), orEmpty(l.AccessTokenClaims), orEmpty(l.IDTokenClaims)
	return translate(s.conn(ctx).Create(l).Error)
}

// LoginSession loads an unexpired login session by cookie hash.
func (s *Store) LoginSession(ctx context.Context, idHash string) (*LoginSession, error) {
	var l LoginSession
	err := s.conn(ctx).Where("id_hash = ? AND expires_at > ?", idHash, s.now()).Take(&l).Error
	if err != nil {
		return nil, translate(err)
	}
	return &l, nil
}

// DeleteLoginSession ends a login session.
func (s *Store) DeleteLoginSession(ctx context.Context, idHash string) error {
	return translate(s.conn(ctx).Where("id_hash = ?", idHash).Delete(&LoginSession{}).Error)
}

// Authorization is a remembered consent: a user let a client have scopes.
type Authorization struct {
	Subject  string `gorm:"column:subject;primaryKey" json:"user"`
	ClientID string `gorm:"column:client_id;primaryKey" json:"client_id"`
	// RedirectURI is set only for clients identified by a metadata
	// document: their grants are per installation (GrantRedirect).
	RedirectURI string    `gorm:"column:redirect_uri;primaryKey" json:"redirect_uri,omitempty"`
	Scopes      []string  `gorm:"column:scopes;serializer:json" json:"scopes"`
	CreatedAt   time.Time `gorm:"column:created_at" json:"created_at"`
	UpdatedAt   time.Time `gorm:"column:updated_at" json:"updated_at"`
}

func (Authorization) TableName() string { return "authorizations" }

// GrantRedirect is the redirect URI a remembered authorization is kept
// under: the request's for a client identified by a metadata document
// (its id is a URL, which a registered id never is), so two installations
// of one agent never share a grant (SPEC §6); "" for every other client.
func GrantRedirect(clientID, redirectURI string) string {
	if strings.Contains(clientID, "://") {
		return redirectURI
	}
	return ""
}

// RememberAuthorization adds scopes to a user's authorization of a client.
func (s *Store) RememberAuthorization(ctx context.Context, subject, clientID string, scopes []string) error {
	return s.RememberAuthorizationAt(ctx, subject, clientID, "", scopes)
}

// RememberAuthorizationAt adds scopes to a user's authorization of a
// client for one redirect URI (GrantRedirect).
func (s *Store) RememberAuthorizationAt(ctx context.Context, subject, clientID, redirectURI string, scopes []string) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		// Under the grant lock, so a concurrent revocation either forgets
		// what this writes or runs first and is not undone by it.
		if known, err := s.lockGrant(ctx, subject, clientID); err != nil || !known {
			return err // a client deleted meanwhile: nothing to remember
		}
		existing, err := s.AuthorizationAt(ctx, subject, clientID, redirectURI)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		now := s.now()
		a := Authorization{Subject: subject, ClientID: clientID, RedirectURI: redirectURI, Scopes: union(nil, scopes), CreatedAt: now, UpdatedAt: now}
		if existing != nil {
			a.CreatedAt = existing.CreatedAt
			a.Scopes = union(existing.Scopes, scopes)
		}
		return translate(s.conn(ctx).Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "subject"}, {Name: "client_id"}, {Name: "redirect_uri"}},
			DoUpdates: clause.AssignmentColumns([]string{"scopes", "updated_at"}),
		}).Create(&a).Error)
	})
}

// Authorization loads one remembered authorization.
func (s *Store) Authorization(ctx context.Context, subject, clientID string) (*Authorization, error) {
	return s.AuthorizationAt(ctx, subject, clientID, "")
}

// AuthorizationAt loads one remembered authorization for a redirect URI
// (GrantRedirect).
func (s *Store) AuthorizationAt(ctx context.Context, subject, clientID, redirectURI string) (*Authorization, error) {
	var a Authorization
	if err := s.conn(ctx).Where("subject = ? AND client_id = ? AND redirect_uri = ?", subject, clientID, redirectURI).Take(&a).Error; err != nil {
		return nil, translate(err)
	}
	return &a, nil
}

// ListAuthorizations returns a user's remembered authorizations.
func (s *Store) ListAuthorizations(ctx context.Context, subject string) ([]Authorization, error) {
	var out []Authorization
	if err := s.conn(ctx).Where("subject = ?", subject).Order("client_id, redirect_uri").Find(&out).Error; err != nil {
		return nil, translate(err)
	}
	return out, nil
}

func union(a, b []string) []string {
	seen := map[string]bool{}
	out := make([]string, 0, len(a)+len(b))
	for _, v := range append(append([]string{}, a...), b...) {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
