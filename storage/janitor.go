package storage

import (
	"context"
	"fmt"
	"time"
)

// JanitorOptions bound one purge.
type JanitorOptions struct {
	// BatchSize is the most rows one DELETE removes, so a purge never holds
	// long locks or builds a huge transaction; 0 means 1000.
	BatchSize int
	// ReplayGrace keeps authorization codes and refresh tokens this long past
	// their expiry: a spent one replayed in that window is still recognised
	// and its grant family revoked, instead of looking merely unknown.
	// 0 means 24h; a negative value means none.
	ReplayGrace time.Duration
	// AuditRetention deletes audit events older than this; 0 keeps them.
	AuditRetention time.Duration
	// DynamicClientIdle deletes dynamically registered clients that have
	// obtained no token this long after registering; 0 keeps them.
	DynamicClientIdle time.Duration
}

// DefaultReplayGrace is ReplayGrace's default.
const DefaultReplayGrace = 24 * time.Hour

// PurgeResult counts deleted rows by table (oauth2_tokens by kind, as
// "oauth2_tokens/<kind>").
type PurgeResult map[string]int64

// Total is the number of rows deleted.
func (r PurgeResult) Total() int64 {
	var n int64
	for _, v := range r {
		n += v
	}
	return n
}

// purgeTarget is one class of expired rows; key lists the primary key
// columns, so a batch can be chosen by a sub-select both dialects accept.
type purgeTarget struct {
	name  string
	table string
	key   string
	where string
	arg   func(now time.Time) []any
}

// Purge deletes expired rows in batches until none is left or ctx ends:
// auth and login sessions, replay-cache entries and rate-limit windows past
// expiry, access tokens, OIDC and PKCE records past expiry, codes and
// refresh tokens past expiry plus the replay grace, and grant rows left
// without tokens or remembered consent. Spent codes and refresh tokens are never
// deleted before that, because their rows are what detects a replay.
// Several instances may purge at once: deletes of the same rows simply
// find nothing left.
func (s *Store) Purge(ctx context.Context, o JanitorOptions) (PurgeResult, error) {
	batch := o.BatchSize
	if batch <= 0 {
		batch = 1000
	}
	grace := o.ReplayGrace
	switch {
	case grace == 0:
		grace = DefaultReplayGrace
	case grace < 0:
		grace = 0
	}
	at := func(now time.Time) []any { return []any{now} }
	graced := func(kind string) func(time.Time) []any {
		return func(now time.Time) []any { return []any{kind, now.Add(-grace)} }
	}
	plain := func(kind string) func(time.Time) []any {
		return func(now time.Time) []any { return []any{kind, now} }
	}
	const tokenWhere = "kind = ? AND expires_at < ?"
	targets := []purgeTarget{
		{"auth_sessions", "auth_sessions", "id", "expires_at < ?", at},
		{"login_sessions", "login_sessions", "id_hash", "expires_at < ?", at},
		{"login_session_grants", "login_session_grants", "sid, request_id", "expires_at < ?", at},
		{"seen_jtis", "seen_jtis", "jti_hash", "expires_at < ?", func(now time.Time) []any { return []any{now.Add(-ReplayClockSkew)} }},
		{"oauth2_tokens/" + kindAccess, "oauth2_tokens", "kind, signature", tokenWhere, plain(kindAccess)},
		{"oauth2_tokens/" + kindOIDC, "oauth2_tokens", "kind, signature", tokenWhere, plain(kindOIDC)},
		{"oauth2_tokens/" + kindPKCE, "oauth2_tokens", "kind, signature", tokenWhere, plain(kindPKCE)},
		{"oauth2_tokens/" + kindCode, "oauth2_tokens", "kind, signature", tokenWhere, graced(kindCode)},
		{"oauth2_tokens/" + kindRefresh, "oauth2_tokens", "kind, signature", tokenWhere, graced(kindRefresh)},
		{"par_requests", "par_requests", "request_uri_hash", "expires_at < ?", at},
		{"refresh_replays", "refresh_replays", "signature", "expires_at < ?", at},
		// Rate-limit windows that have ended count for nothing any more.
		{"rate_limits", "rate_limits", "bucket, window_start", "expires_at <= ?", func(now time.Time) []any { return []any{now.Unix()} }},
		// Grant rows left with neither tokens nor remembered consent (after
		// the tokens, so one pass empties both). Deleting one is safe even
		// against a transaction about to lock it: the upsert that locks
		// recreates it.
		{"grants", "grants", "subject, client_id",
			"NOT EXISTS (SELECT 1 FROM oauth2_tokens t WHERE t.client_id = grants.client_id AND t.subject = grants.subject)" +
				" AND NOT EXISTS (SELECT 1 FROM authorizations a WHERE a.client_id = grants.client_id AND a.subject = grants.subject)",
			func(time.Time) []any { return nil }},
	}
	if r := o.AuditRetention; r > 0 {
		targets = append(targets, purgeTarget{"audit_events", "audit_events", "id", "time < ?",
			func(now time.Time) []any { return []any{now.Add(-r)} }})
	}
	if idle := o.DynamicClientIdle; idle > 0 {
		// Such a client has no tokens, sessions or grants to revoke.
		targets = append(targets, purgeTarget{"clients/idle_dynamic", "clients", "id", "dynamic = ? AND obtained_token = ? AND created_at < ?",
			func(now time.Time) []any { return []any{true, false, now.Add(-idle)} }})
	}
	out := PurgeResult{}
	for _, tg := range targets {
		stmt := fmt.Sprintf("DELETE FROM %s WHERE (%s) IN (SELECT %s FROM %s WHERE %s LIMIT %d)",
			tg.table, tg.key, tg.key, tg.table, tg.where, batch)
		for {
			if err := ctx.Err(); err != nil {
				return out, err
			}
			// The clock is read per batch so a long purge does not lag.
			res := s.db.WithContext(ctx).Exec(stmt, tg.arg(s.now())...)
			if res.Error != nil {
				return out, fmt.Errorf("purge %s: %w", tg.name, translate(res.Error))
			}
			out[tg.name] += res.RowsAffected
			if res.RowsAffected < int64(batch) {
				break
			}
		}
	}
	return out, nil
}
