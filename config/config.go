// Package config loads Latch's settings from built-in defaults, an optional
// YAML file, LATCH_* environment variables and command-line flags, in that
// order of increasing precedence, and validates the result in one pass.
//
// Validation reports every problem at once rather than stopping at the first,
// so an operator fixing a deployment sees the whole list in a single restart.
// Unknown YAML keys and unknown LATCH_* variables are problems too: a typo
// such as LATCH_DATABSE_DSN would otherwise silently leave the default in
// place, which for a security service is worse than refusing to start.
package config

import (
	"net/url"
	"path/filepath"
	"time"

	"github.com/latchhq/latch/storage/dsn"
)

// Config is the complete, typed configuration of a Latch server.
//
// Fields carry koanf tags; the dotted tag path of a leaf (e.g.
// "tokens.code_lifetime") is its YAML location, and the same path upper-cased
// with dots turned into underscores and prefixed with LATCH_ is its
// environment variable, unless an env tag names the variable deployments
// already use. Fields tagged secret are never echoed in errors.
type Config struct {
	// Issuer is the OAuth/OIDC issuer identifier. When empty, Load derives
	// "http://" + HTTP.Addr, which only validates for loopback addresses:
	// a public deployment must say which URL clients see.
	Issuer string `koanf:"issuer"`

	// MasterKey is the base64 encoding of the 32-byte key that protects
	// signing keys and other secrets at rest.
	MasterKey string `koanf:"master_key" secret:"true"`

	// MasterKeyFile is where a generated master key is kept when MasterKey
	// is empty. Empty means ResolvedMasterKeyFile picks a location.
	MasterKeyFile string `koanf:"master_key_file"`

	// Scopes is the complete list of scopes clients may request: the
	// built-in ones followed by those added in the file and LATCH_SCOPES.
	Scopes []Scope `koanf:"scopes"`

	HTTP     HTTPConfig     `koanf:"http"`
	Database DatabaseConfig `koanf:"database"`
	Approval ApprovalConfig `koanf:"approval"`
	Login    LoginConfig    `koanf:"login"`
	Logout   LogoutConfig   `koanf:"logout"`
	API      APIConfig      `koanf:"api"`
	Tokens   TokensConfig   `koanf:"tokens"`
	DPoP     DPoPConfig     `koanf:"dpop"`
	PAR      PARConfig      `koanf:"par"`
	Outbound OutboundConfig `koanf:"outbound"`
	Keys     KeysConfig     `koanf:"keys"`
	Log      LogConfig      `koanf:"log"`
	Janitor  JanitorConfig  `koanf:"janitor"`
	Audit    AuditConfig    `koanf:"audit"`
	Pprof    PprofConfig    `koanf:"pprof"`
	Limits   LimitsConfig   `koanf:"limits"`

	// Resources are the resource servers tokens may be issued for (RFC
	// 8707, SPEC §6): the file's resources list and LATCH_RESOURCES.
	Resources []Resource `koanf:"resources"`
	// DefaultResource is the resource of a request that names none; empty
	// keeps the issuer as the audience.
	DefaultResource string `koanf:"default_resource"`
	// Registration is dynamic client registration (RFC 7591): off, open
	// or token (an initial access token from /api/registration_tokens).
	Registration string `koanf:"registration"`
	// ClientMetadataDocuments accepts https client ids whose metadata
	// document Latch fetches (CIMD): on or off.
	ClientMetadataDocuments string `koanf:"client_metadata_documents"`
	// CIMD is the operator's policy for client metadata documents.
	CIMD CIMDConfig `koanf:"cimd"`
	// DynamicClients governs clients registered through /oauth2/register.
	DynamicClients DynamicClientsConfig `koanf:"dynamic_clients"`
}

