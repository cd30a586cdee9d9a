// Package turntest runs a private coturn TURN server on loopback for
// integration tests.
//
// Start writes a configuration into a fresh temporary directory, picks a
// free port for STUN/TURN over UDP and TCP, starts Debian's turnserver
// (package "coturn") in the foreground with that file only — never the
// system's /etc/turnserver.conf — and waits until it answers a STUN
// Binding request. Stop terminates it and removes the directory.
//
// The server authenticates with the TURN REST scheme
// (draft-uberti-behave-turn-rest): a static secret shared with whatever
// hands out credentials — Prosody's mod_turn_external in the tests, or
// Credentials here. With Options.Users it uses long-term credentials
// instead. TLS and DTLS listeners, the CLI and RFC 5780 are off; loopback
// peers are allowed, which a production coturn must not do.
//
// A test package normally shares one server through Lazy:
//
//	var coturn turntest.Lazy
//
//	func TestRelay(t *testing.T) {
//		srv := coturn.Get(t) // skips when coturn is not installed
//		user, pass := srv.Credentials("alice", time.Hour)
//		...
//	}
//
// and stops it from TestMain with testserver.Main(m, &coturn). When turnserver is
// missing, Get skips the test, unless JINGLEKIT_REQUIRE_PROSODY=1 (the
// variable CI sets for the integration servers) makes it fail.
package turntest

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // the TURN REST scheme is defined with HMAC-SHA1
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun"

	"github.com/jinglekit/jinglekit/internal/testproc"
	"github.com/jinglekit/jinglekit/internal/testserver"
)

// Environment variables read by the harness.
const (
	// EnvRequire, when "1", makes Lazy.Get fail instead of skip when
	// coturn is not installed. It is the variable of internal/prosodytest.
	EnvRequire = "JINGLEKIT_REQUIRE_PROSODY"
	// EnvKeep, when "1", keeps the server directory after Stop.
	EnvKeep = "JINGLEKIT_KEEP_TURN"
)

// ErrNotInstalled is returned (wrapped) by Start when turnserver is missing.
var ErrNotInstalled = errors.New("coturn not installed: apt-get install coturn")

const (
	defaultStartTimeout = 15 * time.Second
	stopGrace           = 5 * time.Second
	startAttempts       = 5
	relayPorts          = 1000
)

// Options configures a Server. The zero value is a working configuration.
type Options struct {
	// Binary is the turnserver program, a path or a name looked up in
	// PATH. Default "turnserver".
	Binary string
	// Secret is the TURN REST static-auth-secret; empty means a random one.
	// It is ignored when Users is set.
	Secret string
	// Users switches to the long-term credential mechanism with these
	// accounts (name → password).
	Users map[string]string
	// Realm is the TURN realm. Default "localhost".
	Realm string
	// Verbose makes coturn log every request.
	Verbose bool
	// StartTimeout bounds Start on top of its context. Default 15s.
	StartTimeout time.Duration
	// Keep keeps the directory after Stop, like EnvKeep.
	Keep bool
	// Logger receives the harness's own messages. Default slog.Default().
	Logger *slog.Logger
}

// Server is a running coturn. Its exported fields do not change.
type Server struct {
	Host       string // "127.0.0.1"
	Port       int    // STUN/TURN port, UDP and TCP
	Addr       string // "127.0.0.1:PORT"
	Secret     string // static-auth-secret (REST mode), "" with Users
	Realm      string
	Dir        string // holds the config, the log and the pid file
	ConfigFile string
	LogFile    string

	opts Options
	log  *slog.Logger

	// group holds turnserver: Stop ends it, and the next Start of a
	// killed test binary cleans up after it.
	group *testproc.Group

	mu     sync.Mutex
	proc   *testproc.Process
	closed bool
}

