package keys

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	jose3 "github.com/go-jose/go-jose/v3"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/secret"
	"github.com/latchhq/latch/storage"
)

// Store is what the manager needs from the database.
type Store interface {
	ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error)
	InsertSigningKey(ctx context.Context, k *storage.SigningKey) error
	RetireSigningKeys(ctx context.Context, alg string, activatedBefore, retiresAt time.Time) error
}

// Supported signing algorithms.
const (
	ES256 = "ES256"
	RS256 = "RS256"
)

// key is a signing key parsed once; signing never touches the database.
// priv is nil for a key this instance cannot open (sealed under a master
// key it does not hold, e.g. by an instance already restarted after a
// rewrap): its public half is still published and verifies, it never signs.
type key struct {
	kid       string
	alg       string
	priv      crypto.Signer
	pub       crypto.PublicKey
	public    jose.JSONWebKey
	fosite    *jose3.JSONWebKey
	activates time.Time
	retires   *time.Time
}

// Manager keeps the signing keys in memory and reloads them from the
// database, so every instance signs with and publishes the same set.
type Manager struct {
	store  RotationStore
	sealer *Sealer
	now    func() time.Time
	log    *slog.Logger

	mu   sync.RWMutex
	keys []*key // by activation time, oldest first

	verified verifiedCache

	audit Auditor

	// kidReload rate-limits reloads caused by tokens naming an unknown kid.
	kidReload   sync.Mutex
	lastKIDLoad time.Time
	// unopened counts loaded keys this instance cannot open (verify-only).
	unopened atomic.Int64
}

// Auditor records key events (audit.Recorder).
type Auditor interface {
	Record(ctx context.Context, e audit.Event)
}

// WithAudit makes the manager record every rotation and rewrap itself, so
// scheduled rotations are in the trail as well as the CLI's.
func (m *Manager) WithAudit(a Auditor) *Manager {
	m.audit = a
	return m
}

func (m *Manager) record(ctx context.Context, e audit.Event) {
	if m.audit != nil {
		m.audit.Record(ctx, e)
	}
}

// Unopened is how many published keys this instance cannot open with its
// master key; they verify but never sign. Non-zero means the master key is
// not the one the database is sealed with (see docs/postgres.md, rewrap).
func (m *Manager) Unopened() int64 { return m.unopened.Load() }

// kidReloadEvery bounds the reloads an unknown kid can cause per instance,
// so tokens with made-up kids cannot turn into a query each.
const kidReloadEvery = 5 * time.Second

// NewManager builds a manager; call Ensure before use. It takes the whole
// RotationStore, not just Store: every path that seals a key runs under the
// rotation lock, so a store that cannot lock or rewrap is a build error
// rather than a manager that fails at its first rotation.
func NewManager(store RotationStore, sealer *Sealer, now func() time.Time, log *slog.Logger) *Manager {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	return &Manager{store: store, sealer: sealer, now: now, log: log}
}

