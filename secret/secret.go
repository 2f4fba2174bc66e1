// Package secret makes and checks Latch's own high-entropy secrets: client
// secrets, API keys, session and cookie values. They are 256-bit random
// values, so a keyed SHA-256 (HMAC) is a sound verifier; a slow password
// hash would cost most of the token endpoint's time and buy nothing.
package secret

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"

	"github.com/ory/fosite"
)

// Random returns n random bytes, base64url-encoded without padding.
func Random(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand never fails on supported platforms; if it does, no
		// secret we could return would be safe.
		panic("secret: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// ID returns n random bytes as a base64url identifier that never starts
// with '-' or '_', so it can be passed as a command-line argument (a leading
// '-' reads as a flag) and sorts and displays without surprises.
func ID(n int) string {
	for {
		if id := Random(n); id[0] != '-' && id[0] != '_' {
			return id
		}
	}
}

// New returns a fresh 256-bit secret.
func New() string { return Random(32) }

const prefix = "hs256$"

// Hasher is a keyed SHA-256 verifier. It implements fosite.Hasher, so fosite
// checks client secrets with it instead of bcrypt.
type Hasher struct{ key []byte }

var _ fosite.Hasher = (*Hasher)(nil)

// NewHasher keys the hasher; derive the key from the master key so a stolen
// database alone does not let anyone test guesses offline.
func NewHasher(key []byte) *Hasher { return &Hasher{key: append([]byte(nil), key...)} }

// Sum returns the stored form of value for a purpose ("client", "apikey",
// "browser" ...); the purpose keeps one kind of value from matching another.
func (h *Hasher) Sum(purpose, value string) string {
	m := hmac.New(sha256.New, h.key)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return prefix + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Equal compares a stored hash with a presented value in constant time.
func (h *Hasher) Equal(purpose, stored, value string) bool {
	return hmac.Equal([]byte(stored), []byte(h.Sum(purpose, value)))
}

// Hash implements fosite.Hasher for client secrets.
func (h *Hasher) Hash(_ context.Context, data []byte) ([]byte, error) {
	return []byte(h.Sum("client", string(data))), nil
}

// ErrMismatch is returned when a secret does not match.
var ErrMismatch = errors.New("secret: mismatch")

// Compare implements fosite.Hasher: nil only when data matches hash.
func (h *Hasher) Compare(_ context.Context, hash, data []byte) error {
	if !strings.HasPrefix(string(hash), prefix) || !h.Equal("client", string(hash), string(data)) {
		return ErrMismatch
	}
	return nil
}
