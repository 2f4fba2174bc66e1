package tokenagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Store persists an agent's token set. Load answers nil, nil when there is
// none. Save is called before a refresh token is sent (with it removed)
// and after every new token set.
type Store interface {
	Load(ctx context.Context) (*Token, error)
	Save(ctx context.Context, t *Token) error
}

// FileStore keeps the token set in one JSON file, mode 0600, replaced
// atomically (write to a temporary file, then rename), so a crash never
// leaves half a file.
type FileStore struct {
	Path string
}

// Load reads the file; a missing file is no token.
func (s FileStore) Load(context.Context) (*Token, error) {
	b, err := os.ReadFile(s.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var t Token
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("%s: %w", s.Path, err)
	}
	return &t, nil
}

// Save writes the file.
func (s FileStore) Save(_ context.Context, t *Token) error {
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(s.Path), "."+filepath.Base(s.Path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	// CreateTemp makes the file 0600 already; say so for readers and for
	// umasks that would not matter anyway.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), s.Path)
}