// Ensure loads the keys and, when no key of alg can sign now, creates one.
// Creation happens under the rotation lock after a reload, so instances
// starting together make one key per algorithm, not one each.
func (m *Manager) Ensure(ctx context.Context, algs ...string) error {
	if err := m.Reload(ctx); err != nil {
		return err
	}
	if len(algs) == 0 {
		algs = []string{ES256}
	}
	if len(m.missing(algs)) == 0 {
		return nil
	}
	err := m.locked(ctx, func(ctx context.Context) error {
		if err := m.Reload(ctx); err != nil {
			return err
		}
		for _, alg := range m.missing(algs) {
			if _, err := m.create(ctx, alg, m.now()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return m.Reload(ctx)
}

func (m *Manager) missing(algs []string) []string {
	var out []string
	for _, alg := range algs {
		if _, err := m.current(alg); err != nil {
			out = append(out, alg)
		}
	}
	return out
}

// ErrStaleMasterKey means this instance's master key no longer opens the
// database's data key: the database was rewrapped under a new master key.
var ErrStaleMasterKey = errors.New("this instance's master key is no longer the database's (it was rewrapped): restart it with the new LATCH_MASTER_KEY")

// locked runs fn in a transaction holding the rotation lock, after checking
// that this instance's master key is still the one the database is sealed
// with. Every path that seals a key goes through here, so an instance left
// on the old master key during a rolling rewrap refuses to seal instead of
// writing a row the new master key cannot open; and since rewrap holds the
// same lock, a key sealed just before it is rewrapped with the rest.
func (m *Manager) locked(ctx context.Context, fn func(ctx context.Context) error) error {
	rs := m.store
	return rs.InTx(ctx, func(ctx context.Context) error {
		if err := rs.LockSigningKeys(ctx); err != nil {
			return err
		}
		sealed, err := rs.KeyMaterial(ctx, dataKeyName)
		switch {
		case err == nil:
			if _, err := m.sealer.Open(sealed, dataKeyAAD()); err != nil {
				return ErrStaleMasterKey
			}
		case !errors.Is(err, storage.ErrNotFound):
			return fmt.Errorf("check master key: %w", err)
		}
		return fn(ctx)
	})
}

// Reload reads the key set from the database. Keys already parsed are kept,
// so a reload costs one query and no crypto.
func (m *Manager) Reload(ctx context.Context) error {
	rows, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	m.mu.RLock()
	known := make(map[string]*key, len(m.keys))
	for _, k := range m.keys {
		known[k.kid] = k
	}
	m.mu.RUnlock()

	next := make([]*key, 0, len(rows))
	var unopened int64
	for i := range rows {
		r := &rows[i]
		if k, ok := known[r.KID]; ok {
			k2 := *k
			k2.retires = r.RetiresAt
			next = append(next, &k2)
			if k.priv == nil {
				unopened++
			}
			continue
		}
		k, err := m.open(r)
		if err != nil {
			// One unreadable row must not take the instance down (or keep
			// it from starting): publish and verify with its public half,
			// sign with the keys it can open, and say so.
			k, err = verifyOnly(r)
			if err != nil {
				m.log.Error("signing key unusable, skipped", "kid", r.KID, "err", err)
				unopened++
				continue
			}
			m.log.Error("signing key does not open with this master key; it verifies but will not sign here (restart with the current LATCH_MASTER_KEY)", "kid", r.KID)
			unopened++
		}
		next = append(next, k)
	}
	m.unopened.Store(unopened)
	sort.SliceStable(next, func(i, j int) bool { return next[i].activates.Before(next[j].activates) })
	m.mu.Lock()
	m.keys = next
	m.mu.Unlock()
	return nil
}

// Run reloads the key set every interval until ctx ends, so a key rotated
// through another instance is published and used here too.
func (m *Manager) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := m.Reload(ctx); err != nil && ctx.Err() == nil {
				m.log.Warn("reload signing keys", "err", err)
			}
		}
	}
}

// Rotate adds a key of alg that is published at once and signs from
// now+prePublish, and retires the older keys of that alg once every token
// they signed has expired (retireAfter after the new key takes over).
func (m *Manager) Rotate(ctx context.Context, alg string, prePublish, retireAfter time.Duration) (string, error) {
	var kid string
	err := m.locked(ctx, func(ctx context.Context) (err error) {
		kid, err = m.rotate(ctx, alg, prePublish, retireAfter, "manual")
		return err
	})
	if err != nil {
		return "", err
	}
	return kid, m.Reload(ctx)
}

func (m *Manager) rotate(ctx context.Context, alg string, prePublish, retireAfter time.Duration, trigger string) (string, error) {
	activates := m.now().Add(prePublish)
	kid, err := m.create(ctx, alg, activates)
	if err != nil {
		return "", err
	}
	if err := m.store.RetireSigningKeys(ctx, alg, activates, activates.Add(retireAfter)); err != nil {
		return "", fmt.Errorf("retire old signing keys: %w", err)
	}
	// Recorded in the rotation's transaction: the event commits with it.
	m.record(ctx, audit.Event{Name: audit.KeyRotated, Details: map[string]any{
		"kid": kid, "alg": alg, "trigger": trigger, "activates_at": activates.UTC(),
		"pre_publish": prePublish.String(), "retire_after": retireAfter.String()}})
	return kid, nil
}

func (m *Manager) create(ctx context.Context, alg string, activates time.Time) (string, error) {
	var (
		priv crypto.Signer
		err  error
	)
	switch alg {
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		return "", fmt.Errorf("unsupported signing algorithm %q", alg)
	}
	if err != nil {
		return "", fmt.Errorf("generate %s key: %w", alg, err)
	}
	kid := secret.ID(12)
	pub, err := json.Marshal(jose.JSONWebKey{Key: priv.Public(), KeyID: kid, Algorithm: alg, Use: "sig"})
	if err != nil {
		return "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", err
	}
	row := &storage.SigningKey{
		KID: kid, Alg: alg, PublicJWK: string(pub),
		PrivateSealed: m.sealer.Seal(der, []byte(kid)),
		ActivatesAt:   activates.UTC(),
	}
	if err := m.store.InsertSigningKey(ctx, row); err != nil {
		return "", fmt.Errorf("store signing key: %w", err)
	}
	m.log.Info("signing key created", "kid", kid, "alg", alg, "activates_at", activates.UTC())
	return kid, nil
}

func (m *Manager) open(r *storage.SigningKey) (*key, error) {
	der, err := m.sealer.Open(r.PrivateSealed, []byte(r.KID))
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w (is LATCH_MASTER_KEY the one the keys were made with?)", r.KID, err)
	}
	p, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", r.KID, err)
	}
	priv, ok := p.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("signing key %s: unsupported key type %T", r.KID, p)
	}
	return &key{
		kid: r.KID, alg: r.Alg, priv: priv, pub: priv.Public(), activates: r.ActivatesAt, retires: r.RetiresAt,
		public: jose.JSONWebKey{Key: priv.Public(), KeyID: r.KID, Algorithm: r.Alg, Use: "sig"},
		// fosite's signer takes go-jose v3 keys; this is the one place we
		// build them.
		fosite: &jose3.JSONWebKey{Key: priv, KeyID: r.KID, Algorithm: r.Alg, Use: "sig"},
	}, nil
}

