package dsn_test

import (
	"strings"
	"testing"

	"github.com/latchhq/latch/storage/dsn"
)

func TestParse(t *testing.T) {
	cases := []struct {
		in   string
		want dsn.DSN
		err  string // a part of the error; "" when it parses
	}{
		{in: "sqlite://latch.db", want: dsn.DSN{Driver: dsn.SQLite, Path: "latch.db"}},
		{in: "sqlite:///var/lib/latch/latch.db", want: dsn.DSN{Driver: dsn.SQLite, Path: "/var/lib/latch/latch.db"}},
		// URL schemes are case-insensitive (RFC 3986 §3.1); the path is not.
		{in: "SQLite://x", want: dsn.DSN{Driver: dsn.SQLite, Path: "x"}},
		{in: "SQLITE:///Data/Latch.db", want: dsn.DSN{Driver: dsn.SQLite, Path: "/Data/Latch.db"}},
		{in: "postgres://latch:pw@db/latch", want: dsn.DSN{Driver: dsn.Postgres, URL: "postgres://latch:pw@db/latch"}},
		{in: "postgresql://latch:pw@db/latch?sslmode=disable", want: dsn.DSN{Driver: dsn.Postgres, URL: "postgresql://latch:pw@db/latch?sslmode=disable"}},
		// pgx recognises only a lower-case scheme: the parser hands it one.
		{in: "POSTGRESQL://latch:PW@DB/Latch", want: dsn.DSN{Driver: dsn.Postgres, URL: "postgresql://latch:PW@DB/Latch"}},
		{in: "Postgres://db/latch", want: dsn.DSN{Driver: dsn.Postgres, URL: "postgres://db/latch"}},
		{in: "sqlite://", err: "has no file path"},
		{in: "SQLite://", err: "has no file path"},
		{in: "mysql://u:hunter2@h/db", err: `unsupported scheme "mysql"`},
		{in: "", err: "is empty"},
		{in: "latch.db", err: `unsupported scheme ""`},
		{in: "host=db user=latch password=hunter2", err: `unsupported scheme ""`},
		{in: "sqlite:/latch.db", err: `unsupported scheme ""`},
	}
	for _, tc := range cases {
		got, err := dsn.Parse(tc.in)
		if tc.err == "" {
			if err != nil || got != tc.want {
				t.Errorf("Parse(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("Parse(%q) = %+v, %v; want an error with %q", tc.in, got, err, tc.err)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Parse(%q): error %q repeats the password", tc.in, err)
		}
	}
}
