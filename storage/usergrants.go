package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"
)

// UserGrant is one client a user has let in: a remembered consent, live
// tokens, or both. Scopes is what the consent and the live tokens hold
// together; first and last use come from the grant lock's row (created at
// the first token issued to the pair, touched at every exchange and
// refresh), so they are empty for a consent never used.
type UserGrant struct {
	Subject     string     `json:"user"`
	ClientID    string     `json:"client_id"`
	Scopes      []string   `json:"scopes"`
	Remembered  bool       `json:"remembered"`
	LiveTokens  bool       `json:"live_tokens"`
	FirstUsedAt *time.Time `json:"first_used_at"`
	LastUsedAt  *time.Time `json:"last_used_at"`
	// CreatedAt and UpdatedAt are the remembered consent's, when there is
	// one.
	CreatedAt *time.Time `json:"created_at,omitempty"`
	UpdatedAt *time.Time `json:"updated_at,omitempty"`
}

// ListUserGrants returns every client that holds live (active, unexpired)
// access or refresh tokens of subject or a remembered consent from them,
// ordered by client id.
func (s *Store) ListUserGrants(ctx context.Context, subject string) ([]UserGrant, error) {
	byClient := map[string]*UserGrant{}
	get := func(clientID string) *UserGrant {
		g := byClient[clientID]
		if g == nil {
			g = &UserGrant{Subject: subject, ClientID: clientID, Scopes: []string{}}
			byClient[clientID] = g
		}
		return g
	}
	remembered, err := s.ListAuthorizations(ctx, subject)
	if err != nil {
		return nil, err
	}
	for _, a := range remembered {
		g := get(a.ClientID)
		g.Remembered = true
		g.Scopes = union(g.Scopes, a.Scopes)
		created, updated := a.CreatedAt, a.UpdatedAt
		g.CreatedAt, g.UpdatedAt = &created, &updated
	}
	var live []tokenRow
	err = s.conn(ctx).Select("client_id", "data").
		Where("subject = ? AND kind IN ? AND active AND expires_at > ?", subject, []string{kindAccess, kindRefresh}, s.now()).
		Find(&live).Error
	if err != nil {
		return nil, fmt.Errorf("list live tokens of %s: %w", subject, translate(err))
	}
	for _, row := range live {
		var d requestData
		if err := json.Unmarshal([]byte(row.Data), &d); err != nil {
			return nil, fmt.Errorf("decode token of client %s: %w", row.ClientID, err)
		}
		g := get(row.ClientID)
		g.LiveTokens = true
		g.Scopes = union(g.Scopes, d.GrantedScopes)
	}
	var uses []struct {
		ClientID  string    `gorm:"column:client_id"`
		CreatedAt time.Time `gorm:"column:created_at"`
		UpdatedAt time.Time `gorm:"column:updated_at"`
	}
	if err := s.conn(ctx).Table("grants").Where("subject = ?", subject).Find(&uses).Error; err != nil {
		return nil, fmt.Errorf("list grant uses of %s: %w", subject, translate(err))
	}
	for _, u := range uses {
		if g := byClient[u.ClientID]; g != nil {
			first, last := u.CreatedAt, u.UpdatedAt
			g.FirstUsedAt, g.LastUsedAt = &first, &last
		}
	}
	out := make([]UserGrant, 0, len(byClient))
	for _, g := range byClient {
		slices.Sort(g.Scopes)
		out = append(out, *g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ClientID < out[j].ClientID })
	return out, nil
}

// UserGrantClients lists every client subject has anything granted to:
// remembered consent, a grant row, or any active token or code.
func (s *Store) UserGrantClients(ctx context.Context, subject string) ([]string, error) {
	var ids []string
	err := s.conn(ctx).Raw(
		"SELECT client_id FROM authorizations WHERE subject = ? UNION SELECT client_id FROM grants WHERE subject = ? "+
			"UNION SELECT client_id FROM oauth2_tokens WHERE subject = ? AND kind IN ? AND active ORDER BY 1",
		subject, subject, subject, revocableKinds).Scan(&ids).Error
	if err != nil {
		return nil, fmt.Errorf("list clients granted by %s: %w", subject, translate(err))
	}
	return ids, nil
}
