package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"
	fstorage "github.com/ory/fosite/storage"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/latchhq/latch/migrations"
)

// Compile-time proof that compose's interface{} assertions will hold.
var (
	_ fosite.Storage                       = (*Store)(nil)
	_ fosite.ClientManager                 = (*Store)(nil)
	_ oauth2.CoreStorage                   = (*Store)(nil)
	_ oauth2.TokenRevocationStorage        = (*Store)(nil)
	_ oauth2.ClientCredentialsGrantStorage = (*Store)(nil)
	_ openid.OpenIDConnectRequestStorage   = (*Store)(nil)
	_ pkce.PKCERequestStorage              = (*Store)(nil)
	_ fstorage.Transactional               = (*Store)(nil)
)

// Token kinds stored in oauth2_tokens.
const (
	kindCode    = "code"
	kindAccess  = "access"
	kindRefresh = "refresh"
	kindOIDC    = "oidc"
	kindPKCE    = "pkce"
)

type tokenRow struct {
	Kind            string    `gorm:"column:kind;primaryKey"`
	Signature       string    `gorm:"column:signature;primaryKey"`
	RequestID       string    `gorm:"column:request_id"`
	ClientID        string    `gorm:"column:client_id"`
	Subject         string    `gorm:"column:subject"`
	Active          bool      `gorm:"column:active"`
	AccessSignature string    `gorm:"column:access_signature"`
	RequestedAt     time.Time `gorm:"column:requested_at"`
	ExpiresAt       time.Time `gorm:"column:expires_at"`
	Data            string    `gorm:"column:data"`
}

func (tokenRow) TableName() string { return "oauth2_tokens" }

// requestData is the serialised fosite request; the session is stored as
// JSON and rebuilt into whatever session type the caller passes.
type requestData struct {
	RequestedScopes   []string        `json:"rs,omitempty"`
	GrantedScopes     []string        `json:"gs,omitempty"`
	RequestedAudience []string        `json:"ra,omitempty"`
	GrantedAudience   []string        `json:"ga,omitempty"`
	Form              url.Values      `json:"f,omitempty"`
	Session           json.RawMessage `json:"s,omitempty"`
}

// secretFormKeys never reach the database even if a handler forgets to
// sanitise a request before storing it.
var secretFormKeys = []string{"client_secret", "code", "code_verifier", "refresh_token", "client_assertion", "password", "token"}

type grantScopesKey struct{}

// WithGrantScopes carries the scope a grant holds into the refresh that
// narrows its new access token (RFC 6749 §6): the refresh token created
// under the returned context keeps this scope, not the narrowed one, so the
// next refresh may ask for all of it again.
func WithGrantScopes(ctx context.Context, scopes []string) context.Context {
	return context.WithValue(ctx, grantScopesKey{}, scopes)
}

func (s *Store) createToken(ctx context.Context, kind, signature, accessSignature string, req fosite.Requester, expiresAt time.Time) error {
	row, err := s.tokenRowOf(ctx, kind, signature, accessSignature, req, expiresAt)
	if err != nil {
		return err
	}
	return translate(s.conn(ctx).Create(row).Error)
}

// tokenRowOf is the row createToken stores for req.
func (s *Store) tokenRowOf(ctx context.Context, kind, signature, accessSignature string, req fosite.Requester, expiresAt time.Time) (*tokenRow, error) {
	form := url.Values{}
	for k, v := range req.GetRequestForm() {
		form[k] = v
	}
	for _, k := range secretFormKeys {
		form.Del(k)
	}
	var sess json.RawMessage
	subject := ""
	if req.GetSession() != nil {
		b, err := json.Marshal(req.GetSession())
		if err != nil {
			return nil, fmt.Errorf("storage: encode session: %w", err)
		}
		sess = b
		subject = req.GetSession().GetSubject()
	}
	granted := []string(req.GetGrantedScopes())
	if g, ok := ctx.Value(grantScopesKey{}).([]string); ok && kind == kindRefresh {
		granted = g
	}
	data, err := json.Marshal(requestData{
		RequestedScopes:   req.GetRequestedScopes(),
		GrantedScopes:     granted,
		RequestedAudience: req.GetRequestedAudience(),
		GrantedAudience:   req.GetGrantedAudience(),
		Form:              form,
		Session:           sess,
	})
	if err != nil {
		return nil, fmt.Errorf("storage: encode request: %w", err)
	}
	if expiresAt.IsZero() {
		expiresAt = s.now().Add(24 * time.Hour)
	}
	return &tokenRow{
		Kind: kind, Signature: signature, RequestID: req.GetID(), ClientID: req.GetClient().GetID(),
		Subject: subject, Active: true, AccessSignature: accessSignature,
		RequestedAt: req.GetRequestedAt().UTC(), ExpiresAt: expiresAt.UTC(), Data: string(data),
	}, nil
}