// Start writes the configuration, starts turnserver and waits until it
// answers STUN. The context bounds only the start-up.
func Start(ctx context.Context, opts Options) (*Server, error) {
	binary := opts.Binary
	if binary == "" {
		binary = "turnserver"
	}
	path, err := exec.LookPath(binary)
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", ErrNotInstalled, err)
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = defaultStartTimeout
	}
	if opts.Realm == "" {
		opts.Realm = "localhost"
	}
	if opts.Secret == "" && len(opts.Users) == 0 {
		var b [16]byte
		_, _ = rand.Read(b[:])
		opts.Secret = hex.EncodeToString(b[:])
	}
	for u, p := range opts.Users {
		if u == "" || strings.ContainsAny(u+p, ":\n\r\"") {
			return nil, fmt.Errorf("turntest: bad user %q", u)
		}
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	group, err := testproc.NewGroup("turntest", testproc.GroupOptions{Grace: stopGrace, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("turntest: %w", err)
	}
	dir, err := os.MkdirTemp("", "jinglekit-turn-")
	if err != nil {
		_ = group.Close()
		return nil, fmt.Errorf("turntest: %w", err)
	}
	s := &Server{
		Host: "127.0.0.1", Realm: opts.Realm, Dir: dir,
		ConfigFile: filepath.Join(dir, "turnserver.conf"),
		LogFile:    filepath.Join(dir, "turn.log"),
		opts:       opts, log: log, group: group,
	}
	fail := func(err error) (*Server, error) {
		_ = group.Close()
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if len(opts.Users) == 0 {
		s.Secret = opts.Secret
	}
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return fail(fmt.Errorf("turntest: %w", err))
		}
		s.Port, s.Addr = port, net.JoinHostPort(s.Host, strconv.Itoa(port))
		if err := os.WriteFile(s.ConfigFile, []byte(s.config()), 0o600); err != nil {
			return fail(fmt.Errorf("turntest: %w", err))
		}
		err = s.launch(ctx, path)
		if err == nil {
			return s, nil
		}
		if attempt+1 >= startAttempts || ctx.Err() != nil {
			return fail(err)
		}
		log.Warn("turntest: start failed, retrying with another port", "error", err)
	}
}

// config renders turnserver.conf.
func (s *Server) config() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	n, _ := rand.Int(rand.Reader, big.NewInt(65535-49152-relayPorts))
	minPort := 49152 + int(n.Int64())
	w("# Generated by jinglekit internal/turntest. Loopback only, tests only.")
	w("listening-ip=%s", s.Host)
	w("relay-ip=%s", s.Host)
	w("listening-port=%d", s.Port)
	w("min-port=%d", minPort)
	w("max-port=%d", minPort+relayPorts-1)
	w("realm=%s", s.Realm)
	if len(s.opts.Users) > 0 {
		w("lt-cred-mech")
		for u, p := range s.opts.Users {
			w("user=%s:%s", u, p)
		}
	} else {
		w("use-auth-secret")
		w("static-auth-secret=%s", s.Secret)
	}
	w("fingerprint")
	w("no-tls")
	w("no-dtls")
	w("no-cli")
	w("no-rfc5780")
	w("no-multicast-peers")
	// Both peers of a test relay to 127.0.0.1: coturn refuses loopback
	// peers unless told otherwise.
	w("allow-loopback-peers")
	w("no-software-attribute")
	w("userdb=%s", filepath.Join(s.Dir, "turndb"))
	w("pidfile=%s", filepath.Join(s.Dir, "turnserver.pid"))
	w("log-file=%s", s.LogFile)
	w("simple-log")
	w("no-stdout-log")
	if s.opts.Verbose {
		w("verbose")
	}
	return b.String()
}

