package storage

import (
	"errors"

	"github.com/ory/fosite"
)

// The store's own words for the two failures every caller branches on, so
// packages that are not fosite (keys, the CLI, the management API) need not
// speak fosite to tell them apart. Each unwraps to the fosite sentinel fosite
// itself branches on, which keeps fosite's storage contract (a missing row is
// fosite.ErrNotFound, a lost race fosite.ErrSerializationFailure) at this one
// boundary: errors.Is matches either word.
var (
	// ErrNotFound: no such row (or one that is expired, revoked or
	// malformed, where callers are not told the difference).
	ErrNotFound error = &fositeWord{msg: "storage: not found", fosite: fosite.ErrNotFound}
	// ErrConflict: a unique key taken, a serialization failure or a
	// deadlock: another writer won, and the caller may retry.
	ErrConflict error = &fositeWord{msg: "storage: conflict", fosite: fosite.ErrSerializationFailure}
)

type fositeWord struct {
	msg    string
	fosite error
}

func (e *fositeWord) Error() string { return e.msg }
func (e *fositeWord) Unwrap() error { return e.fosite }

// IsConflict reports a unique violation or serialization failure.
func IsConflict(err error) bool { return errors.Is(err, ErrConflict) }

// IsNotFound reports a missing row.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