// getToken loads a row and rebuilds the request into session. It returns the
// request even for an inactive row; the caller decides what that means.
func (s *Store) getToken(ctx context.Context, kind, signature string, session fosite.Session) (*fosite.Request, *tokenRow, error) {
	var row tokenRow
	if err := s.conn(ctx).Where("kind = ? AND signature = ?", kind, signature).Take(&row).Error; err != nil {
		return nil, nil, translate(err)
	}
	req, err := s.rebuild(ctx, &row, session)
	if err != nil {
		return nil, nil, err
	}
	return req, &row, nil
}

func (s *Store) rebuild(ctx context.Context, row *tokenRow, session fosite.Session) (*fosite.Request, error) {
	var d requestData
	if err := json.Unmarshal([]byte(row.Data), &d); err != nil {
		return nil, fmt.Errorf("storage: decode request %s: %w", row.RequestID, err)
	}
	if session != nil && len(d.Session) > 0 {
		if err := json.Unmarshal(d.Session, session); err != nil {
			return nil, fmt.Errorf("storage: decode session %s: %w", row.RequestID, err)
		}
	}
	client, err := s.GetClient(ctx, row.ClientID)
	if err != nil {
		return nil, err
	}
	return &fosite.Request{
		ID:                row.RequestID,
		RequestedAt:       row.RequestedAt,
		Client:            client,
		RequestedScope:    d.RequestedScopes,
		GrantedScope:      d.GrantedScopes,
		RequestedAudience: d.RequestedAudience,
		GrantedAudience:   d.GrantedAudience,
		Form:              d.Form,
		Session:           session,
	}, nil
}

// spend deactivates one active row; a row already spent (or spent by a
// concurrent request a moment ago) yields spentErr. This conditional update
// is what gives a code or refresh token exactly one winner.
func (s *Store) spend(ctx context.Context, kind, signature string, spentErr error) error {
	res := s.conn(ctx).Model(&tokenRow{}).
		Where("kind = ? AND signature = ? AND active", kind, signature).
		Update("active", false)
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return spentErr
	}
	return nil
}

func expiry(req fosite.Requester, t fosite.TokenType) time.Time {
	if req.GetSession() == nil {
		return time.Time{}
	}
	return req.GetSession().GetExpiresAt(t)
}

// --- authorization codes ---

func (s *Store) CreateAuthorizeCodeSession(ctx context.Context, signature string, req fosite.Requester) error {
	return s.createToken(ctx, kindCode, signature, "", req, expiry(req, fosite.AuthorizeCode))
}

// GetAuthorizeCodeSession returns the request and ErrInvalidatedAuthorizeCode
// for a spent code, which is what makes fosite revoke the tokens it produced.
// fosite reads the code twice per exchange; the second read comes from
// s.codes (see codeMemo for why that is safe).
func (s *Store) GetAuthorizeCodeSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	if row, ok := s.codes.take(signature); ok {
		return s.rebuild(ctx, &row, session)
	}
	req, row, err := s.getToken(ctx, kindCode, signature, session)
	if err != nil {
		return nil, err
	}
	if !row.Active {
		if n, ok := ctx.Value(spentNoteKey{}).(*SpentNote); ok {
			n.seen = true
		}
		return req, fosite.ErrInvalidatedAuthorizeCode
	}
	s.codes.put(signature, *row)
	return req, nil
}

