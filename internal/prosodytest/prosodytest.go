// Package prosodytest runs a private Prosody XMPP server on loopback for
// integration tests.
//
// Start writes a configuration, a private CA and a server certificate into a
// fresh temporary directory, picks free ports for c2s and for a mod_proxy65
// SOCKS5 bytestreams component, starts Debian's prosody in the foreground and
// waits until it answers an XMPP stream header. Stop terminates it and removes
// the directory.
//
// A test package normally shares one server through Lazy, stopped by
// testserver.Main (or MainNoLeaks) in TestMain:
//
//	var prosody prosodytest.Lazy
//
//	func TestMain(m *testing.M) { os.Exit(testserver.Main(m, &prosody)) }
//
//	func TestLogin(t *testing.T) {
//		srv := prosody.Get(t) // skips when prosody is not installed
//		jid, password := srv.NewUser(t, "alice")
//		...
//	}
//
// The harness needs the prosody and prosodyctl programs (Debian package
// "prosody"). When they are missing, Lazy.Get skips the test, unless the
// environment variable JINGLEKIT_REQUIRE_PROSODY=1 is set, in which case it
// fails it. With JINGLEKIT_KEEP_PROSODY=1 the server directory (config,
// certificates, data and prosody.log) is kept after Stop and its path is
// logged.
package prosodytest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jinglekit/jinglekit/internal/testcert"
	"github.com/jinglekit/jinglekit/internal/testproc"
	"github.com/jinglekit/jinglekit/internal/testserver"
)

// Environment variables read by the harness.
const (
	// EnvKeep, when set to "1", keeps the server directory after Stop.
	EnvKeep = "JINGLEKIT_KEEP_PROSODY"
	// EnvRequire, when set to "1", makes Lazy.Get fail instead of skip when
	// prosody is not installed.
	EnvRequire = "JINGLEKIT_REQUIRE_PROSODY"
)

// Fixed names of the test deployment.
const (
	// Domain is the only VirtualHost of the server.
	Domain = "localhost"
	// ProxyJID is the JID of the mod_proxy65 component.
	ProxyJID = "proxy." + Domain
)

// ErrNotInstalled is returned (wrapped) by Start when the prosody or
// prosodyctl program cannot be found.
var ErrNotInstalled = errors.New("prosody not installed: apt-get install prosody")

// errPortInUse reports that prosody could not bind one of the ports it was
// given; Start then retries with other ports.
var errPortInUse = errors.New("prosody could not bind its port")

const (
	defaultStartTimeout = 20 * time.Second
	stopGrace           = 5 * time.Second
	startAttempts       = 5
)

// Options configures a Server. The zero value is a working configuration.
type Options struct {
	// Binary is the prosody program, a path or a name looked up in PATH.
	// Default "prosody".
	Binary string
	// Prosodyctl is the prosodyctl program. Default: "prosodyctl" next to
	// Binary if it exists there, else "prosodyctl" from PATH.
	Prosodyctl string

	// Users are accounts (localpart → password) registered by Start.
	Users map[string]string
	// MutualRoster gives every pair of Users a mutual ("both") presence
	// subscription, so that they see each other's presence at login.
	MutualRoster bool

	// Modules are extra entries for modules_enabled.
	Modules []string
	// GlobalConfig is Lua appended to the global section of the config.
	GlobalConfig string
	// HostConfig is Lua appended inside the VirtualHost "localhost" section.
	HostConfig string
	// PasswordHash is the hash that mod_auth_internal_hashed stores, and so
	// the only SCRAM family offered: "SHA-1" (default, offers SCRAM-SHA-1)
	// or "SHA-256" (offers SCRAM-SHA-256 only). Prosody 0.12 cannot offer
	// both with internal_hashed.
	PasswordHash string
	// LogLevel is the minimum level written to prosody.log: "debug"
	// (default), "info", "warn" or "error".
	LogLevel string
	// LogStanzas loads mod_stanza_debug, which logs every stanza in full.
	LogStanzas bool

	// StartTimeout bounds Start and Restart on top of their context.
	// Default 20s.
	StartTimeout time.Duration
	// Keep keeps the server directory after Stop, like EnvKeep.
	Keep bool
	// Logger receives the harness's own messages. Default slog.Default().
	Logger *slog.Logger

	// pickPorts replaces freePorts in tests of the retry logic.
	pickPorts func(n int) ([]int, error)
}

