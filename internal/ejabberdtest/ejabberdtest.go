// Package ejabberdtest runs private ejabberd nodes on loopback for
// integration tests: one node, or a two-node Erlang cluster serving one
// domain.
//
// Start writes a configuration, a private CA and a server certificate into
// a fresh temporary directory, picks free ports for c2s, a mod_proxy65
// SOCKS5 bytestreams component, a STUN/TURN listener (announced through
// XEP-0215 by mod_stun_disco) and an HTTP API listener (mod_http_api, used
// by the harness for accounts and rosters, loopback only), starts Debian's
// ejabberd in the foreground under a private epmd and waits until it runs.
// StartCluster starts two such nodes and joins the second to the first.
//
// The harness runs the Erlang VM (erl) directly as the current user rather
// than through ejabberdctl: ejabberdctl run as root re-executes itself as
// user ejabberd through su, daemonizes the VM and shares the system epmd,
// none of which a test can clean up after. Here every process (epmd and
// each node) is a child of the test binary started through
// internal/testproc: in its own process group, killed by the kernel when
// the test binary dies (PR_SET_PDEATHSIG), and tagged, so that the next
// start stops whatever of a killed run survived. A test binary killed
// before it could remove its directory leaves it behind; the next start
// removes such stale directories.
//
// A test package normally shares one node through Lazy and Main, like
// internal/prosodytest. When ejabberd (erl, epmd and the ejabberd
// application) is not installed, Lazy.Get skips the test, unless the
// environment variable JINGLEKIT_REQUIRE_EJABBERD=1 is set, in which case
// it fails it. With JINGLEKIT_KEEP_EJABBERD=1 the directories are kept
// after Stop and their paths are logged.
package ejabberdtest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jinglekit/jinglekit/internal/testcert"
	"github.com/jinglekit/jinglekit/internal/testproc"
	"github.com/jinglekit/jinglekit/internal/testserver"
)

// Environment variables read by the harness.
const (
	// EnvKeep, when set to "1", keeps the server directories after Stop.
	EnvKeep = "JINGLEKIT_KEEP_EJABBERD"
	// EnvRequire, when set to "1", makes Lazy.Get fail instead of skip when
	// ejabberd is not installed.
	EnvRequire = "JINGLEKIT_REQUIRE_EJABBERD"
)

// Fixed names of the test deployment.
const (
	// Domain is the only host of the server.
	Domain = "localhost"
	// ProxyJID is the JID of the mod_proxy65 service.
	ProxyJID = "proxy." + Domain
)

// ErrNotInstalled is returned (wrapped) by Start when erl, epmd or the
// ejabberd application cannot be found.
var ErrNotInstalled = errors.New("ejabberd not installed: apt-get install ejabberd")

const (
	defaultStartTimeout = 60 * time.Second
	stopGrace           = 10 * time.Second
	startAttempts       = 3
	// dirPrefix names the temporary directories, so that stale ones can be
	// found by the next run.
	dirPrefix = "ejabberdtest-"
	// erlLibs is where Debian installs ejabberd's Erlang applications
	// (ERL_LIBS of Debian's ejabberdctl).
	erlLibs = "/usr/lib/x86_64-linux-gnu"
)

// Options configures a Server. The zero value is a working configuration.
type Options struct {
	// Erl is the Erlang runtime program. Default "erl" from PATH.
	Erl string
	// Epmd is the Erlang port mapper program. Default "epmd" from PATH.
	Epmd string
	// ErlLibs is ERL_LIBS, where the ejabberd application is installed.
	// Default /usr/lib/x86_64-linux-gnu (Debian).
	ErlLibs string

	// Users are accounts (localpart → password) registered by Start.
	Users map[string]string
	// MutualRoster gives every pair of Users a mutual ("both") presence
	// subscription, so that they see each other's presence at login.
	MutualRoster bool

	// Modules is YAML appended to the modules section: each module
	// indented by two spaces, e.g. "  mod_vcard: {}".
	Modules string
	// LogLevel is ejabberd's loglevel: "info" (default), "debug",
	// "warning" or "error".
	LogLevel string

	// StartTimeout bounds Start on top of its context. Default 60s.
	StartTimeout time.Duration
	// Keep keeps the directories after Stop, like EnvKeep.
	Keep bool
	// Logger receives the harness's own messages. Default slog.Default().
	Logger *slog.Logger
}

