// Package masterkey is Latch's master key: the one decoder of the form an
// operator gives it in (master_key, LATCH_MASTER_KEY, --new-master-key, the
// latch.key file), shared by config's validation and keys' loading so a key
// the configuration accepts is the key that loads, and the derivation of
// per-purpose keys from it. It is a leaf so config can use it without
// linking keys' storage.
package masterkey

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Size is the decoded length a master key must have.
const Size = 32

// Key is a decoded master key: the root of every derived secret and the
// key that seals private keys at rest.
type Key [Size]byte

// Derive returns a 32-byte key for one purpose (HKDF-SHA256), so one master
// key can key the secret hasher, the token HMAC and the sealer independently.
func (k Key) Derive(purpose string) []byte {
	out, err := hkdf.Key(sha256.New, k[:], nil, "latch/"+purpose, 32)
	if err != nil {
		panic("masterkey: hkdf: " + err.Error()) // only fails for absurd lengths
	}
	return out
}

// Decode reads base64 of exactly Size bytes, standard or URL-safe, padded
// or not; surrounding white space (a key file's newline) is ignored. Errors
// read after "master key" and never contain the key.
func Decode(s string) (Key, error) {
	var k Key
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{
		base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding,
	} {
		b, err := enc.DecodeString(s)
		if err != nil {
			continue
		}
		if len(b) != Size {
			return k, fmt.Errorf("must be base64 of exactly %d bytes, but decodes to %d bytes", Size, len(b))
		}
		copy(k[:], b)
		return k, nil
	}
	return k, errors.New("is not valid base64 (standard or URL-safe, padded or not)")
}