// Server is a running (or stopped) Prosody instance. Its exported fields
// are set by Start and never change afterwards, Restart included.
type Server struct {
	Domain    string // XMPP domain of the VirtualHost, "localhost"
	C2SAddr   string // "127.0.0.1:PORT" of client connections (STARTTLS offered)
	ProxyJID  string // JID of the XEP-0065 proxy component, "proxy.localhost"
	ProxyAddr string // "127.0.0.1:PORT", the streamhost of mod_proxy65
	CAFile    string // PEM of the CA that signed the server certificate
	Dir       string // directory holding config, certs, data and logs

	CertFile   string // PEM of the server certificate (localhost, proxy.localhost, 127.0.0.1)
	KeyFile    string // PEM of the server key
	ConfigFile string // prosody.cfg.lua
	LogFile    string // prosody.log

	opts    Options
	binary  string
	ctl     string
	caPEM   []byte
	log     *slog.Logger
	keep    bool
	userSeq atomic.Uint64
	// group holds prosody and every prosodyctl: Stop ends them all, and
	// the next Start of a killed test binary cleans up after it.
	group *testproc.Group

	mu     sync.Mutex // guards proc and closed
	proc   *process
	closed bool
}

// process is one run of prosody. It ends by itself or through
// Server.stopProcessLocked.
type process struct {
	*testproc.Process
	logOffset int64 // size of prosody.log when this run started
}

// Start creates a directory, writes config and certificates, starts prosody
// and waits until it serves XMPP. The context bounds only the start-up; the
// server runs until Stop. It returns an error wrapping ErrNotInstalled when
// prosody or prosodyctl is missing.
func Start(ctx context.Context, opts Options) (*Server, error) {
	binary, ctl, err := findPrograms(opts)
	if err != nil {
		return nil, err
	}
	if err := checkOptions(opts); err != nil {
		return nil, err
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = defaultStartTimeout
	}
	if opts.pickPorts == nil {
		opts.pickPorts = freePorts
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()

	// Prosody runs in the foreground as our child (PR_SET_PDEATHSIG); the
	// group also finds anything it might spawn, and cleans up after a
	// killed test binary.
	group, err := testproc.NewGroup("prosodytest", testproc.GroupOptions{Grace: stopGrace, Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("prosodytest: %w", err)
	}
	dir, err := os.MkdirTemp("", "prosodytest-")
	if err != nil {
		_ = group.Close()
		return nil, fmt.Errorf("prosodytest: create directory: %w", err)
	}
	s := &Server{
		Domain:     Domain,
		ProxyJID:   ProxyJID,
		Dir:        dir,
		ConfigFile: filepath.Join(dir, "prosody.cfg.lua"),
		LogFile:    filepath.Join(dir, "prosody.log"),
		opts:       opts,
		binary:     binary,
		ctl:        ctl,
		log:        logger,
		keep:       opts.Keep || os.Getenv(EnvKeep) == "1",
		group:      group,
	}
	if err := s.start(ctx); err != nil {
		if cerr := group.Close(); cerr != nil {
			s.log.Warn("prosodytest: after failed start", "error", cerr)
		}
		if s.keep {
			s.log.Info("prosodytest: start failed, keeping directory", "dir", dir, "error", err)
		} else {
			_ = os.RemoveAll(dir)
		}
		return nil, err
	}
	s.log.Debug("prosodytest: prosody ready", "dir", dir, "c2s", s.C2SAddr, "proxy65", s.ProxyAddr)
	return s, nil
}

func (s *Server) start(ctx context.Context) error {
	if err := os.Mkdir(filepath.Join(s.Dir, "data"), 0o700); err != nil {
		return fmt.Errorf("prosodytest: create data directory: %w", err)
	}
	files, err := testcert.Write(filepath.Join(s.Dir, "certs"), s.Domain, []string{s.ProxyJID})
	if err != nil {
		return fmt.Errorf("prosodytest: certificates: %w", err)
	}
	s.CAFile, s.CertFile, s.KeyFile, s.caPEM = files.CAFile, files.CertFile, files.KeyFile, files.CAPEM

	for attempt := 1; ; attempt++ {
		ports, err := s.opts.pickPorts(2)
		if err != nil {
			return fmt.Errorf("prosodytest: pick ports: %w", err)
		}
		s.C2SAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
		s.ProxyAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))
		if err := os.WriteFile(s.ConfigFile, []byte(s.config(ports[0], ports[1])), 0o600); err != nil {
			return fmt.Errorf("prosodytest: write config: %w", err)
		}
		s.mu.Lock()
		err = s.launchLocked(ctx)
		s.mu.Unlock()
		if err == nil {
			break
		}
		if !errors.Is(err, errPortInUse) {
			return err
		}
		if attempt == startAttempts {
			return fmt.Errorf("prosodytest: giving up after %d attempts: %w", attempt, err)
		}
		s.log.Debug("prosodytest: port taken, retrying with other ports", "attempt", attempt, "error", err)
	}

	if err := s.setupUsers(ctx); err != nil {
		s.mu.Lock()
		_ = s.stopProcessLocked()
		s.mu.Unlock()
		return err
	}
	return nil
}