// Server is one running (or stopped) ejabberd node. Its exported fields
// are set by Start and never change afterwards.
type Server struct {
	Domain     string // XMPP domain, "localhost"
	Node       string // Erlang node name, "ejtNNN@localhost"
	C2SAddr    string // "127.0.0.1:PORT" of client connections (STARTTLS offered)
	ProxyJID   string // JID of the XEP-0065 proxy, "proxy.localhost"
	ProxyAddr  string // "127.0.0.1:PORT", the streamhost of mod_proxy65
	STUNAddr   string // "127.0.0.1:PORT" (UDP) of STUN and TURN (ejabberd_stun)
	TURNSecret string // shared secret of the TURN REST credentials (mod_stun_disco)
	APIAddr    string // "127.0.0.1:PORT" of mod_http_api
	CAFile     string // PEM of the CA that signed the server certificate (shared by a cluster's nodes)
	Dir        string // the node's directory: config, certificate bundle, spool, logs
	ConfigFile string // ejabberd.yml
	LogFile    string // ejabberd.log

	opts    Options
	progs   programs
	run     *run // shared by the nodes of a cluster
	ownRun  bool // Stop also ends the run (Start, not StartCluster)
	index   int  // 0 for node 1, 1 for node 2
	cookie  string
	caPEM   []byte
	log     *slog.Logger
	userSeq *atomic.Uint64 // shared by the nodes of a cluster (one user base)

	mu     sync.Mutex // guards proc and closed
	proc   *testproc.Process
	closed bool
}

// run is what the nodes of one Start or StartCluster share: the process
// group, epmd, the directory and the certificates.
type run struct {
	opts  Options
	progs programs
	log   *slog.Logger
	group *testproc.Group
	epmd  *epmd
	root  string
	certs testcert.Files
	// relayBlock is the TURN relay port block of the first node; node i
	// takes the next i-th one.
	relayBlock int
}