type spentNoteKey struct{}

// SpentNote tells a token request that the store found its authorization
// code already spent. fosite answers that replay with a new invalid_grant
// that wraps nothing (handler/oauth2/flow_authorize_code_token.go), having
// revoked what the code produced: without this note only the hint's text
// would say it was a replay.
type SpentNote struct{ seen bool }

// WithSpentNote returns ctx carrying a note GetAuthorizeCodeSession marks
// when the code it reads was spent before.
func WithSpentNote(ctx context.Context) (context.Context, *SpentNote) {
	n := &SpentNote{}
	return context.WithValue(ctx, spentNoteKey{}, n), n
}

// Seen reports whether a spent code was presented under the note.
func (n *SpentNote) Seen() bool { return n != nil && n.seen }

// InvalidateAuthorizeCodeSession spends the code under its grant lock, so a
// revocation of the user's grant either comes first (and the spend fails) or
// sees the tokens this exchange commits.
func (s *Store) InvalidateAuthorizeCodeSession(ctx context.Context, signature string) error {
	s.codes.drop(signature)
	if err := s.lockGrantOfToken(ctx, kindCode, signature, true); err != nil {
		return err
	}
	return s.spend(ctx, kindCode, signature, fosite.ErrInvalidatedAuthorizeCode)
}

// --- access tokens ---

// CreateAccessTokenSession stores an access token. Under a PendingAudit
// not yet placed, the grant's event goes into the same transaction: the
// one fosite opened (code and refresh grants), written at its Commit, or,
// for client_credentials, for which fosite opens none, one of its own.
func (s *Store) CreateAccessTokenSession(ctx context.Context, signature string, req fosite.Requester) error {
	p := pendingAudit(ctx)
	if p == nil || p.written || p.tx != nil {
		return s.createToken(ctx, kindAccess, signature, "", req, expiry(req, fosite.AccessToken))
	}
	tx, ok := ctx.Value(txKey{}).(*gorm.DB)
	if !ok && s.dialect == migrations.Postgres {
		return s.createAccessWithAudit(ctx, signature, req, p)
	}
	if !ok {
		return s.InTx(ctx, func(ctx context.Context) error { return s.CreateAccessTokenSession(ctx, signature, req) })
	}
	if err := s.createToken(ctx, kindAccess, signature, "", req, expiry(req, fosite.AccessToken)); err != nil {
		return err
	}
	p.tx = tx
	return nil
}

func (s *Store) GetAccessTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	req, row, err := s.getToken(ctx, kindAccess, signature, session)
	if err != nil {
		return nil, err
	}
	if !row.Active {
		return req, fosite.ErrInactiveToken
	}
	return req, nil
}

func (s *Store) DeleteAccessTokenSession(ctx context.Context, signature string) error {
	return translate(s.conn(ctx).Where("kind = ? AND signature = ?", kindAccess, signature).Delete(&tokenRow{}).Error)
}

// RevokeAccessToken revokes the whole grant family: fosite calls it for a
// replayed code, a reused refresh token and RFC 7009 revocation, and in
// each case no token of the family may stay usable.
func (s *Store) RevokeAccessToken(ctx context.Context, requestID string) error {
	return s.RevokeGrant(ctx, requestID)
}

// --- refresh tokens ---

func (s *Store) CreateRefreshTokenSession(ctx context.Context, signature, accessSignature string, req fosite.Requester) error {
	if err := s.createToken(ctx, kindRefresh, signature, accessSignature, req, expiry(req, fosite.RefreshToken)); err != nil {
		return err
	}
	if r := refreshReuseFrom(ctx); r != nil && r.Spent != "" {
		return s.recordRotation(ctx, r, signature)
	}
	return nil
}

