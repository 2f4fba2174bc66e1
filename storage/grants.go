package storage

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/latchhq/latch/migrations"
)

// The grant lock. Every transaction that issues or revokes tokens of one
// (user, client) pair first upserts that pair's row in grants, which locks
// it until the transaction ends (PostgreSQL row lock; SQLite serialises
// writers anyway). Only after holding it does the transaction read or
// change token rows, in statements that therefore see everything the
// previous holder committed. That is what makes revocation win against an
// in-flight refresh under READ COMMITTED: the revoker either runs first, and
// the refresh's conditional spend then finds its token inactive, or runs
// after the refresh committed, and its UPDATE sees the successor pair.
//
// The upsert is the lock and the lazy creation at once: a first insert of a
// pair races nobody, because a concurrent inserter of the same key waits for
// it on the primary key and then takes the update path.

// grantLastUse records a use of the grant (a code exchange or a refresh).
const grantLastUse = "excluded.updated_at"

// grantKeep leaves the row as it is: the statement is only there to lock.
const grantKeep = "grants.updated_at"

// grantUpsert completes an INSERT ... SELECT into grants.
func grantUpsert(set string) string {
	return " ON CONFLICT (subject, client_id) DO UPDATE SET updated_at = " + set
}

// grantTimes are the timestamp placeholders in the select list feeding the
// upsert; PostgreSQL cannot infer a parameter's type from an INSERT ...
// SELECT target, so they are cast there.
func (s *Store) grantTimes() string {
	if s.dialect == migrations.Postgres {
		return "CAST(? AS TIMESTAMPTZ), CAST(? AS TIMESTAMPTZ)"
	}
	return "?, ?"
}

// lockGrantOfToken locks the grant of the token row (kind, signature);
// use marks it as a use of the grant. A missing row locks nothing: the
// caller's own statement on that row then fails as it should.
func (s *Store) lockGrantOfToken(ctx context.Context, kind, signature string, use bool) error {
	set := grantKeep
	if use {
		set = grantLastUse
	}
	now := s.now()
	return translate(s.conn(ctx).Exec(
		"INSERT INTO grants (subject, client_id, created_at, updated_at) SELECT subject, client_id, "+s.grantTimes()+
			" FROM oauth2_tokens WHERE kind = ? AND signature = ?"+grantUpsert(set),
		now, now, kind, signature).Error)
}

// lockGrantOfRequest locks the grant a token family (fosite request id)
// belongs to; every row of a family has the same user and client.
func (s *Store) lockGrantOfRequest(ctx context.Context, requestID string) error {
	now := s.now()
	return translate(s.conn(ctx).Exec(
		"INSERT INTO grants (subject, client_id, created_at, updated_at) SELECT subject, client_id, "+s.grantTimes()+
			" FROM oauth2_tokens WHERE request_id = ? LIMIT 1"+grantUpsert(grantKeep),
		now, now, requestID).Error)
}

// lockGrant locks the grant of (subject, clientID); false when the client
// does not exist (then nothing can be issued to it either). A client
// identified by a metadata document is never a row, so it is known by the
// resolver that handles its id.
func (s *Store) lockGrant(ctx context.Context, subject, clientID string) (bool, error) {
	now := s.now()
	text := "?"
	if s.dialect == migrations.Postgres {
		text = "CAST(? AS TEXT)"
	}
	from, args := " FROM clients WHERE id = ?", []any{subject, now, now, clientID}
	if s.external != nil && s.external.Handles(clientID) {
		// WHERE TRUE: SQLite needs a WHERE before ON CONFLICT in an
		// INSERT ... SELECT to tell the upsert from a join constraint.
		from, args = " WHERE TRUE", []any{subject, clientID, now, now}
		text += ", " + text
	} else {
		text += ", id"
	}
	res := s.conn(ctx).Exec(
		"INSERT INTO grants (subject, client_id, created_at, updated_at) SELECT "+text+", "+s.grantTimes()+
			from+grantUpsert(grantKeep), args...)
	if res.Error != nil {
		return false, translate(res.Error)
	}
	return res.RowsAffected > 0, nil
}