// LimitsConfig sets the abuse limits of SPEC §7; 0 turns a limit off. The
// client address is the TCP peer (behind a reverse proxy every request
// comes from the proxy, and the per-address limits become global ones).
type LimitsConfig struct {
	// Request rates per client address and minute, kept in each
	// instance's memory: a minute's worth may come at once.
	AuthorizePerMinute    int `koanf:"authorize_per_minute"`
	PARPerMinute          int `koanf:"par_per_minute"`
	RegistrationPerMinute int `koanf:"registration_per_minute"`
	// TrackedIPs bounds the addresses each instance remembers; beyond it
	// the least recently seen are forgotten.
	TrackedIPs int `koanf:"tracked_ips"`
	// Failed credentials (client secrets and assertions, API keys) allowed
	// per address and per client id in one FailureWindow, counted in the
	// database across instances. Once reached, the address or client id is
	// refused (429) until the window ends, even with correct credentials.
	FailedCredentialsPerIP     int           `koanf:"failed_credentials_per_ip"`
	FailedCredentialsPerClient int           `koanf:"failed_credentials_per_client"`
	FailureWindow              time.Duration `koanf:"failure_window"`
	// FailureSync is how often an instance reads the counts the others
	// wrote; it bounds how late a lock-out reaches it.
	FailureSync time.Duration `koanf:"failure_sync"`
}

// AuditConfig configures the audit log.
type AuditConfig struct {
	// Retention is how long audit events are kept; 0 keeps them forever.
	Retention time.Duration `koanf:"retention"`
	// ExportSettle is how old an event must be before GET /api/audit?after=
	// serves it, so that every insert numbered before it has committed or
	// failed; audit inserts are cut off at a third of it.
	ExportSettle time.Duration `koanf:"export_settle"`
}

// DPoPConfig tunes RFC 9449 proof checks.
type DPoPConfig struct {
	// IATWindow is how far a proof's iat may be from the server's clock,
	// either way; it also bounds how long a jti is remembered.
	IATWindow time.Duration `koanf:"iat_window"`
	// NonceRequired makes every proof carry a server-issued nonce, which
	// limits pre-generated proofs to the nonce's lifetime.
	NonceRequired bool `koanf:"nonce_required"`
	// NonceLifetime is how long one nonce is handed out; the previous one
	// is accepted too, so clients never race a rotation.
	NonceLifetime time.Duration `koanf:"nonce_lifetime"`
}

// PARConfig configures pushed authorization requests (RFC 9126).
type PARConfig struct {
	// Required refuses authorization requests not pushed first, for every
	// client (a client can also be marked individually).
	Required bool `koanf:"required"`
	// Lifetime of a request_uri; short, since it only bridges one redirect.
	Lifetime time.Duration `koanf:"lifetime"`
}

// OutboundConfig configures fetches of URLs that clients supply (jwks_uri).
type OutboundConfig struct {
	// AllowLoopback lets those fetches reach loopback addresses and plain
	// http, so tests and local development can serve keys from 127.0.0.1.
	// Never in production: it opens the host's own services to anyone who
	// can register a URL.
	AllowLoopback bool `koanf:"allow_loopback"`
}

// KeysConfig configures signing-key rotation.
type KeysConfig struct {
	// RotationInterval rotates the signing keys on a schedule; 0 is off.
	RotationInterval time.Duration `koanf:"rotation_interval"`
	// PrePublication is how long a new key is in the JWKS before it signs,
	// so relying parties with a cached JWKS have fetched it by then.
	PrePublication time.Duration `koanf:"pre_publication"`
	// RetireAfter keeps an old key published this long after it stops
	// signing; it must outlive every token the key signed.
	RetireAfter time.Duration `koanf:"retire_after"`
	// ReloadInterval is how often an instance re-reads the signing keys, so
	// a key rotated through another instance reaches it within this long.
	ReloadInterval time.Duration `koanf:"reload_interval"`
}

// JanitorConfig configures the deletion of expired rows.
type JanitorConfig struct {
	// Interval between purges inside serve; 0 disables them (then run
	// `latch janitor` from cron).
	Interval time.Duration `koanf:"interval"`
	// BatchSize bounds the rows one DELETE removes, keeping locks short.
	BatchSize int `koanf:"batch_size"`
	// ReplayGrace keeps spent codes and refresh tokens this long past their
	// expiry, so a late replay still revokes the grant family.
	ReplayGrace time.Duration `koanf:"replay_grace"`
}