// GetRefreshTokenSession returns the request and ErrInactiveToken for a
// spent token, so fosite's reuse detection fires, or ErrRefreshRetry when
// the refresh under ctx may retry it (reuse interval).
func (s *Store) GetRefreshTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	req, row, err := s.getToken(ctx, kindRefresh, signature, session)
	if err != nil {
		return nil, err
	}
	if !row.Active {
		// A spent token still within its reuse interval is a retry, not
		// a reuse: no revocation (storage/refreshreplay.go).
		if refreshReuseFrom(ctx) != nil {
			if _, err := s.RefreshReplay(ctx, signature); err == nil {
				return req, ErrRefreshRetry
			} else if !IsNotFound(err) {
				return nil, err
			}
		}
		return req, fosite.ErrInactiveToken
	}
	return req, nil
}

// DeleteRefreshTokenSession deactivates rather than deletes, so a later
// replay of the same token is still recognised as reuse. fosite calls it
// first when it detects reuse, so it takes the grant lock before the family
// is revoked.
func (s *Store) DeleteRefreshTokenSession(ctx context.Context, signature string) error {
	if err := s.lockGrantOfToken(ctx, kindRefresh, signature, false); err != nil {
		return err
	}
	return translate(s.conn(ctx).Model(&tokenRow{}).
		Where("kind = ? AND signature = ?", kindRefresh, signature).Update("active", false).Error)
}

// RotateRefreshToken spends the presented refresh token (one winner among
// concurrent refreshes) and retires the access token issued with it, under
// the grant lock: a revocation that got the lock first has deactivated the
// token and the spend fails; one that waits for it sees the new pair.
// The access token is found by subquery: one round trip fewer than reading
// access_signature first.
func (s *Store) RotateRefreshToken(ctx context.Context, requestID, signature string) error {
	if err := s.lockGrantOfToken(ctx, kindRefresh, signature, true); err != nil {
		return err
	}
	if err := s.spend(ctx, kindRefresh, signature, fosite.ErrInactiveToken); err != nil {
		return err
	}
	if r := refreshReuseFrom(ctx); r != nil {
		r.Spent, r.RequestID = signature, requestID
	}
	db := s.conn(ctx)
	accessSig := db.Model(&tokenRow{}).Select("access_signature").Where("kind = ? AND signature = ?", kindRefresh, signature)
	return translate(db.Model(&tokenRow{}).
		Where("kind = ? AND signature = (?) AND active", kindAccess, accessSig).Update("active", false).Error)
}

// RevokeRefreshToken revokes the whole grant family (see RevokeAccessToken).
func (s *Store) RevokeRefreshToken(ctx context.Context, requestID string) error {
	return s.RevokeGrant(ctx, requestID)
}

// --- OpenID Connect ---

// fosite keys OIDC sessions by the raw authorization code; we store only its
// hash so no usable code ever reaches the database.
func oidcKey(code string) string { return hashKey("oidc", code) }

func (s *Store) CreateOpenIDConnectSession(ctx context.Context, code string, req fosite.Requester) error {
	return s.createToken(ctx, kindOIDC, oidcKey(code), "", req, expiry(req, fosite.AuthorizeCode))
}

func (s *Store) GetOpenIDConnectSession(ctx context.Context, code string, req fosite.Requester) (fosite.Requester, error) {
	// A missing row is ErrNotFound, which unwraps to fosite.ErrNotFound:
	// that is openid.ErrNoSessionFound, what fosite's errors.Is looks for.
	r, _, err := s.getToken(ctx, kindOIDC, oidcKey(code), req.GetSession())
	if err != nil {
		return nil, err
	}
	return r, nil
}

// DeleteOpenIDConnectSession keeps the row, as DeletePKCERequestSession
// does: it is only reachable through its code, which is spent by now and
// never redeems again, so deleting it here would be a round trip per sign-in
// for nothing. The janitor removes it with the code.
func (s *Store) DeleteOpenIDConnectSession(context.Context, string) error { return nil }

// --- PKCE ---

func (s *Store) CreatePKCERequestSession(ctx context.Context, signature string, req fosite.Requester) error {
	return s.createToken(ctx, kindPKCE, signature, "", req, expiry(req, fosite.AuthorizeCode))
}