// revocationAttempts bounds how often a revocation the database aborted
// (deadlock, serialization failure, SQLite busy) is run again before the
// failure is reported.
const revocationAttempts = 5

// revocation runs fn in its own transaction and runs it again when the
// database aborted it in favour of a concurrent one: a revocation must not
// fail merely because it met a refresh. Inside a caller's transaction the
// caller owns the retry, so fn runs once.
func (s *Store) revocation(ctx context.Context, fn func(ctx context.Context) error) error {
	if InTransaction(ctx) {
		return fn(ctx)
	}
	var err error
	for attempt := range revocationAttempts {
		if attempt > 0 {
			// Jittered, growing pause so two revokers do not collide again.
			pause := time.Duration(attempt)*5*time.Millisecond + rand.N(5*time.Millisecond)
			select {
			case <-ctx.Done():
				return fmt.Errorf("storage: revocation: %w (after %v)", ctx.Err(), err)
			case <-time.After(pause):
			}
		}
		if err = s.InTx(ctx, fn); err == nil || !IsConflict(err) {
			return err
		}
	}
	return err
}

// revocableKinds are the rows that carry a grant: a code not yet redeemed
// is revoked with the tokens, so it cannot mint new ones afterwards.
var revocableKinds = []string{kindCode, kindAccess, kindRefresh}

// RevokeGrant deactivates every code, access and refresh token of a grant
// family. Once it returns, no token of the family is active, including a
// pair a concurrent refresh was committing.
func (s *Store) RevokeGrant(ctx context.Context, requestID string) error {
	return s.revocation(ctx, func(ctx context.Context) error {
		if err := s.lockGrantOfRequest(ctx, requestID); err != nil {
			return err
		}
		return translate(s.conn(ctx).Model(&tokenRow{}).
			Where("request_id = ? AND kind IN ? AND active", requestID, revocableKinds).Update("active", false).Error)
	})
}

// RevokeUserClientTokens deactivates every code and token a user holds for
// a client; after it returns none is active.
func (s *Store) RevokeUserClientTokens(ctx context.Context, subject, clientID string) error {
	return s.revocation(ctx, func(ctx context.Context) error {
		if _, err := s.lockGrant(ctx, subject, clientID); err != nil {
			return err
		}
		_, err := s.deactivateUserClient(ctx, subject, clientID)
		return err
	})
}

func (s *Store) deactivateUserClient(ctx context.Context, subject, clientID string) (int64, error) {
	res := s.conn(ctx).Model(&tokenRow{}).
		Where("client_id = ? AND subject = ? AND kind IN ? AND active", clientID, subject, revocableKinds).
		Update("active", false)
	return res.RowsAffected, translate(res.Error)
}

// DeleteAuthorization forgets a user's remembered consent for a client and
// revokes every code and token that user holds for it, in one transaction
// under the grant lock. It is ErrNotFound only when there was nothing to
// forget or revoke: a grant that was never remembered is revoked too.
func (s *Store) DeleteAuthorization(ctx context.Context, subject, clientID string) error {
	return s.revocation(ctx, func(ctx context.Context) error {
		known, err := s.lockGrant(ctx, subject, clientID)
		if err != nil {
			return err
		}
		if !known {
			return fmt.Errorf("authorization %s/%s: client: %w", subject, clientID, ErrNotFound)
		}
		db := s.conn(ctx)
		res := db.Where("subject = ? AND client_id = ?", subject, clientID).Delete(&Authorization{})
		if res.Error != nil {
			return translate(res.Error)
		}
		revoked, err := s.deactivateUserClient(ctx, subject, clientID)
		if err != nil {
			return err
		}
		if res.RowsAffected == 0 && revoked == 0 {
			return fmt.Errorf("authorization %s/%s: %w", subject, clientID, ErrNotFound)
		}
		// The grant is gone; its row comes back with the next one.
		return translate(db.Exec("DELETE FROM grants WHERE subject = ? AND client_id = ?", subject, clientID).Error)
	})
}