// newRun cleans up after killed runs, then creates the process group, the
// directory, the certificates and epmd of a new one.
func newRun(ctx context.Context, opts Options, progs programs) (*run, error) {
	r := &run{opts: opts, progs: progs, log: logger(opts), relayBlock: randomBlock()}
	group, err := testproc.NewGroup("ejabberdtest", testproc.GroupOptions{Grace: stopGrace, Logger: r.log})
	if err != nil {
		return nil, fmt.Errorf("ejabberdtest: %w", err)
	}
	r.group = group
	if r.root, err = newRoot(opts); err != nil {
		r.close()
		return nil, err
	}
	if r.certs, err = writeCerts(r.root); err != nil {
		r.close()
		return nil, err
	}
	if r.epmd, err = startEpmd(ctx, group, progs, r.root); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

// close stops epmd and whatever is left in the group, and removes the
// directory unless Options.Keep or EnvKeep is set.
func (r *run) close() error {
	if r.epmd != nil {
		r.epmd.stop()
	}
	err := r.group.Close()
	if r.root != "" {
		removeRoot(r.root, r.opts, r.log)
	}
	if err != nil {
		return fmt.Errorf("ejabberdtest: %w", err)
	}
	return nil
}

// programs are the resolved executables.
type programs struct {
	erl, epmd, libs string
}

// Start starts one ejabberd node with its own epmd. The context bounds only
// the start-up; the node runs until Stop. It returns an error wrapping
// ErrNotInstalled when ejabberd is missing.
func Start(ctx context.Context, opts Options) (*Server, error) {
	opts, progs, err := prepare(opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	r, err := newRun(ctx, opts, progs)
	if err != nil {
		return nil, err
	}
	s, err := startNode(ctx, r, 0, newCookie(), new(atomic.Uint64))
	if err != nil {
		_ = r.close()
		return nil, err
	}
	s.ownRun = true
	if err := s.setupUsers(ctx); err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

// prepare validates opts, fills in defaults and resolves the programs.
func prepare(opts Options) (Options, programs, error) {
	progs, err := findPrograms(opts)
	if err != nil {
		return opts, progs, err
	}
	switch opts.LogLevel {
	case "":
		opts.LogLevel = "info"
	case "info", "debug", "warning", "error":
	default:
		return opts, progs, fmt.Errorf("ejabberdtest: LogLevel %q: want info, debug, warning or error", opts.LogLevel)
	}
	for user := range opts.Users {
		if err := testserver.CheckLocalpart("ejabberdtest", user); err != nil {
			return opts, progs, err
		}
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = defaultStartTimeout
	}
	return opts, progs, nil
}

func logger(opts Options) *slog.Logger {
	if opts.Logger != nil {
		return opts.Logger
	}
	return slog.Default()
}

// newRoot removes what killed earlier runs left behind and creates the
// directory of this run, marked with the test binary's pid.
func newRoot(opts Options) (string, error) {
	cleanStale(os.TempDir(), logger(opts))
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return "", fmt.Errorf("ejabberdtest: create directory: %w", err)
	}
	if err := writeOwner(dir); err != nil {
		_ = os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

func removeRoot(dir string, opts Options, log *slog.Logger) {
	if opts.Keep || os.Getenv(EnvKeep) == "1" {
		log.Info("ejabberdtest: keeping directory", "dir", dir)
		return
	}
	_ = os.RemoveAll(dir)
}

// startNode writes the configuration of one node under root/name and
// starts it, retrying with other ports when one was taken meanwhile.
func startNode(ctx context.Context, r *run, index int, cookie string, seq *atomic.Uint64) (*Server, error) {
	name := fmt.Sprintf("n%d", index+1)
	dir := filepath.Join(r.root, name)
	for _, d := range []string{dir, filepath.Join(dir, "spool"), filepath.Join(dir, "logs")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("ejabberdtest: create directory: %w", err)
		}
	}
	s := &Server{
		Domain:     Domain,
		Node:       fmt.Sprintf("ejt%d%s@localhost", os.Getpid(), name),
		ProxyJID:   ProxyJID,
		TURNSecret: cookie + "-turn",
		CAFile:     r.certs.CAFile,
		Dir:        dir,
		ConfigFile: filepath.Join(dir, "ejabberd.yml"),
		LogFile:    filepath.Join(dir, "logs", "ejabberd.log"),
		opts:       r.opts,
		progs:      r.progs,
		run:        r,
		index:      index,
		cookie:     cookie,
		caPEM:      r.certs.CAPEM,
		log:        r.log,
		userSeq:    seq,
	}
	if err := writePEMBundle(s.pemBundle(), r.certs); err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		err := s.configureAndLaunch(ctx)
		if err == nil {
			break
		}
		if !errors.Is(err, errPortInUse) || attempt == startAttempts {
			return nil, err
		}
		s.log.Debug("ejabberdtest: port taken, retrying with other ports", "attempt", attempt, "error", err)
	}
	s.log.Debug("ejabberdtest: ejabberd ready", "node", s.Node, "dir", dir, "c2s", s.C2SAddr,
		"proxy65", s.ProxyAddr, "stun", s.STUNAddr)
	return s, nil
}

// configureAndLaunch picks ports, writes ejabberd.yml and starts the node.
func (s *Server) configureAndLaunch(ctx context.Context) error {
	p, err := pickPorts(s.run.relayBlock + s.index)
	if err != nil {
		return fmt.Errorf("ejabberdtest: pick ports: %w", err)
	}
	s.C2SAddr = loopback(p.c2s)
	s.ProxyAddr = loopback(p.proxy)
	s.STUNAddr = loopback(p.stun)
	s.APIAddr = loopback(p.api)
	if err := os.WriteFile(s.ConfigFile, []byte(s.config(p)), 0o600); err != nil {
		return fmt.Errorf("ejabberdtest: write config: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.launchLocked(ctx)
}

// writeCerts writes the CA and the server certificate of a run, shared by
// the nodes of a cluster (one domain, one certificate, one CA for the
// clients).
func writeCerts(root string) (testcert.Files, error) {
	files, err := testcert.Write(filepath.Join(root, "certs"), Domain, []string{ProxyJID, "pubsub." + Domain})
	if err != nil {
		return files, fmt.Errorf("ejabberdtest: certificates: %w", err)
	}
	return files, nil
}

func loopback(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// setupUsers registers Options.Users and their mutual subscriptions.
func (s *Server) setupUsers(ctx context.Context) error {
	users := make([]string, 0, len(s.opts.Users))
	for user, password := range s.opts.Users {
		if err := s.AddUser(ctx, user, password); err != nil {
			return err
		}
		users = append(users, user)
	}
	if !s.opts.MutualRoster {
		return nil
	}
	for i := range users {
		for j := i + 1; j < len(users); j++ {
			if err := s.MutualSubscribe(ctx, users[i], users[j]); err != nil {
				return err
			}
		}
	}
	return nil
}

// Stop stops the node (SIGTERM, then SIGKILL), and for a node started by
// Start also its epmd, and removes its directory unless Options.Keep or
// EnvKeep is set. It reports an error if the node had exited on its own.
// Stop is idempotent.
func (s *Server) Stop() error {
	err := s.StopNode()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.ownRun {
		err = errors.Join(err, s.run.close())
	}
	return err
}

// StopNode stops the node's Erlang VM and waits for it, keeping its
// directory: a cluster node stopped this way is gone as a user of it sees
// it (connections closed, ports closed) while its peer keeps running. It
// is idempotent.
func (s *Server) StopNode() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopProcessLocked()
}

// Running reports whether the node's VM is running.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return false
	}
	exited, _ := s.proc.Exited()
	return !exited
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

// LogTail returns the last n lines of ejabberd.log.
func (s *Server) LogTail(n int) string { return tailFile(s.LogFile, n) }

// findPrograms resolves erl and epmd and checks that the ejabberd
// application is installed.
func findPrograms(opts Options) (programs, error) {
	var p programs
	var err error
	name := opts.Erl
	if name == "" {
		name = "erl"
	}
	if p.erl, err = exec.LookPath(name); err != nil {
		return p, fmt.Errorf("%w (%v)", ErrNotInstalled, err)
	}
	name = opts.Epmd
	if name == "" {
		name = "epmd"
	}
	if p.epmd, err = exec.LookPath(name); err != nil {
		return p, fmt.Errorf("%w (%v)", ErrNotInstalled, err)
	}
	p.libs = opts.ErlLibs
	if p.libs == "" {
		p.libs = erlLibs
	}
	matches, _ := filepath.Glob(filepath.Join(p.libs, "ejabberd-*", "ebin", "ejabberd.app"))
	if len(matches) == 0 {
		return p, fmt.Errorf("%w (no ejabberd-*/ebin/ejabberd.app under %s)", ErrNotInstalled, p.libs)
	}
	return p, nil
}

// Pid returns the process id of the node's Erlang VM, or 0 when it is not
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