func (s *Store) GetPKCERequestSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	r, _, err := s.getToken(ctx, kindPKCE, signature, session)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// DeletePKCERequestSession keeps the row: concurrent redemptions of one code
// must all get past PKCE to the code's conditional spend, where the losers are
// recognised as a replay and the winner's tokens revoked. The janitor removes
// it with the code.
func (s *Store) DeletePKCERequestSession(context.Context, string) error { return nil }

// --- replay cache ---

// ErrReplay reports a jti seen before within its lifetime.
var ErrReplay = errors.New("storage: identifier already used")

// ReplayClockSkew is how far one instance's clock may run ahead of
// another's without the replay cache forgetting a jti the slower instance
// still accepts. Entries stamp their expiry with the clock of the instance
// that accepted them, and are forgotten (by the janitor, or to reuse the
// jti) only this long after that expiry by the forgetting instance's clock:
// a fast instance purging by its own clock alone would let a replay through
// on every other instance.
const ReplayClockSkew = 5 * time.Minute

// MarkJTI records (purpose, jti) until exp; ErrReplay if it is already live.
// The insert itself is the check, so concurrent instances cannot both win.
func (s *Store) MarkJTI(ctx context.Context, purpose, jti string, exp time.Time) error {
	key := hashKey(purpose, jti)
	now := s.now()
	db := s.conn(ctx)
	// An expired entry may be reused; clear it first so the insert decides.
	if err := db.Exec("DELETE FROM seen_jtis WHERE jti_hash = ? AND expires_at <= ?", key, now.Add(-ReplayClockSkew)).Error; err != nil {
		return translate(err)
	}
	res := db.Table("seen_jtis").Clauses(clause.OnConflict{DoNothing: true}).
		Create(map[string]any{"jti_hash": key, "expires_at": exp.UTC()})
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrReplay
	}
	return nil
}

func hashKey(purpose, v string) string {
	h := sha256.Sum256([]byte(purpose + "\x00" + v))
	return hex.EncodeToString(h[:])
}

func splitScope(s string) []string { return strings.Fields(s) }

// jsonText encodes a value for a JSON text column in a map-based update,
// where GORM's field serializers do not apply.
func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "null"
	}
	return string(b)
}

// createAccessWithAudit stores an access token and its grant's audit row in
// one PostgreSQL statement: one round trip and one commit, where a
// transaction would cost BEGIN and COMMIT round trips besides (this is
// client_credentials' whole write). Like the group commit's inserts, the
// statement runs under p.Within and is cancelled on the server past it, so
// it commits within that bound of drawing the row's id or not at all.
func (s *Store) createAccessWithAudit(ctx context.Context, signature string, req fosite.Requester, p *PendingAudit) error {
	row, err := s.tokenRowOf(ctx, kindAccess, signature, "", req, expiry(req, fosite.AccessToken))
	if err != nil {
		return err
	}
	if p.Complete != nil {
		p.Complete(p.Event)
	}
	e := p.Event
	stampAudit(e, s.now())
	details, err := json.Marshal(e.Details)
	if err != nil {
		return fmt.Errorf("storage: encode audit details: %w", err)
	}
	if p.Within > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.Within)
		defer cancel()
	}
	err = s.bounded(ctx, func(db *gorm.DB) error {
		return db.Exec(`WITH token AS (
	INSERT INTO oauth2_tokens (kind, signature, request_id, client_id, subject, active, access_signature, requested_at, expires_at, data)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?))
INSERT INTO audit_events (time, event, actor_type, actor_id, subject, client_id, ip, outcome, details)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			row.Kind, row.Signature, row.RequestID, row.ClientID, row.Subject, row.Active, row.AccessSignature, row.RequestedAt, row.ExpiresAt, row.Data,
			e.Time, e.Event, e.ActorType, e.ActorID, e.Subject, e.ClientID, e.IP, e.Outcome, string(details)).Error
	})
	if err != nil {
		return err
	}
	p.written = true
	return nil
}
