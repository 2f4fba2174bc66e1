// Package pgtest gives tests a throwaway PostgreSQL: one cluster per test
// binary (initdb into a temp dir, a free loopback port, fsync off) and a fresh
// database per test, so PostgreSQL runs wherever initdb is installed without
// any setup. Tests use it through Main (from TestMain) and DSN.
//
// Without initdb the PostgreSQL tests skip, except under CI=true, where they
// fail: CI must really run them. LATCH_TEST_POSTGRES_DSN points the tests at
// an existing server instead (each test still gets its own database).
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDSN names an existing server to use instead of starting one.
const EnvDSN = "LATCH_TEST_POSTGRES_DSN"

var (
	mainCalled atomic.Bool
	once       sync.Once
	shared     *cluster
	startErr   error
	dbSeq      atomic.Int64
)

// Main runs the package's tests and then stops the cluster if one was
// started. Call it from TestMain: os.Exit(pgtest.Main(m)).
func Main(m *testing.M) int {
	mainCalled.Store(true)
	code := m.Run()
	if shared != nil {
		shared.stop()
	}
	return code
}

// Available reports whether PostgreSQL tests can run here.
func Available() bool {
	if os.Getenv(EnvDSN) != "" {
		return true
	}
	_, err := findBin("initdb")
	return err == nil
}

// DSN returns the DSN of a new, empty database for this test, starting the
// shared cluster on first use. It skips (or fails under CI=true) when no
// PostgreSQL is available.
func DSN(t testing.TB) string {
	t.Helper()
	if !Available() {
		if os.Getenv("CI") == "true" {
			t.Fatal("pgtest: initdb not found on PATH and CI=true: the PostgreSQL tests must run in CI (install PostgreSQL server binaries)")
		}
		t.Skip("pgtest: initdb not found on PATH; skipping PostgreSQL test")
	}
	if !mainCalled.Load() {
		t.Fatal("pgtest: call os.Exit(pgtest.Main(m)) from TestMain so the cluster is stopped")
	}
	once.Do(func() { shared, startErr = start() })
	if startErr != nil {
		t.Fatalf("pgtest: %v", startErr)
	}
	name := fmt.Sprintf("latch_test_%d_%d", os.Getpid(), dbSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := shared.exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := shared.exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("pgtest: drop database: %v", err)
		}
	})
	return shared.dsn(name)
}

// cluster is a running server; proc is nil for an external one. The rest
// is what it takes to start the same server again on the same port.
type cluster struct {
	base   *url.URL
	dir    string
	proc   *exec.Cmd
	exited chan struct{}

	postgres, data string
	cred           *syscall.Credential
	port           int
}

func (c *cluster) dsn(db string) string {
	u := *c.base
	u.Path = "/" + db
	return u.String()
}

func (c *cluster) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, c.dsn("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

func start() (*cluster, error) {
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		u, err := url.Parse(dsn)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvDSN, err)
		}
		return &cluster{base: u}, nil
	}
	return startLocal()
}

func startLocal() (*cluster, error) {
	initdb, err := findBin("initdb")
	if err != nil {
		return nil, err
	}
	postgres, err := findBin("postgres")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "latch-pg-")
	if err != nil {
		return nil, err
	}
	cred, err := credential(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	data := filepath.Join(dir, "data")
	var out bytes.Buffer
	cmd := exec.Command(initdb, "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync")
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if err := cmd.Run(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w\n%s", err, out.String())
	}
	// A port taken between our probe and postgres' bind just means another try.
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		c := &cluster{dir: dir, postgres: postgres, data: data, cred: cred, port: port}
		if err = c.launch(); err == nil {
			return c, nil
		}
		lastErr = err
	}
	os.RemoveAll(dir)
	return nil, lastErr
}

// launch starts postgres on c's data directory and port and waits until it
// accepts connections.
func (c *cluster) launch() error {
	logs := &logBuffer{}
	cmd := exec.Command(c.postgres, "-D", c.data, "-p", strconv.Itoa(c.port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories="+c.dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=400", "-c", "shared_buffers=64MB")
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Setpgid: true}
	setDeathSignal(cmd.SysProcAttr)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	c.base = &url.URL{Scheme: "postgres", User: url.User("postgres"), Host: "127.0.0.1:" + strconv.Itoa(c.port), RawQuery: "sslmode=disable"}
	c.proc, c.exited = cmd, exited
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.exec(ctx, "SELECT 1")
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("postgres exited: %s", logs.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("postgres did not accept connections within 30s: %v\n%s", err, logs.String())
		}
	}
}

// stop shuts the server down at once (nothing in it is worth keeping) and
// removes its files.
func (c *cluster) stop() {
	if c.proc == nil {
		return
	}
	c.halt(syscall.SIGQUIT)
	os.RemoveAll(c.dir)
}

// halt signals the postmaster and waits for it to exit.
func (c *cluster) halt(sig syscall.Signal) {
	_ = c.proc.Process.Signal(sig)
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		_ = c.proc.Process.Kill()
		<-c.exited
	}
}

// Cluster is a PostgreSQL server of one test's own, which the test may stop
// and start again: the shared cluster cannot be stopped under the other
// tests.
type Cluster struct {
	c  *cluster
	mu sync.Mutex
	up bool
}

// Own starts a cluster for t alone (it skips, or fails under CI=true, as
// DSN does; it also skips with LATCH_TEST_POSTGRES_DSN, a server it cannot
// stop). The cluster is removed when t ends.
func Own(t testing.TB) *Cluster {
	t.Helper()
	if os.Getenv(EnvDSN) != "" {
		t.Skip("pgtest: " + EnvDSN + " names a server this test cannot stop")
	}
	if _, err := findBin("initdb"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("pgtest: initdb not found on PATH and CI=true: the PostgreSQL tests must run in CI")
		}
		t.Skip("pgtest: initdb not found on PATH; skipping PostgreSQL test")
	}
	c, err := startLocal()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	own := &Cluster{c: c, up: true}
	t.Cleanup(func() {
		own.mu.Lock()
		defer own.mu.Unlock()
		if own.up {
			c.stop()
		} else {
			os.RemoveAll(c.dir)
		}
	})
	return own
}

// DSN creates a new, empty database on the cluster and returns its DSN,
// which stays valid across Stop and Start.
func (o *Cluster) DSN(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("latch_own_%d", dbSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := o.c.exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	return o.c.dsn(name)
}

// Stop shuts the server down the way an operator's fast shutdown does:
// open transactions are aborted, connections are cut, and new ones are
// refused until Start.
func (o *Cluster) Stop(t testing.TB) {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.up {
		t.Fatal("pgtest: Stop: the cluster is already stopped")
	}
	o.c.halt(syscall.SIGINT)
	o.up = false
}

// Start starts the stopped server again on the same port and data, and
// returns once it accepts connections.
func (o *Cluster) Start(t testing.TB) {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.up {
		t.Fatal("pgtest: Start: the cluster is running")
	}
	if err := o.c.launch(); err != nil {
		t.Fatalf("pgtest: restart: %v", err)
	}
	o.up = true
}

// credential returns the postgres user's identity when running as root
// (initdb refuses to run as root) after handing dir over to it; nil otherwise.
func credential(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root needs a postgres user for initdb: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

// findBin looks on PATH, then in Debian's versioned directories.
func findBin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	if len(matches) > 0 {
		return matches[len(matches)-1], nil
	}
	return "", errors.New(name + " not found on PATH")
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// logBuffer collects the server's output for error messages; postgres
// writes it while we may read it.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() < 1<<20 {
		l.buf.Write(p)
	}
	return len(p), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
