package masterkey_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/keys"
	"github.com/latchhq/latch/keys/masterkey"
)

// TestDecode: every form an operator may write decodes to the same key, and
// configuration validation, loading a configured key and loading a key file
// agree on every row, so a key config accepts is the key that loads.
func TestDecode(t *testing.T) {
	// 0xfb 0xff make the standard and URL-safe alphabets differ (+/ and -_).
	raw := bytes.Repeat([]byte{0xfb, 0xff, 0x3e}, 11)[:masterkey.Size]
	var want masterkey.Key
	copy(want[:], raw)
	cases := []struct {
		name, in string
		err      string // a part of the error; "" when it decodes to want
	}{
		{"standard, padded", base64.StdEncoding.EncodeToString(raw), ""},
		{"standard, unpadded", base64.RawStdEncoding.EncodeToString(raw), ""},
		{"URL-safe, padded", base64.URLEncoding.EncodeToString(raw), ""},
		{"URL-safe, unpadded", base64.RawURLEncoding.EncodeToString(raw), ""},
		{"a key file's newline", base64.StdEncoding.EncodeToString(raw) + "\n", ""},
		{"surrounding spaces", "  " + base64.RawURLEncoding.EncodeToString(raw) + "\t", ""},
		{"31 bytes", base64.StdEncoding.EncodeToString(raw[:31]), "decodes to 31 bytes"},
		{"33 bytes", base64.StdEncoding.EncodeToString(append(raw, 0)), "decodes to 33 bytes"},
		{"16 bytes, unpadded", base64.RawURLEncoding.EncodeToString(raw[:16]), "decodes to 16 bytes"},
		{"garbage", "this is not base64 at all ###", "not valid base64"},
		{"mixed alphabets", strings.Replace(base64.StdEncoding.EncodeToString(raw), "+", "-", 1), "not valid base64"},
		{"white space inside", base64.StdEncoding.EncodeToString(raw[:16]) + " " + base64.StdEncoding.EncodeToString(raw[16:]), "not valid base64"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := masterkey.Decode(tc.in)
			switch {
			case tc.err == "" && (err != nil || got != want):
				t.Fatalf("Decode = %x, %v; want %x", got, err, want)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("Decode = %x, %v; want an error with %q", got, err, tc.err)
			}

			cfg := config.Default()
			cfg.MasterKey = tc.in
			configErr := masterKeyProblem(t, cfg.Validate())
			loaded, _, loadErr := keys.LoadMasterKey(tc.in, filepath.Join(t.TempDir(), "unused.key"))
			file := filepath.Join(t.TempDir(), "latch.key")
			if err := os.WriteFile(file, []byte(tc.in), 0o600); err != nil {
				t.Fatal(err)
			}
			fromFile, generated, fileErr := keys.LoadMasterKey("", file)
			for name, e := range map[string]error{"config validation": configErr, "a configured key": loadErr, "the key file": fileErr} {
				if (e == nil) != (tc.err == "") {
					t.Errorf("%s: %v, but Decode: %v", name, e, err)
				}
				if e != nil && strings.Contains(e.Error(), strings.TrimSpace(tc.in)) {
					t.Errorf("%s: error %q repeats the key", name, e)
				}
			}
			if tc.err == "" && (loaded != want || fromFile != want || generated) {
				t.Errorf("loaded %x from config and %x from the file (generated %v), want %x", loaded, fromFile, generated, want)
			}
		})
	}
}

// masterKeyProblem is Validate's master_key problem, or nil.
func masterKeyProblem(t *testing.T, err error) error {
	t.Helper()
	var ve *config.ValidationError
	if err != nil && !errors.As(err, &ve) {
		t.Fatalf("Validate: %v", err)
	}
	if ve != nil {
		for _, p := range ve.Problems {
			if p.Key == "master_key" {
				return errors.New(p.String())
			}
		}
	}
	return nil
}