// HTTPConfig configures the listener. The timeouts exist so that slow or
// idle clients cannot hold connections (and goroutines) open indefinitely.
type HTTPConfig struct {
	Addr              string        `koanf:"addr"`
	ReadTimeout       time.Duration `koanf:"read_timeout"`
	ReadHeaderTimeout time.Duration `koanf:"read_header_timeout"`
	WriteTimeout      time.Duration `koanf:"write_timeout"`
	IdleTimeout       time.Duration `koanf:"idle_timeout"`
	// MaxBodyBytes caps request bodies; OAuth requests are small, so a
	// low cap is cheap protection against memory exhaustion.
	MaxBodyBytes int64 `koanf:"max_body_bytes"`
	// AdminAddr, when set, moves /metrics and /api to a second listener,
	// so operators can keep them off the public network. Its variable is
	// LATCH_ADMIN_ADDR, the name deployments use.
	AdminAddr string `koanf:"admin_addr" env:"LATCH_ADMIN_ADDR"`
	// ShutdownTimeout bounds how long a stopping server waits for requests
	// in flight before it closes their connections.
	ShutdownTimeout time.Duration `koanf:"shutdown_timeout"`
}

// DatabaseConfig selects the store and tunes its connection pool.
type DatabaseConfig struct {
	// DSN is sqlite://PATH or postgres://... (postgresql:// also accepted).
	DSN string `koanf:"dsn"`
	// MaxOpenConns and MaxIdleConns of 0 let the storage layer choose,
	// because the right value differs between SQLite and PostgreSQL.
	MaxOpenConns int `koanf:"max_open_conns"`
	MaxIdleConns int `koanf:"max_idle_conns"`
	// ConnMaxLifetime of 0 keeps connections for as long as they work.
	ConnMaxLifetime time.Duration `koanf:"conn_max_lifetime"`
	// ClientCacheTTL is how long a client record is reused from memory.
	// Writes through this instance invalidate at once; writes through
	// another instance sharing the database are seen within this time.
	// 0 turns the cache off.
	ClientCacheTTL time.Duration `koanf:"client_cache_ttl"`
}

// PprofConfig exposes Go's profiler on a separate, loopback-only listener,
// for finding where time goes under load. Off by default.
type PprofConfig struct {
	Enabled bool   `koanf:"enabled"`
	Addr    string `koanf:"addr"`
}

// ApprovalConfig configures where users are sent to approve a client.
type ApprovalConfig struct {
	// URL of the external approval (consent) UI; empty uses the built-in
	// page, which is meant for development only.
	URL string `koanf:"url"`
	// SessionLifetime bounds how long a pending approval may wait for the
	// user; it is capped because a pending approval holds an authorization
	// request open.
	SessionLifetime time.Duration `koanf:"session_lifetime"`
}

// LoginConfig configures end-user login sessions.
type LoginConfig struct {
	SessionLifetime time.Duration `koanf:"session_lifetime"`
}

// LogoutConfig configures what ending a login session does (SPEC §3.8).
type LogoutConfig struct {
	// RevokeTokens says which grants issued under an ended login session
	// are revoked (their access and refresh tokens): "online" (those
	// without offline_access, which OpenID Connect ties to the login
	// session), "all", or "none".
	RevokeTokens string `koanf:"revoke_tokens"`
	// BackchannelMaxAttempts bounds the deliveries of one back-channel
	// logout token; after the last failure it is dropped and audited.
	BackchannelMaxAttempts int `koanf:"backchannel_max_attempts"`
	// BackchannelRetryDelay is the wait after the first failed delivery;
	// it doubles after every further failure, up to an hour.
	BackchannelRetryDelay time.Duration `koanf:"backchannel_retry_delay"`
	// BackchannelPollInterval is how often each instance looks for due
	// deliveries (a logout through this instance is sent at once).
	BackchannelPollInterval time.Duration `koanf:"backchannel_poll_interval"`
}

// Values of logout.revoke_tokens.
const (
	RevokeOnline = "online"
	RevokeAll    = "all"
	RevokeNone   = "none"
)

