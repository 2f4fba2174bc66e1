package cimd_test

import (
	"context"
	"errors"
	"testing"

	"github.com/ory/fosite"

	"github.com/latchhq/latch/cimd"
	"github.com/latchhq/latch/storage"
)

// TestRefusalIsNotFound: a refused document is an unknown client in
// storage's own words (storage.ExternalClients promises an error
// storage.IsNotFound recognises, and the approval and management services
// branch on it) and, beneath them, in fosite's, which fosite's client
// lookups branch on.
func TestRefusalIsNotFound(t *testing.T) {
	r := cimd.New(cimd.Options{Enabled: true, Denied: []string{"denied.example"}}, nil, nil)
	for _, id := range []string{
		"https://documents.example/",            // no path: refused before any fetch
		"https://documents.example/a.json#frag", // a fragment
		"https://denied.example/client.json",    // the operator's policy
	} {
		_, err := r.Client(context.Background(), id)
		var refused *cimd.Error
		if !errors.As(err, &refused) {
			t.Fatalf("%s: %v, want a refusal", id, err)
		}
		if !storage.IsNotFound(err) {
			t.Errorf("%s: storage.IsNotFound(%v) = false", id, err)
		}
		if !errors.Is(err, fosite.ErrNotFound) {
			t.Errorf("%s: errors.Is(%v, fosite.ErrNotFound) = false", id, err)
		}
	}
}
