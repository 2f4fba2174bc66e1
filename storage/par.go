package storage

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/ory/fosite"
)

var _ fosite.PARStorage = (*Store)(nil)

type parRow struct {
	RequestURIHash string    `gorm:"column:request_uri_hash;primaryKey"`
	RequestID      string    `gorm:"column:request_id"`
	ClientID       string    `gorm:"column:client_id"`
	RedirectURI    string    `gorm:"column:redirect_uri"`
	Form           string    `gorm:"column:form"`
	Used           bool      `gorm:"column:used"`
	RequestedAt    time.Time `gorm:"column:requested_at"`
	ExpiresAt      time.Time `gorm:"column:expires_at"`
}

func (parRow) TableName() string { return "par_requests" }

// authorizationParams are the authorization request parameters Latch (or
// fosite, on its behalf) reads. Only these are kept while a request waits
// (pushed, or for the host app's decision): anything else a caller sends
// is dropped, so an anonymous request cannot make Latch store what it
// never uses, and client credentials sent with a push are never stored.
var authorizationParams = []string{
	"response_type", "response_mode", "client_id", "redirect_uri", "scope", "state", "nonce",
	"code_challenge", "code_challenge_method", "prompt", "max_age", "login_hint", "acr_values",
	"id_token_hint", "dpop_jkt", "audience", "resource",
}

// AuthorizationParams returns the allow-listed parameters of form, the only
// ones ever stored for a waiting request.
func AuthorizationParams(form url.Values) url.Values {
	out := url.Values{}
	for _, k := range authorizationParams {
		if v, ok := form[k]; ok {
			out[k] = append([]string(nil), v...)
		}
	}
	return out
}

type parClientKey struct{}

// WithPARClient names the client redeeming a pushed request. GetPARSession
// spends a request only for the client that pushed it, so a request_uri
// sent with someone else's client_id is refused and stays redeemable by
// its owner (fosite compares the client only after spending it).
func WithPARClient(ctx context.Context, clientID string) context.Context {
	return context.WithValue(ctx, parClientKey{}, clientID)
}

// ErrWrongClient reports a pushed request redeemed by another client.
var ErrWrongClient = errors.New("storage: pushed request belongs to another client")

// CreatePARSession stores a pushed request. The redirect URI fosite
// resolved is kept apart from the form, so a request that relied on the
// client's single registered URI still has one when redeemed, without
// making redirect_uri mandatory at the token endpoint.
func (s *Store) CreatePARSession(ctx context.Context, requestURI string, req fosite.AuthorizeRequester) error {
	form := AuthorizationParams(req.GetRequestForm())
	exp := time.Time{}
	if req.GetSession() != nil {
		exp = req.GetSession().GetExpiresAt(fosite.PushedAuthorizeRequestContext)
	}
	if exp.IsZero() {
		return errors.New("storage: pushed request has no expiry")
	}
	row := parRow{
		RequestURIHash: hashKey("par", requestURI), RequestID: req.GetID(), ClientID: req.GetClient().GetID(),
		Form: form.Encode(), RequestedAt: req.GetRequestedAt().UTC(), ExpiresAt: exp.UTC(),
	}
	if u := req.GetRedirectURI(); u != nil {
		row.RedirectURI = u.String()
	}
	return translate(s.conn(ctx).Create(&row).Error)
}

// GetPARSession redeems a pushed request for the client named by
// WithPARClient: fosite stores an expiry but never checks it, so this does;
// the conditional update spends the request, so of two concurrent
// redemptions exactly one gets the request, and an expired one, or one
// presented by another client, is refused without being spent.
func (s *Store) GetPARSession(ctx context.Context, requestURI string) (fosite.AuthorizeRequester, error) {
	clientID, ok := ctx.Value(parClientKey{}).(string)
	if !ok {
		return nil, errors.New("storage: pushed request redeemed without naming the client")
	}
	key := hashKey("par", requestURI)
	var row parRow
	if err := s.conn(ctx).Where("request_uri_hash = ?", key).Take(&row).Error; err != nil {
		return nil, translate(err)
	}
	// client_id never changes on a row, so checking it before the spend
	// leaves no window.
	if row.ClientID != clientID {
		return nil, ErrWrongClient
	}
	if !row.ExpiresAt.After(s.now()) {
		return nil, fmt.Errorf("pushed request: %w", ErrExpired)
	}
	res := s.conn(ctx).Model(&parRow{}).Where("request_uri_hash = ? AND NOT used", key).Update("used", true)
	if res.Error != nil {
		return nil, translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return nil, fmt.Errorf("pushed request already used: %w", ErrStateConflict)
	}
	client, err := s.GetClient(ctx, row.ClientID)
	if err != nil {
		return nil, err
	}
	form, err := url.ParseQuery(row.Form)
	if err != nil {
		return nil, fmt.Errorf("storage: decode pushed request: %w", err)
	}
	ar := fosite.NewAuthorizeRequest()
	ar.ID, ar.RequestedAt, ar.Client, ar.Form = row.RequestID, row.RequestedAt, client, form
	ar.State = form.Get("state")
	ar.ResponseTypes = fosite.RemoveEmpty(splitScope(form.Get("response_type")))
	ar.RequestedScope = fosite.RemoveEmpty(splitScope(form.Get("scope")))
	ar.RequestedAudience = fosite.GetAudiences(form)
	ar.ResponseMode = fosite.ResponseModeQuery
	ar.DefaultResponseMode = fosite.ResponseModeQuery
	if form.Get("response_mode") == string(fosite.ResponseModeFormPost) {
		// Validated at the push, like every pushed parameter.
		ar.ResponseMode = fosite.ResponseModeFormPost
	}
	if row.RedirectURI != "" {
		if ar.RedirectURI, err = url.Parse(row.RedirectURI); err != nil {
			return nil, fmt.Errorf("storage: decode pushed redirect_uri: %w", err)
		}
	}
	return ar, nil
}

// DeletePARSession does nothing: GetPARSession already spent the request,
// and the spent row is kept until it expires so a replay is refused
// rather than looked up as unknown.
func (s *Store) DeletePARSession(context.Context, string) error { return nil }
