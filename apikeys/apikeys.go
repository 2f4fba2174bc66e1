// Package apikeys owns the admin API keys (X-API-Key): making, adopting,
// revoking and checking them, and the audit event each of those writes, so
// the app, its first start and the CLI record the same events the same way.
package apikeys

import (
	"context"
	"errors"
	"fmt"

	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/secret"
	"github.com/latchhq/latch/storage"
)

// Store is what the service reads and changes.
type Store interface {
	CreateAPIKey(ctx context.Context, k *storage.APIKey) error
	RevokeAPIKey(ctx context.Context, id string) error
	APIKeyByHash(ctx context.Context, hash string) (*storage.APIKey, error)
	APIKeyByHashAny(ctx context.Context, hash string) (*storage.APIKey, error)
}

// Auditor records the events (audit.Recorder; a nil *audit.Recorder
// records nothing).
type Auditor interface {
	Record(ctx context.Context, e audit.Event)
}

// Sources say what made a key, in the api_key.created event.
const (
	SourceCLI        = "cli"
	SourceFirstStart = "first start"
	SourceConfig     = "LATCH_API_KEY"
)

var (
	// ErrMissing: no key was presented.
	ErrMissing = errors.New("apikeys: no API key presented")
	// ErrInvalid: the key presented is unknown or revoked.
	ErrInvalid = errors.New("apikeys: invalid API key")
)

// Service is the one place API keys change and are checked.
type Service struct {
	store  Store
	hasher *secret.Hasher
	audit  Auditor
}

// New builds the service.
func New(store Store, hasher *secret.Hasher, a Auditor) *Service {
	return &Service{store: store, hasher: hasher, audit: a}
}

func (s *Service) record(ctx context.Context, e audit.Event) {
	if s.audit != nil {
		s.audit.Record(ctx, e)
	}
}

func (s *Service) hash(plain string) string { return s.hasher.Sum("apikey", plain) }

// Create makes a new key of 256 random bits named name, stores only its
// hash, records api_key.created with source, and returns the row and the
// key in plaintext, once. Inside a transaction the event commits with it.
func (s *Service) Create(ctx context.Context, name, source string) (*storage.APIKey, string, error) {
	plain := "latch_" + secret.New()
	k, err := s.Adopt(ctx, secret.ID(9), name, plain, source)
	return k, plain, err
}

// Adopt stores a key chosen elsewhere (LATCH_API_KEY) under id and records
// api_key.created with source.
func (s *Service) Adopt(ctx context.Context, id, name, plain, source string) (*storage.APIKey, error) {
	k := &storage.APIKey{ID: id, Name: name, Hash: s.hash(plain)}
	if err := s.store.CreateAPIKey(ctx, k); err != nil {
		return nil, fmt.Errorf("create api key: %w", err)
	}
	s.record(ctx, audit.Event{Name: audit.APIKeyCreated, Details: map[string]any{"api_key_id": k.ID, "name": k.Name, "source": source}})
	return k, nil
}

// Find returns the row for a plaintext key, revoked or not.
func (s *Service) Find(ctx context.Context, plain string) (*storage.APIKey, error) {
	return s.store.APIKeyByHashAny(ctx, s.hash(plain))
}

// Revoke stops a live key at once and records api_key.revoked;
// storage.ErrNotFound when no live key has that id.
func (s *Service) Revoke(ctx context.Context, id string) error {
	if err := s.store.RevokeAPIKey(ctx, id); err != nil {
		return err
	}
	s.record(ctx, audit.Event{Name: audit.APIKeyRevoked, Details: map[string]any{"api_key_id": id}})
	return nil
}

// Check finds the live key presented for a request (method, route) and
// records api_key.used, or api_key.failed with ErrMissing, ErrInvalid or
// the store's error.
func (s *Service) Check(ctx context.Context, presented, method, route string) (*storage.APIKey, error) {
	ev := audit.Event{Name: audit.APIKeyUsed, Details: map[string]any{"method": method, "route": route}}
	k, err := s.check(ctx, presented)
	if err != nil {
		ev.Name, ev.Outcome = audit.APIKeyFailed, audit.Failure
	} else {
		ev.ActorType, ev.ActorID = audit.ActorAPIKey, k.ID
	}
	s.record(ctx, ev)
	return k, err
}

func (s *Service) check(ctx context.Context, presented string) (*storage.APIKey, error) {
	if presented == "" {
		return nil, ErrMissing
	}
	k, err := s.store.APIKeyByHash(ctx, s.hash(presented))
	switch {
	case storage.IsNotFound(err):
		return nil, ErrInvalid
	case err != nil:
		return nil, fmt.Errorf("look up api key: %w", err)
	}
	return k, nil
}
