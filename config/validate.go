package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/latchhq/latch/keys/masterkey"
	"github.com/latchhq/latch/storage/dsn"
)

// MinAPIKeyLength is the shortest admin API key accepted from the
// configuration (SPEC §1); generated keys carry 256 random bits.
const MinAPIKeyLength = 32

// Problem is one thing wrong with a configuration.
type Problem struct {
	// Key is the dotted config key (e.g. "http.addr"), or the environment
	// variable name when the problem is with the variable itself.
	Key     string
	Message string
}

func (p Problem) String() string { return p.Key + ": " + p.Message }

// ValidationError lists every problem found, so operators can fix them all
// in one go instead of discovering them one restart at a time.
type ValidationError struct {
	Problems []Problem
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	if len(e.Problems) == 1 {
		b.WriteString("invalid configuration: ")
		b.WriteString(e.Problems[0].String())
		return b.String()
	}
	fmt.Fprintf(&b, "invalid configuration (%d problems):", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  - ")
		b.WriteString(p.String())
	}
	return b.String()
}

// problems accumulates Problems; a nil-safe helper keeps call sites short.
type problems []Problem

func (ps *problems) add(key, format string, args ...any) {
	*ps = append(*ps, Problem{Key: key, Message: fmt.Sprintf(format, args...)})
}

func (ps problems) err() error {
	if len(ps) == 0 {
		return nil
	}
	return &ValidationError{Problems: ps}
}

// Validate checks the configuration and returns a *ValidationError listing
// every problem, or nil. Secret values are never included in messages.
func (c *Config) Validate() error {
	var ps problems
	c.validate(&ps)
	return ps.err()
}

func (c *Config) validate(ps *problems) {
	validateIssuer(ps, c.Issuer, c.Issuer == defaultIssuer(c.HTTP.Addr))
	c.validateDatabase(ps)
	c.validatePprof(ps)
	c.validateListeners(ps)

	if c.MasterKey != "" {
		if _, err := masterkey.Decode(c.MasterKey); err != nil {
			ps.add("master_key", "%v", err)
		}
	}

	if c.Approval.URL != "" {
		validateApprovalURL(ps, c.Approval.URL)
	} else if u, err := url.Parse(c.Issuer); err == nil && u.Host != "" && !LoopbackIssuer(c.Issuer) {
		// The built-in page approves anyone as anyone: reachable through a
		// public issuer it would hand out codes for any user (SPEC §1).
		ps.add("approval.url", "must be set (LATCH_APPROVAL_URL) to the host app's approval page: the issuer %q is not a loopback address, and the built-in development consent page, which approves anyone as anyone, is served only for loopback issuers", c.Issuer)
	}
	if n := utf8.RuneCountInString(c.API.Key); c.API.Key != "" && n < MinAPIKeyLength {
		// A short admin key can be guessed; the value itself is never shown.
		ps.add("api.key", "must be at least %d characters, got %d; generate one with `openssl rand -base64 32` or leave it empty to have Latch generate one", MinAPIKeyLength, n)
	}

	validateAddr(ps, c.HTTP.Addr)
	if c.HTTP.MaxBodyBytes <= 0 {
		ps.add("http.max_body_bytes", "must be greater than 0, got %d", c.HTTP.MaxBodyBytes)
	}

	for _, d := range []struct {
		key string
		val time.Duration
		max time.Duration // 0 means unbounded
	}{
		{"http.read_timeout", c.HTTP.ReadTimeout, 0},
		{"http.read_header_timeout", c.HTTP.ReadHeaderTimeout, 0},
		{"http.write_timeout", c.HTTP.WriteTimeout, 0},
		{"http.idle_timeout", c.HTTP.IdleTimeout, 0},
		{"approval.session_lifetime", c.Approval.SessionLifetime, MaxApprovalSessionLifetime},
		{"login.session_lifetime", c.Login.SessionLifetime, 0},
		{"tokens.access_token_lifetime", c.Tokens.AccessTokenLifetime, 0},
		{"tokens.refresh_token_lifetime", c.Tokens.RefreshTokenLifetime, 0},
		{"tokens.id_token_lifetime", c.Tokens.IDTokenLifetime, 0},
		{"tokens.code_lifetime", c.Tokens.CodeLifetime, MaxCodeLifetime},
		{"dpop.iat_window", c.DPoP.IATWindow, MaxDPoPIATWindow},
		{"dpop.nonce_lifetime", c.DPoP.NonceLifetime, 0},
		{"par.lifetime", c.PAR.Lifetime, MaxPARLifetime},
		{"keys.retire_after", c.Keys.RetireAfter, 0},
		{"keys.reload_interval", c.Keys.ReloadInterval, 0},
		{"janitor.replay_grace", c.Janitor.ReplayGrace, 0},
		{"logout.backchannel_retry_delay", c.Logout.BackchannelRetryDelay, time.Hour},
		{"logout.backchannel_poll_interval", c.Logout.BackchannelPollInterval, 0},
	} {
		switch {
		case d.val <= 0:
			ps.add(d.key, "must be greater than 0, got %s", d.val)
		case d.max > 0 && d.val > d.max:
			ps.add(d.key, "must be at most %s, got %s", d.max, d.val)
		}
	}

	if c.Audit.Retention < 0 {
		ps.add("audit.retention", "must be 0 (keep forever) or positive, got %s", c.Audit.Retention)
	}
	if c.Audit.ExportSettle < time.Second {
		ps.add("audit.export_settle", "must be at least 1s (it bounds audit inserts to a third of it), got %s", c.Audit.ExportSettle)
	}
	if c.Keys.RotationInterval < 0 {
		ps.add("keys.rotation_interval", "must be 0 (off) or positive, got %s", c.Keys.RotationInterval)
	}
	if c.Keys.PrePublication < 0 {
		ps.add("keys.pre_publication", "must not be negative, got %s", c.Keys.PrePublication)
	}
	// A key retired before the tokens it signed expire would make those
	// tokens unverifiable through the JWKS.
	if longest := max(c.Tokens.AccessTokenLifetime, c.Tokens.IDTokenLifetime); c.Keys.RetireAfter < longest {
		ps.add("keys.retire_after", "must be at least the longest JWT lifetime (%s), got %s", longest, c.Keys.RetireAfter)
	}
	if c.Janitor.Interval < 0 {
		ps.add("janitor.interval", "must be 0 (disabled) or more, got %s", c.Janitor.Interval)
	}
	if c.Janitor.BatchSize <= 0 {
		ps.add("janitor.batch_size", "must be greater than 0, got %d", c.Janitor.BatchSize)
	}

	if c.Logout.BackchannelMaxAttempts < 1 || c.Logout.BackchannelMaxAttempts > 50 {
		ps.add("logout.backchannel_max_attempts", "must be between 1 and 50, got %d", c.Logout.BackchannelMaxAttempts)
	}
	oneOf(ps, "logout.revoke_tokens", c.Logout.RevokeTokens, RevokeOnline, RevokeAll, RevokeNone)
	c.validateLimits(ps)
	c.validateRegistration(ps)

	oneOf(ps, "tokens.access_token_format", c.Tokens.AccessTokenFormat, AccessTokenJWT, AccessTokenOpaque)
	oneOf(ps, "tokens.id_token_signing_alg", c.Tokens.IDTokenSigningAlg, IDTokenSigningAlgs...)
	if r := c.Tokens.RefreshReuseInterval; r < 0 || r > MaxRefreshReuseInterval {
		ps.add("tokens.refresh_reuse_interval", "must be between 0 (off) and %s, got %s", MaxRefreshReuseInterval, r)
	}
	oneOf(ps, "log.level", c.Log.Level, "debug", "info", "warn", "error")
	oneOf(ps, "log.format", c.Log.Format, "text", "json")

	validateScopes(ps, func(i int) string { return fmt.Sprintf("scopes[%d].name", i) }, c.Scopes)
}

