package keys

import (
	"context"
	"fmt"
	"time"

	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/storage"
)

// RotationStore is what scheduled rotation and rewrapping need beyond
// Store: a transaction, a lock that one instance at a time can hold, and
// the age of the newest key.
type RotationStore interface {
	Store
	InTx(ctx context.Context, fn func(ctx context.Context) error) error
	LockSigningKeys(ctx context.Context) error
	NewestSigningKeyActivation(ctx context.Context, alg string) (time.Time, error)
	AllSigningKeys(ctx context.Context) ([]storage.SigningKey, error)
	SetSigningKeySealed(ctx context.Context, kid, sealed string) error
	AllKeyMaterial(ctx context.Context) ([]storage.KeyMaterial, error)
	SetKeyMaterialSealed(ctx context.Context, name, sealed string) error
	KeyMaterial(ctx context.Context, name string) (string, error)
}

// The database store is the one RotationStore; checked here so a method it
// lacks fails the build, not the first rotation.
var _ RotationStore = (*storage.Store)(nil)

// Schedule is the rotation policy.
type Schedule struct {
	Interval    time.Duration
	PrePublish  time.Duration
	RetireAfter time.Duration
}

// RotateIfDue rotates alg when its newest key started signing at least
// interval ago. The check and the insert share one transaction under a
// lock, so however many instances run the schedule, one rotation happens.
// It reports the new kid, or "" when no rotation was due.
func (m *Manager) RotateIfDue(ctx context.Context, alg string, sch Schedule) (string, error) {
	rs := m.store
	var kid string
	err := m.locked(ctx, func(ctx context.Context) error {
		newest, err := rs.NewestSigningKeyActivation(ctx, alg)
		if err != nil {
			return err
		}
		if !newest.IsZero() && m.now().Before(newest.Add(sch.Interval)) {
			return nil
		}
		kid, err = m.rotate(ctx, alg, sch.PrePublish, sch.RetireAfter, "schedule")
		return err
	})
	if err != nil || kid == "" {
		return "", err
	}
	m.log.Info("signing key rotated on schedule", "alg", alg, "kid", kid)
	return kid, m.Reload(ctx)
}

// RunSchedule checks every check interval whether a rotation is due for
// each algorithm in use, until ctx ends.
func (m *Manager) RunSchedule(ctx context.Context, sch Schedule, check time.Duration) {
	t := time.NewTicker(check)
	defer t.Stop()
	for {
		for _, alg := range m.algsInUse() {
			if _, err := m.RotateIfDue(ctx, alg, sch); err != nil && ctx.Err() == nil {
				m.log.Warn("scheduled key rotation", "alg", alg, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (m *Manager) algsInUse() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	seen := map[string]bool{}
	var out []string
	for _, k := range m.keys {
		if !seen[k.alg] {
			seen[k.alg] = true
			out = append(out, k.alg)
		}
	}
	return out
}

// Rewrap re-encrypts every private key, retired ones included, from the
// manager's sealer to next in one transaction: either all keys move to
// the new master key or none does.
func (m *Manager) Rewrap(ctx context.Context, next *Sealer) (int, error) {
	rs := m.store
	n := 0
	err := rs.InTx(ctx, func(ctx context.Context) error {
		if err := rs.LockSigningKeys(ctx); err != nil {
			return err
		}
		rows, err := rs.AllSigningKeys(ctx)
		if err != nil {
			return err
		}
		for _, r := range rows {
			der, err := m.sealer.Open(r.PrivateSealed, []byte(r.KID))
			if err != nil {
				return fmt.Errorf("signing key %s: %w (is the current master key the one the keys were made with?)", r.KID, err)
			}
			if err := rs.SetSigningKeySealed(ctx, r.KID, next.Seal(der, []byte(r.KID))); err != nil {
				return fmt.Errorf("signing key %s: %w", r.KID, err)
			}
			n++
		}
		// The data key moves with them, so every secret and token derived
		// from it stays valid under the new master key.
		material, err := rs.AllKeyMaterial(ctx)
		if err != nil {
			return err
		}
		for _, km := range material {
			aad := []byte("key_material/" + km.Name)
			raw, err := m.sealer.Open(km.Sealed, aad)
			if err != nil {
				return fmt.Errorf("key material %s: %w", km.Name, err)
			}
			if err := rs.SetKeyMaterialSealed(ctx, km.Name, next.Seal(raw, aad)); err != nil {
				return err
			}
			n++
		}
		m.record(ctx, audit.Event{Name: audit.KeyRewrapped, Details: map[string]any{"rows": n}})
		return nil
	})
	return n, err
}