// setupUsers registers Options.Users and their mutual subscriptions.
func (s *Server) setupUsers(ctx context.Context) error {
	for user, password := range s.opts.Users {
		if err := s.AddUser(ctx, user, password); err != nil {
			return err
		}
	}
	if s.opts.MutualRoster {
		users := make([]string, 0, len(s.opts.Users))
		for u := range s.opts.Users {
			users = append(users, u)
		}
		for i := range users {
			for j := i + 1; j < len(users); j++ {
				if err := s.MutualSubscribe(ctx, users[i], users[j]); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// launchLocked starts prosody with the current config and waits until it is
// ready. On failure no process is left running. s.mu must be held.
func (s *Server) launchLocked(ctx context.Context) error {
	var offset int64
	if fi, err := os.Stat(s.LogFile); err == nil {
		offset = fi.Size()
	}
	out, err := os.OpenFile(filepath.Join(s.Dir, "prosody.stdout"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("prosodytest: open stdout file: %w", err)
	}
	// -F: stay in the foreground, so that the process we wait for is the
	// server itself. Always pass our own --config: without it prosody uses
	// /etc/prosody/prosody.cfg.lua.
	cmd := s.group.Command(s.binary, "-F", "--config", s.ConfigFile)
	cmd.Dir = s.Dir
	cmd.Stdout = out
	cmd.Stderr = out
	proc, err := testproc.Start(cmd)
	_ = out.Close() // the child has its own copy
	if err != nil {
		return fmt.Errorf("prosodytest: start %s: %w", s.binary, err)
	}
	p := &process{Process: proc, logOffset: offset}
	s.proc = p

	if err := s.waitReady(ctx, p); err != nil {
		_ = s.stopProcessLocked()
		if errors.Is(err, errPortInUse) {
			return err
		}
		return fmt.Errorf("%w\n%s", err, s.diagnostics())
	}
	return nil
}

// Restart stops prosody and starts it again with the same config, ports
// and data. Client connections are closed by the restart.
func (s *Server) Restart(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.StartTimeout)
	defer cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("prosodytest: restart of a stopped server")
	}
	if err := s.stopProcessLocked(); err != nil {
		s.log.Warn("prosodytest: before restart", "error", err)
	}
	if err := s.launchLocked(ctx); err != nil {
		return fmt.Errorf("prosodytest: restart: %w", err)
	}
	return nil
}

// Stop terminates prosody (SIGTERM, then SIGKILL after a few seconds),
// waits for it and removes the directory unless Options.Keep or EnvKeep is
// set. It reports an error if prosody had exited on its own before. Stop is
// idempotent.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.stopProcessLocked()
	if gerr := s.group.Close(); gerr != nil {
		err = errors.Join(err, fmt.Errorf("prosodytest: %w", gerr))
	}
	if s.keep {
		s.log.Info("prosodytest: keeping prosody directory", "dir", s.Dir, "log", s.LogFile)
		return err
	}
	if rmErr := os.RemoveAll(s.Dir); rmErr != nil {
		err = errors.Join(err, fmt.Errorf("prosodytest: remove directory: %w", rmErr))
	}
	return err
}

// stopProcessLocked ends the current prosody process, if any, and waits for
// it. s.mu must be held.
func (s *Server) stopProcessLocked() error {
	p := s.proc
	if p == nil {
		return nil
	}
	s.proc = nil
	if exited, err := p.Exited(); exited {
		return fmt.Errorf("prosodytest: prosody had exited by itself: %v", err)
	}
	killed, err := p.Stop(stopGrace)
	if killed {
		s.log.Warn("prosodytest: prosody ignored SIGTERM, killed it", "pid", p.Pid())
	}
	if err != nil {
		return fmt.Errorf("prosodytest: stop prosody: %w", err)
	}
	return nil
}

// Pid returns the process id of the running prosody, or 0 when it is not
// running.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	if exited, _ := s.proc.Exited(); exited {
		return 0
	}
	return s.proc.Pid()
}

