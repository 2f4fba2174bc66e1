package keys

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/latchhq/latch/storage"
)

// DataKeyStore keeps sealed key material.
type DataKeyStore interface {
	KeyMaterial(ctx context.Context, name string) (string, error)
	AddKeyMaterial(ctx context.Context, name, sealed string) error
	// HoldsData reports whether anything keyed was ever written: a
	// signing key, a client or an API key.
	HoldsData(ctx context.Context) (bool, error)
}

// dataKeyName names the root data key row.
const dataKeyName = "data-key"

func dataKeyAAD() []byte { return []byte("key_material/" + dataKeyName) }

// LoadDataKey returns the deployment's data key, creating it on first use.
// Everything keyed rather than sealed — client-secret and API-key hashes,
// code and refresh-token HMACs, DPoP nonces — derives from it, not from the
// master key, so rewrapping under a new master key leaves them all valid.
// It has the master key's type because it is used the same way: Derive.
//
// A database written before schema 4 has no data key but holds hashes and
// HMACs made with master.Derive(purpose). Its first data key is therefore
// the master key itself, sealed: data.Derive(purpose) is then exactly the
// key those hashes were made with, and from here on the data key travels
// with rewraps like any other. A database that holds nothing gets a random
// data key.
func LoadDataKey(ctx context.Context, store DataKeyStore, sealer *Sealer, master MasterKey) (MasterKey, error) {
	var k MasterKey
	sealed, err := store.KeyMaterial(ctx, dataKeyName)
	if errors.Is(err, storage.ErrNotFound) {
		legacy, err := store.HoldsData(ctx)
		if err != nil {
			return k, fmt.Errorf("load data key: %w", err)
		}
		if legacy {
			k = master
		} else if _, err := rand.Read(k[:]); err != nil {
			return k, err
		}
		if err := store.AddKeyMaterial(ctx, dataKeyName, sealer.Seal(k[:], dataKeyAAD())); err != nil {
			return k, fmt.Errorf("store data key: %w", err)
		}
		// Read back: a concurrent first start may have won the insert.
		sealed, err = store.KeyMaterial(ctx, dataKeyName)
		if err != nil {
			return k, fmt.Errorf("load data key: %w", err)
		}
	} else if err != nil {
		return k, fmt.Errorf("load data key: %w", err)
	}
	raw, err := sealer.Open(sealed, dataKeyAAD())
	if err != nil {
		return k, fmt.Errorf("data key: %w (is LATCH_MASTER_KEY the one this database was set up with?)", err)
	}
	if len(raw) != len(k) {
		return k, errors.New("data key has the wrong length")
	}
	copy(k[:], raw)
	return k, nil
}