// APIConfig configures the administrative API.
type APIConfig struct {
	// Key is an admin API key accepted in X-API-Key. Empty adds none; a
	// first start with no key at all generates one and prints it once.
	Key string `koanf:"key" secret:"true"`
}

// TokensConfig sets token lifetimes and the access token format.
type TokensConfig struct {
	AccessTokenLifetime  time.Duration `koanf:"access_token_lifetime"`
	RefreshTokenLifetime time.Duration `koanf:"refresh_token_lifetime"`
	IDTokenLifetime      time.Duration `koanf:"id_token_lifetime"`
	// CodeLifetime is capped at 10 minutes as RFC 6749 §4.1.2 recommends.
	CodeLifetime time.Duration `koanf:"code_lifetime"`
	// AccessTokenFormat is "jwt" (self-contained, verifiable offline) or
	// "opaque" (revocable immediately, needs introspection).
	AccessTokenFormat string `koanf:"access_token_format"`
	// IDTokenSigningAlg signs ID tokens for clients that register no
	// id_token_signed_response_alg: RS256, OpenID Connect Registration's
	// default, or ES256. Access tokens stay ES256.
	IDTokenSigningAlg string `koanf:"id_token_signing_alg" env:"LATCH_ID_TOKEN_SIGNING_ALG"`
	// RefreshReuseInterval is how long after a rotation the spent refresh
	// token may be presented again, by the same client while its successor
	// is unused, for the same token response (a retry after a lost
	// response, or two tabs racing). 0 revokes on any reuse.
	RefreshReuseInterval time.Duration `koanf:"refresh_reuse_interval" env:"LATCH_REFRESH_REUSE_INTERVAL"`
}

// LogConfig configures the process logger.
type LogConfig struct {
	Level  string `koanf:"level"`
	Format string `koanf:"format"`
}

// Scope is a scope clients may request, with the text shown to the user
// on the approval page.
type Scope struct {
	Name        string `koanf:"name"`
	Description string `koanf:"description"`
}

// Access token formats.
const (
	AccessTokenJWT    = "jwt"
	AccessTokenOpaque = "opaque"
)

// Limits enforced by Validate.
const (
	MaxCodeLifetime            = 10 * time.Minute
	MaxApprovalSessionLifetime = time.Hour
	MaxDPoPIATWindow           = 10 * time.Minute
	MaxPARLifetime             = 10 * time.Minute
	MaxClientCacheTTL          = time.Minute
	MaxRefreshReuseInterval    = 5 * time.Minute
)

const (
	defaultAddr    = "127.0.0.1:8080"
	defaultDSN     = "sqlite://latch.db"
	masterKeyName  = "latch.key"
	defaultMaxBody = 1 << 20
)

// BuiltinScopes returns the scopes every Latch server offers. A fresh slice
// is returned so callers cannot alter the defaults of later loads.
func BuiltinScopes() []Scope {
	return []Scope{
		{Name: "openid", Description: "Sign you in"},
		{Name: "profile", Description: "Read your name and profile"},
		{Name: "email", Description: "Read your email address"},
		{Name: "offline_access", Description: "Stay signed in (refresh tokens)"},
	}
}