// TLSConfig returns a new client TLS configuration that trusts only the
// server's CA and expects the name Domain.
func (s *Server) TLSConfig() *tls.Config {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.caPEM)
	return &tls.Config{RootCAs: pool, ServerName: s.Domain, MinVersion: tls.VersionTLS12}
}

// CAPEM returns the PEM of the CA certificate (the content of CAFile).
func (s *Server) CAPEM() []byte { return append([]byte(nil), s.caPEM...) }

// LogTail returns the last n lines of prosody.log.
func (s *Server) LogTail(n int) string {
	return tailFile(s.LogFile, n)
}

// diagnostics describes prosody's output for start-up errors.
func (s *Server) diagnostics() string {
	var b strings.Builder
	fmt.Fprintf(&b, "--- last lines of %s:\n%s", s.LogFile, s.LogTail(40))
	if out := tailFile(filepath.Join(s.Dir, "prosody.stdout"), 20); strings.TrimSpace(out) != "" {
		fmt.Fprintf(&b, "\n--- prosody stdout/stderr:\n%s", out)
	}
	return b.String()
}

func checkOptions(opts Options) error {
	switch opts.PasswordHash {
	case "", "SHA-1", "SHA-256":
	default:
		return fmt.Errorf("prosodytest: PasswordHash %q: want SHA-1 or SHA-256", opts.PasswordHash)
	}
	switch opts.LogLevel {
	case "", "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("prosodytest: LogLevel %q: want debug, info, warn or error", opts.LogLevel)
	}
	for user := range opts.Users {
		if err := testserver.CheckLocalpart("prosodytest", user); err != nil {
			return err
		}
	}
	return nil
}

// findPrograms resolves the prosody and prosodyctl programs.
func findPrograms(opts Options) (binary, ctl string, err error) {
	name := opts.Binary
	if name == "" {
		name = "prosody"
	}
	binary, err = exec.LookPath(name)
	if err != nil {
		return "", "", fmt.Errorf("%w (%v)", ErrNotInstalled, err)
	}
	ctlName := opts.Prosodyctl
	if ctlName == "" {
		ctlName = "prosodyctl"
		if sibling := filepath.Join(filepath.Dir(binary), "prosodyctl"); isExecutable(sibling) {
			ctlName = sibling
		}
	}
	ctl, err = exec.LookPath(ctlName)
	if err != nil {
		return "", "", fmt.Errorf("%w (%v)", ErrNotInstalled, err)
	}
	return binary, ctl, nil
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// freePorts returns n distinct TCP ports that were free on 127.0.0.1 a
// moment ago. Another process may take them before prosody binds them;
// Start retries in that case.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		// Keep it open until all are chosen so that they differ.
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