// verifyOnly builds a key from the row's public JWK alone.
func verifyOnly(r *storage.SigningKey) (*key, error) {
	var pub jose.JSONWebKey
	if err := json.Unmarshal([]byte(r.PublicJWK), &pub); err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	if !pub.Valid() || !pub.IsPublic() {
		return nil, errors.New("public key is not a valid public JWK")
	}
	return &key{
		kid: r.KID, alg: r.Alg, pub: pub.Key, activates: r.ActivatesAt, retires: r.RetiresAt,
		public: jose.JSONWebKey{Key: pub.Key, KeyID: r.KID, Algorithm: r.Alg, Use: "sig"},
	}, nil
}

// ErrNoKey means no key of the wanted algorithm can sign now.
var ErrNoKey = errors.New("no active signing key")

// current is the newest key of alg whose activation time has come.
func (m *Manager) current(alg string) (*key, error) {
	now := m.now()
	m.mu.RLock()
	defer m.mu.RUnlock()
	for i := len(m.keys) - 1; i >= 0; i-- {
		k := m.keys[i]
		if k.alg == alg && k.priv != nil && !k.activates.After(now) && (k.retires == nil || k.retires.After(now)) {
			return k, nil
		}
	}
	return nil, fmt.Errorf("%w for %s", ErrNoKey, alg)
}

// byKIDOrReload finds a published key; a kid this instance has not seen may
// be a key just made by another instance, so it reloads from the database
// (at most once per kidReloadEvery) and looks again.
func (m *Manager) byKIDOrReload(ctx context.Context, kid string) (*key, bool) {
	if k, ok := m.byKID(kid); ok {
		return k, true
	}
	m.kidReload.Lock()
	defer m.kidReload.Unlock()
	if k, ok := m.byKID(kid); ok {
		return k, true // another caller's reload found it
	}
	if now := time.Now(); now.Sub(m.lastKIDLoad) >= kidReloadEvery {
		m.lastKIDLoad = now
		if err := m.Reload(ctx); err != nil {
			m.log.Warn("reload signing keys for an unknown kid", "err", err)
		}
	}
	return m.byKID(kid)
}

// byKID finds a published key.
func (m *Manager) byKID(kid string) (*key, bool) {
	now := m.now()
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, k := range m.keys {
		if k.kid == kid && (k.retires == nil || k.retires.After(now)) {
			return k, true
		}
	}
	return nil, false
}

// JWKS is the public key set: every key not yet retired, including ones
// published ahead of signing, so rotation never breaks verification.
func (m *Manager) JWKS() jose.JSONWebKeySet {
	now := m.now()
	m.mu.RLock()
	defer m.mu.RUnlock()
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(m.keys))}
	for i := len(m.keys) - 1; i >= 0; i-- {
		k := m.keys[i]
		if k.retires == nil || k.retires.After(now) {
			set.Keys = append(set.Keys, k.public)
		}
	}
	return set
}

// KeyInfo describes a key for listing.
type KeyInfo struct {
	KID         string     `json:"kid"`
	Alg         string     `json:"alg"`
	ActivatesAt time.Time  `json:"activates_at"`
	RetiresAt   *time.Time `json:"retires_at,omitempty"`
	Current     bool       `json:"current"`
}

// List describes the loaded keys, newest first.
func (m *Manager) List() []KeyInfo {
	cur := map[string]bool{}
	for _, alg := range []string{ES256, RS256} {
		if k, err := m.current(alg); err == nil {
			cur[k.kid] = true
		}
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]KeyInfo, 0, len(m.keys))
	for i := len(m.keys) - 1; i >= 0; i-- {
		k := m.keys[i]
		out = append(out, KeyInfo{KID: k.kid, Alg: k.alg, ActivatesAt: k.activates, RetiresAt: k.retires, Current: cur[k.kid]})
	}
	return out
}