func (c *Config) validateLimits(ps *problems) {
	l := c.Limits
	for _, n := range []struct {
		key string
		val int
	}{
		{"limits.authorize_per_minute", l.AuthorizePerMinute},
		{"limits.par_per_minute", l.PARPerMinute},
		{"limits.registration_per_minute", l.RegistrationPerMinute},
		{"limits.failed_credentials_per_ip", l.FailedCredentialsPerIP},
		{"limits.failed_credentials_per_client", l.FailedCredentialsPerClient},
	} {
		if n.val < 0 {
			ps.add(n.key, "must be 0 (off) or more, got %d", n.val)
		}
	}
	if l.TrackedIPs <= 0 {
		ps.add("limits.tracked_ips", "must be greater than 0, got %d", l.TrackedIPs)
	}
	if l.FailureWindow < time.Second || l.FailureWindow > 24*time.Hour {
		ps.add("limits.failure_window", "must be between 1s and 24h, got %s", l.FailureWindow)
	}
	if l.FailureSync <= 0 || l.FailureSync > l.FailureWindow {
		ps.add("limits.failure_sync", "must be greater than 0 and at most limits.failure_window, got %s", l.FailureSync)
	}
}

func validateIssuer(ps *problems, issuer string, derived bool) {
	const key = "issuer"
	// A derived issuer is only wrong because of http.addr, so say how to fix
	// it rather than leaving the operator puzzled by a value they never set.
	hint := ""
	if derived {
		hint = " (derived from http.addr; set issuer or LATCH_ISSUER to the public URL)"
	}
	if issuer == "" {
		ps.add(key, "must be set")
		return
	}
	u, err := url.Parse(issuer)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		ps.add(key, "%q is not an absolute URL%s", issuer, hint)
		return
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopbackHost(u.Hostname()) {
			ps.add(key, "%q must use https unless the host is localhost or a loopback address%s", issuer, hint)
		}
	default:
		ps.add(key, "%q must use https", issuer)
	}
	if u.User != nil {
		ps.add(key, "must not contain user information")
	}
	// OIDC Discovery builds well-known URLs by appending to the issuer and
	// clients compare it byte for byte, so these must be absent.
	if strings.HasSuffix(issuer, "/") {
		ps.add(key, "%q must not end with a slash", issuer)
	}
	if u.RawQuery != "" || u.ForceQuery {
		ps.add(key, "%q must not contain a query", issuer)
	}
	if strings.Contains(issuer, "#") {
		ps.add(key, "%q must not contain a fragment", issuer)
	}
}