// defaults returns the built-in settings without a derived issuer, so Load
// can tell whether any source set one.
func defaults() *Config {
	return &Config{
		Scopes: BuiltinScopes(),
		HTTP: HTTPConfig{
			Addr:              defaultAddr,
			ReadTimeout:       10 * time.Second,
			ReadHeaderTimeout: 5 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       120 * time.Second,
			MaxBodyBytes:      defaultMaxBody,
			ShutdownTimeout:   15 * time.Second,
		},
		Database: DatabaseConfig{DSN: defaultDSN, ClientCacheTTL: 2 * time.Second},
		Pprof:    PprofConfig{Addr: "127.0.0.1:6060"},
		Approval: ApprovalConfig{SessionLifetime: 10 * time.Minute},
		Login:    LoginConfig{SessionLifetime: 24 * time.Hour},
		Logout: LogoutConfig{RevokeTokens: RevokeOnline, BackchannelMaxAttempts: 10,
			BackchannelRetryDelay: 30 * time.Second, BackchannelPollInterval: 5 * time.Second},
		Tokens: TokensConfig{
			AccessTokenLifetime:  time.Hour,
			RefreshTokenLifetime: 720 * time.Hour,
			IDTokenLifetime:      time.Hour,
			CodeLifetime:         60 * time.Second,
			AccessTokenFormat:    AccessTokenJWT,
			IDTokenSigningAlg:    "RS256",
		},
		Log:     LogConfig{Level: "info", Format: "text"},
		Audit:   AuditConfig{Retention: 90 * 24 * time.Hour, ExportSettle: 30 * time.Second},
		DPoP:    DPoPConfig{IATWindow: time.Minute, NonceLifetime: 5 * time.Minute},
		PAR:     PARConfig{Lifetime: time.Minute},
		Keys:    KeysConfig{PrePublication: time.Hour, RetireAfter: 24 * time.Hour, ReloadInterval: 30 * time.Second},
		Janitor: JanitorConfig{Interval: 5 * time.Minute, BatchSize: 1000, ReplayGrace: 24 * time.Hour},
		Limits: LimitsConfig{
			AuthorizePerMinute: 60000, PARPerMinute: 60000, RegistrationPerMinute: 60, TrackedIPs: 100000,
			FailedCredentialsPerIP: 300, FailedCredentialsPerClient: 1000,
			FailureWindow: 5 * time.Minute, FailureSync: time.Second,
		},
		Registration: RegistrationOff, ClientMetadataDocuments: "on",
		CIMD:           CIMDConfig{MinCache: 5 * time.Minute, MaxCache: 24 * time.Hour, NegativeCache: time.Minute},
		DynamicClients: DynamicClientsConfig{IdleLifetime: 24 * time.Hour},
	}
}

// Default returns the configuration Load produces when no file, environment
// or flags are given. It is valid as returned.
func Default() *Config {
	c := defaults()
	c.Issuer = defaultIssuer(c.HTTP.Addr)
	return c
}

func defaultIssuer(addr string) string { return "http://" + addr }

// database parses the DSN with the parser storage.Open uses, so what
// validation accepts the store opens.
func (c *Config) database() (dsn.DSN, error) { return dsn.Parse(c.Database.DSN) }

// IsPostgres reports whether the DSN selects PostgreSQL.
func (c *Config) IsPostgres() bool {
	d, err := c.database()
	return err == nil && d.Driver == dsn.Postgres
}

// SQLitePath returns the file path of a sqlite:// DSN, or "" for any other
// database.
func (c *Config) SQLitePath() string {
	d, _ := c.database()
	return d.Path
}

// PostgresDSN returns the connection URL when the DSN selects PostgreSQL,
// or "" otherwise; the driver accepts both the postgres:// and
// postgresql:// forms.
func (c *Config) PostgresDSN() string {
	d, _ := c.database()
	return d.URL
}

// ResolvedMasterKeyFile returns where a generated master key is stored:
// MasterKeyFile when set, otherwise latch.key beside the SQLite database so
// the key travels with the data it protects. It returns "" on PostgreSQL
// without an explicit file, because there the master key must be configured
// (every instance has to share it).
func (c *Config) ResolvedMasterKeyFile() string {
	if c.MasterKeyFile != "" {
		return c.MasterKeyFile
	}
	p := c.SQLitePath()
	if p == "" {
		return ""
	}
	return filepath.Join(filepath.Dir(p), masterKeyName)
}

// IssuerURL returns the parsed issuer. It returns nil only when the issuer
// does not parse, which Validate rejects, so after a successful Load it is
// never nil.
func (c *Config) IssuerURL() *url.URL {
	u, err := url.Parse(c.Issuer)
	if err != nil {
		return nil
	}
	return u
}

// IDTokenSigningAlgs are the algorithms Latch holds signing keys for, so
// the ones an ID token can be signed with. provider.IDTokenSigningAlgs is
// this list: it lives here because config validates against it and must
// not import provider (which brings fosite and HTTP with it).
var IDTokenSigningAlgs = []string{"ES256", "RS256"}
