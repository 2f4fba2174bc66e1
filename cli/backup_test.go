package cli_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/latchhq/latch/latchtest"
)

func postJSON(t *testing.T, url string, body any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", latchtest.APIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("POST %s: %v", url, err)
		return 0, nil
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// `latch backup` of a database that is serving and taking writes yields a
// copy another instance starts on, with a client that still gets tokens.
func TestBackupOfALiveDatabaseRestores(t *testing.T) {
	addr := freeAddr(t)
	env := serveEnv(t, addr)
	s := startServe(t, env)
	base := "http://" + addr
	s.waitReady(t, base+"/health/ready")

	status, m2m := postJSON(t, base+"/api/clients", map[string]any{
		"client_name": "Batch", "grant_types": []string{"client_credentials"}, "response_types": []string{},
	})
	if status != http.StatusCreated {
		t.Fatalf("create machine client: %d %v", status, m2m)
	}
	clientID, secret := m2m["client_id"].(string), m2m["client_secret"].(string)

	// Writers keep creating clients and issuing tokens while the backup runs.
	var (
		stop    atomic.Bool
		wg      sync.WaitGroup
		written atomic.Int64
	)
	cc := clientcredentials.Config{ClientID: clientID, ClientSecret: secret, TokenURL: base + "/oauth2/token"}
	for w := range 2 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				if w == 0 {
					if st, _ := postJSON(t, base+"/api/clients", map[string]any{
						"client_name": "live", "redirect_uris": []string{"https://app.example/cb"},
						"grant_types": []string{"authorization_code"}, "response_types": []string{"code"},
					}); st == http.StatusCreated {
						written.Add(1)
					}
				} else if _, err := cc.Token(t.Context()); err == nil {
					written.Add(1)
				}
			}
		})
	}
	waitFor(t, "writes before the backup", func() bool { return written.Load() >= 20 })
	before := written.Load()
	dst := filepath.Join(t.TempDir(), "backup.db")
	code, out, errOut := run(t, t.Context(), env, "backup", dst)
	waitFor(t, "writes after the backup", func() bool { return written.Load() >= before+20 })
	stop.Store(true)
	wg.Wait()
	if code != 0 {
		t.Fatalf("backup: exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "backed up") || !strings.Contains(out, dst) {
		t.Errorf("backup output %q", out)
	}
	if st, err := os.Stat(dst); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("backup file mode: %v %v, want 0600 (it holds sealed keys and hashes)", st.Mode(), err)
	}
	if code := s.stop(); code != 0 {
		t.Fatalf("serve exit %d", code)
	}

	// Restore: a new instance on the copy, same master key.
	addr2 := freeAddr(t)
	s2 := startServe(t, serveEnvDSN("sqlite://"+dst, addr2))
	base2 := "http://" + addr2
	s2.waitReady(t, base2+"/health/ready")
	cc.TokenURL = base2 + "/oauth2/token"
	tok, err := cc.Token(t.Context())
	if err != nil || tok.AccessToken == "" {
		t.Fatalf("the client from before the backup cannot get a token from the restored copy: %v", err)
	}
	if status, body := get(t, base2+"/api/clients/"+clientID, "X-API-Key", latchtest.APIKey); status != http.StatusOK || !strings.Contains(body, "Batch") {
		t.Errorf("restored client: %d %s", status, body)
	}

	// Refusals: never overwrite, never pretend to back up PostgreSQL.
	if code, _, errOut := run(t, t.Context(), env, "backup", dst); code == 0 || !strings.Contains(errOut, "already exists; latch backup never overwrites a file") {
		t.Errorf("backup over an existing file: %d %q", code, errOut)
	}
	pg := []string{"LATCH_DATABASE_DSN=postgres://u:p@127.0.0.1:1/db", "LATCH_MASTER_KEY=" + latchtest.MasterKey}
	if code, _, errOut := run(t, t.Context(), pg, "backup", filepath.Join(t.TempDir(), "x.db")); code == 0 || !strings.Contains(errOut, "pg_dump") {
		t.Errorf("backup on PostgreSQL: %d %q", code, errOut)
	}
}