// LoopbackIssuer reports whether the issuer's host is localhost or a
// loopback address: only then may the built-in development consent page,
// which approves anyone as anyone, be served.
func LoopbackIssuer(issuer string) bool {
	u, err := url.Parse(issuer)
	return err == nil && u.Host != "" && isLoopbackHost(u.Hostname())
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (c *Config) validateDatabase(ps *problems) {
	const key = "database.dsn"
	// The parse error names only the scheme: the DSN may carry a password.
	d, err := c.database()
	switch {
	case err != nil:
		ps.add(key, "%s", err)
	case d.Driver == dsn.Postgres:
		// A generated key lives in one instance's file; other instances
		// sharing the database could not decrypt what it wrote.
		if c.MasterKey == "" {
			ps.add("master_key", "is required with PostgreSQL (database.dsn): every instance sharing the database must use the same master key, so it cannot be generated into a local file; set master_key or LATCH_MASTER_KEY")
		}
	}
	if c.Database.MaxOpenConns < 0 {
		ps.add("database.max_open_conns", "must be 0 (automatic) or more, got %d", c.Database.MaxOpenConns)
	}
	if c.Database.MaxIdleConns < 0 {
		ps.add("database.max_idle_conns", "must be 0 (automatic) or more, got %d", c.Database.MaxIdleConns)
	}
	if c.Database.ConnMaxLifetime < 0 {
		ps.add("database.conn_max_lifetime", "must be 0 (unlimited) or more, got %s", c.Database.ConnMaxLifetime)
	}
	if ttl := c.Database.ClientCacheTTL; ttl < 0 || ttl > MaxClientCacheTTL {
		ps.add("database.client_cache_ttl", "must be between 0 (off) and %s, got %s", MaxClientCacheTTL, ttl)
	}
}

// validatePprof keeps the profiler off public interfaces: profiles and
// goroutine dumps reveal internals and can be costly to produce.
func (c *Config) validatePprof(ps *problems) {
	if !c.Pprof.Enabled {
		return
	}
	host, _, err := net.SplitHostPort(c.Pprof.Addr)
	if err != nil {
		ps.add("pprof.addr", "%q is not host:port", c.Pprof.Addr)
		return
	}
	if !isLoopbackHost(host) {
		ps.add("pprof.addr", "%q must be a loopback address (127.0.0.1, ::1 or localhost)", c.Pprof.Addr)
	}
}

func validateApprovalURL(ps *problems, raw string) {
	const key = "approval.url"
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		ps.add(key, "%q is not an absolute URL", raw)
		return
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		ps.add(key, "%q must use http or https", raw)
	}
	if strings.Contains(raw, "#") {
		ps.add(key, "%q must not contain a fragment", raw)
	}
}

func validateAddr(ps *problems, addr string) {
	validateHostPort(ps, "http.addr", addr, "127.0.0.1:8080")
}

// validateHostPort reports whether addr is host:port, adding a problem for
// key when it is not.
func validateHostPort(ps *problems, key, addr, example string) bool {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		ps.add(key, "%q is not host:port (for example %s)", addr, example)
		return false
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		ps.add(key, "%q has invalid port %q", addr, port)
		return false
	}
	return true
}

func oneOf(ps *problems, key, val string, allowed ...string) {
	for _, a := range allowed {
		if val == a {
			return
		}
	}
	ps.add(key, "%q is not one of %s", val, strings.Join(allowed, ", "))
}

// validateScopes checks names and duplicates within one list and returns
// the acceptable entries. keyOf names entry i in messages, so problems point
// at the source the operator wrote (a YAML index or LATCH_SCOPES).
func validateScopes(ps *problems, keyOf func(i int) string, scopes []Scope) []Scope {
	seen := make(map[string]bool, len(scopes))
	valid := scopes[:0:0]
	for i, s := range scopes {
		switch {
		case s.Name == "":
			ps.add(keyOf(i), "scope name must not be empty")
		case !isScopeToken(s.Name):
			ps.add(keyOf(i), "scope name %q may only contain printable ASCII other than space, '\"' and '\\' (RFC 6749 section 3.3)", s.Name)
		case seen[s.Name]:
			ps.add(keyOf(i), "duplicate scope %q", s.Name)
		default:
			seen[s.Name] = true
			valid = append(valid, s)
		}
	}
	return valid
}

// isScopeToken reports whether s consists of RFC 6749 scope-token
// characters: %x21 / %x23-5B / %x5D-7E.
func isScopeToken(s string) bool {
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b < 0x21 || b > 0x7e || b == 0x22 || b == 0x5c {
			return false
		}
	}
	return s != ""
}