// launch starts turnserver with the written config and waits for it.
func (s *Server) launch(ctx context.Context, path string) error {
	out, err := os.OpenFile(filepath.Join(s.Dir, "turnserver.stdout"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("turntest: %w", err)
	}
	// -c: our file only; without it coturn reads /etc/turnserver.conf.
	// In the foreground (no -o): the process we wait for is the server.
	cmd := s.group.Command(path, "-c", s.ConfigFile)
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = out, out
	proc, err := testproc.Start(cmd)
	_ = out.Close()
	if err != nil {
		return fmt.Errorf("turntest: start %s: %w", path, err)
	}
	s.mu.Lock()
	s.proc = proc
	s.mu.Unlock()
	if err := s.waitReady(ctx, proc.Done()); err != nil {
		_ = s.stopProcess()
		return fmt.Errorf("%w\n%s", err, s.LogTail(30))
	}
	return nil
}

// waitReady sends STUN Binding requests over UDP until one is answered
// and checks that the TCP listener accepts.
func (s *Server) waitReady(ctx context.Context, done <-chan struct{}) error {
	for {
		select {
		case <-done:
			return errors.New("turntest: turnserver exited during start-up")
		case <-ctx.Done():
			return fmt.Errorf("turntest: turnserver not ready: %w", ctx.Err())
		default:
		}
		if err := stunPing(s.Addr); err == nil {
			c, err := net.DialTimeout("tcp", s.Addr, time.Second)
			if err == nil {
				_ = c.Close()
				return nil
			}
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-done:
		case <-ctx.Done():
		}
	}
}

// stunPing sends one Binding request and waits briefly for the answer.
func stunPing(addr string) error {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
	if _, err := c.Write(req.Raw); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	var m stun.Message
	m.Raw = buf[:n]
	if err := m.Decode(); err != nil {
		return err
	}
	if m.Type != stun.BindingSuccess {
		return fmt.Errorf("turntest: STUN answer %s", m.Type)
	}
	return nil
}

// Credentials returns TURN REST credentials for user valid for ttl, as
// Prosody's mod_turn_external computes them: username "expiry:user",
// password base64(HMAC-SHA1(secret, username)).
func (s *Server) Credentials(user string, ttl time.Duration) (username, password string) {
	username = strconv.FormatInt(time.Now().Add(ttl).Unix(), 10)
	if user != "" {
		username += ":" + user
	}
	return username, s.Password(username)
}

// Password returns the TURN REST password of a username:
// base64(HMAC-SHA1(secret, username)).
func (s *Server) Password(username string) string {
	mac := hmac.New(sha1.New, []byte(s.Secret))
	mac.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// URL returns the TURN URI of the server for transport "udp" or "tcp".
func (s *Server) URL(transport string) string {
	return fmt.Sprintf("turn:%s?transport=%s", s.Addr, transport)
}

// LogTail returns the last n lines of coturn's log.
func (s *Server) LogTail(n int) string {
	b, err := os.ReadFile(s.LogFile)
	if err != nil {
		b, _ = os.ReadFile(filepath.Join(s.Dir, "turnserver.stdout"))
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Running reports whether the process is alive.
func (s *Server) Running() bool {
	s.mu.Lock()
	proc := s.proc
	s.mu.Unlock()
	if proc == nil {
		return false
	}
	exited, _ := proc.Exited()
	return !exited
}

// Stop terminates turnserver (SIGTERM, then SIGKILL), waits for it and
// removes the directory unless asked to keep it. It reports an error when
// coturn had exited by itself. Stop is idempotent.
func (s *Server) Stop() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	err := s.stopProcess()
	if gerr := s.group.Close(); gerr != nil {
		err = errors.Join(err, fmt.Errorf("turntest: %w", gerr))
	}
	if s.opts.Keep || os.Getenv(EnvKeep) == "1" {
		s.log.Info("turntest: keeping coturn directory", "dir", s.Dir)
		return err
	}
	if rmErr := os.RemoveAll(s.Dir); rmErr != nil {
		err = errors.Join(err, fmt.Errorf("turntest: %w", rmErr))
	}
	return err
}

func (s *Server) stopProcess() error {
	s.mu.Lock()
	proc := s.proc
	s.proc = nil
	s.mu.Unlock()
	if proc == nil {
		return nil
	}
	if exited, err := proc.Exited(); exited {
		return fmt.Errorf("turntest: turnserver had exited by itself: %v", err)
	}
	if _, err := proc.Stop(stopGrace); err != nil {
		return fmt.Errorf("turntest: stop: %w", err)
	}
	return nil
}

// freePort returns a port that was free a moment ago for both UDP and TCP
// on 127.0.0.1. Start retries when coturn cannot bind it after all.
func freePort() (int, error) {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		_ = l.Close()
		if err != nil {
			continue
		}
		_ = u.Close()
		return port, nil
	}
	return 0, errors.New("no port free for both UDP and TCP")
}

// program is what Lazy.Get needs to skip or fail a test without coturn.
var program = testserver.Program{NotInstalled: ErrNotInstalled, Env: EnvRequire}

// errLazyStopped is the start error of a Lazy after Stop.
var errLazyStopped = errors.New("turntest: shared server already stopped")

// Lazy starts one Server on first use and shares it. The zero value is
// ready to use; set Options before the first Get.
type Lazy struct {
	Options Options

	shared testserver.Lazy[*Server]
}

// Get returns the shared server, starting it on the first call. When
// coturn is not installed it skips t, or fails it if EnvRequire is "1".
func (l *Lazy) Get(t testing.TB) *Server {
	t.Helper()
	// Not t.Context(): the server outlives this test.
	return l.shared.For(t, program, func() (*Server, error) { return Start(context.Background(), l.Options) })
}

// Shutdown stops the server if Get started one; later Gets fail. TestMain
// calls it through testserver.Main.
func (l *Lazy) Shutdown() error {
	return l.shared.Shutdown((*Server).Stop, errLazyStopped)
}

// ProsodyConfig returns what a test Prosody needs to announce s through
// XEP-0215 (mod_turn_external, which loads mod_external_services), over
// UDP and TCP, with credentials valid for ttl seconds: the module to
// enable and the lines of its VirtualHost section (prosodytest's Modules
// and HostConfig).
func (s *Server) ProsodyConfig(ttl int) (module, hostConfig string) {
	return "turn_external", fmt.Sprintf(`    turn_external_secret = %q
    turn_external_host = %q
    turn_external_port = %d
    turn_external_tcp = true
    turn_external_ttl = %d`, s.Secret, s.Host, s.Port, ttl)
}
