// Package keys owns Latch's key material: the master key and what is derived
// from it, AES-256-GCM sealing of secrets at rest, and the token-signing keys
// with their rotation, JWKS and fosite signer.
package keys

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/latchhq/latch/keys/masterkey"
	"github.com/latchhq/latch/storage"
)

// MasterKey is the 32-byte root of every derived secret and the key that
// seals private keys at rest; masterkey decodes it and derives from it.
type MasterKey = masterkey.Key

// LoadMasterKey returns the configured key, else the one in path, else
// generates one into path (mode 0600) and reports generated=true.
func LoadMasterKey(configured, path string) (k MasterKey, generated bool, err error) {
	if configured != "" {
		k, err = masterkey.Decode(configured)
		if err != nil {
			return k, false, fmt.Errorf("master key %w", err)
		}
		return k, false, nil
	}
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		k, err = masterkey.Decode(string(b))
		if err != nil {
			return k, false, fmt.Errorf("%s: master key %w", path, err)
		}
		return k, false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return k, false, fmt.Errorf("read master key: %w", err)
	}
	if _, err := rand.Read(k[:]); err != nil {
		return k, false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return k, false, fmt.Errorf("create master key file: %w", err)
	}
	if _, err := f.WriteString(base64.StdEncoding.EncodeToString(k[:]) + "\n"); err != nil {
		f.Close()
		return k, false, fmt.Errorf("write master key file: %w", err)
	}
	return k, true, f.Close()
}

// SealedDataStore says whether a database already holds data sealed with
// some master key.
type SealedDataStore interface {
	ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error)
	AllKeyMaterial(ctx context.Context) ([]storage.KeyMaterial, error)
}

// LoadOrCreateMasterKey is LoadMasterKey for a database: it generates a key
// into a missing path only when the database holds nothing sealed yet. A
// database with sealed data and no key file has lost its key file; a new key
// could never open that data, and writing one would only turn the clear
// problem into a confusing one later.
func LoadOrCreateMasterKey(ctx context.Context, configured, path string, db SealedDataStore) (MasterKey, bool, error) {
	if configured == "" {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			sealed, err := hasSealedData(ctx, db)
			if err != nil {
				return MasterKey{}, false, fmt.Errorf("check the database for sealed keys: %w", err)
			}
			if sealed {
				return MasterKey{}, false, fmt.Errorf("%s is missing, but the database already holds keys sealed with the master key it held: restore that file from a backup (or set LATCH_MASTER_KEY to the key it held); no new key was written, since it could not open them", path)
			}
		}
	}
	return LoadMasterKey(configured, path)
}

func hasSealedData(ctx context.Context, db SealedDataStore) (bool, error) {
	sk, err := db.ListSigningKeys(ctx)
	if err != nil || len(sk) > 0 {
		return len(sk) > 0, err
	}
	km, err := db.AllKeyMaterial(ctx)
	return len(km) > 0, err
}

// Sealer encrypts small secrets with AES-256-GCM.
type Sealer struct{ aead cipher.AEAD }

// NewSealer makes a sealer under a key derived from the master key.
func NewSealer(k MasterKey) *Sealer {
	block, err := aes.NewCipher(k.Derive("seal"))
	if err != nil {
		panic("keys: aes: " + err.Error())
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic("keys: gcm: " + err.Error())
	}
	return &Sealer{aead: aead}
}

const sealPrefix = "v1."

// Seal encrypts plaintext bound to aad (e.g. the key id, so a sealed value
// cannot be moved to another row).
func (s *Sealer) Seal(plaintext, aad []byte) string {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic("keys: crypto/rand failed: " + err.Error())
	}
	ct := s.aead.Seal(nonce, nonce, plaintext, aad)
	return sealPrefix + base64.RawStdEncoding.EncodeToString(ct)
}

// Open decrypts a value made by Seal with the same aad.
func (s *Sealer) Open(sealed string, aad []byte) ([]byte, error) {
	if !strings.HasPrefix(sealed, sealPrefix) {
		return nil, errors.New("sealed value has an unknown format")
	}
	b, err := base64.RawStdEncoding.DecodeString(strings.TrimPrefix(sealed, sealPrefix))
	if err != nil || len(b) < s.aead.NonceSize() {
		return nil, errors.New("sealed value is malformed")
	}
	n := s.aead.NonceSize()
	pt, err := s.aead.Open(nil, b[:n], b[n:], aad)
	if err != nil {
		return nil, errors.New("sealed value does not open with this master key")
	}
	return pt, nil
}
