package prosodytest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jinglekit/jinglekit/internal/testserver"
)

// shared is the server of the tests that do not stop or restart it.
var shared Lazy

func TestMain(m *testing.M) {
	os.Exit(testserver.MainNoLeaks(m, &shared, testserver.Cleanup(checkNoChildren)))
}

// checkNoChildren fails if any process still has the test binary as its
// parent: every prosody and prosodyctl must have been waited for.
func checkNoChildren() error {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	me := os.Getpid()
	var leaked []string
	for _, path := range stats {
		data, err := os.ReadFile(path)
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid ...; comm may contain spaces and ')'.
		i := bytes.LastIndexByte(data, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(data[i+1:]))
		if len(fields) < 2 {
			continue
		}
		if ppid, _ := strconv.Atoi(fields[1]); ppid == me {
			leaked = append(leaked, string(data[:i+1]))
		}
	}
	if len(leaked) > 0 {
		return fmt.Errorf("leaked child processes: %v", leaked)
	}
	return nil
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// startOwn starts a server that only this test uses.
func startOwn(t *testing.T, opts Options) *Server {
	t.Helper()
	srv, err := Start(testContext(t), opts)
	if err != nil {
		testserver.React(t, err, ErrNotInstalled, EnvRequire)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return srv
}

// rawStream is a hand-driven client stream.
type rawStream struct {
	conn net.Conn
	dec  *xml.Decoder
	feat *streamFeatures
}

// dialStream connects to the c2s port and opens a stream.
func dialStream(t *testing.T, srv *Server) *rawStream {
	t.Helper()
	conn, err := net.DialTimeout("tcp", srv.C2SAddr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial c2s: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	dec, feat, err := openStream(conn, srv.Domain)
	if err != nil {
		t.Fatalf("open stream: %v", err)
	}
	return &rawStream{conn: conn, dec: dec, feat: feat}
}

// startTLS negotiates STARTTLS, completes a TLS handshake with cfg and
// opens a new stream over TLS.
func (s *rawStream) startTLS(t *testing.T, cfg *tls.Config) (*rawStream, error) {
	t.Helper()
	if s.feat.StartTLS == nil {
		t.Fatalf("server does not offer STARTTLS")
	}
	if _, err := io.WriteString(s.conn, "<starttls xmlns='"+nsTLS+"'/>"); err != nil {
		t.Fatalf("send starttls: %v", err)
	}
	el, err := nextStart(s.dec)
	if err != nil {
		t.Fatalf("read starttls answer: %v", err)
	}
	if el.Name.Space != nsTLS || el.Name.Local != "proceed" {
		t.Fatalf("starttls answer: got <%s xmlns=%q>, want <proceed/>", el.Name.Local, el.Name.Space)
	}
	tlsConn := tls.Client(s.conn, cfg)
	if err := tlsConn.HandshakeContext(t.Context()); err != nil {
		return nil, err
	}
	dec, feat, err := openStream(tlsConn, "localhost")
	if err != nil {
		t.Fatalf("open stream over TLS: %v", err)
	}
	return &rawStream{conn: tlsConn, dec: dec, feat: feat}, nil
}

// authPlain tries SASL PLAIN and reports whether the server said success.
func (s *rawStream) authPlain(t *testing.T, user, password string) bool {
	t.Helper()
	creds := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + password))
	if _, err := io.WriteString(s.conn, "<auth xmlns='"+nsSASL+"' mechanism='PLAIN'>"+creds+"</auth>"); err != nil {
		t.Fatalf("send auth: %v", err)
	}
	el, err := nextStart(s.dec)
	if err != nil {
		t.Fatalf("read auth answer: %v", err)
	}
	switch {
	case el.Name.Space == nsSASL && el.Name.Local == "success":
		return true
	case el.Name.Space == nsSASL && el.Name.Local == "failure":
		return false
	}
	t.Fatalf("auth answer: got <%s xmlns=%q>", el.Name.Local, el.Name.Space)
	return false
}

// caConfig builds a TLS client config from the CA file, as a client
// outside this package would.
func caConfig(t *testing.T, srv *Server) *tls.Config {
	t.Helper()
	pem, err := os.ReadFile(srv.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", srv.CAFile)
	}
	return &tls.Config{RootCAs: pool, ServerName: "localhost"}
}

// login connects, upgrades to TLS and tries PLAIN.
func login(t *testing.T, srv *Server, user, password string) bool {
	t.Helper()
	tlsStream, err := dialStream(t, srv).startTLS(t, srv.TLSConfig())
	if err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	return tlsStream.authPlain(t, user, password)
}

func TestServerFields(t *testing.T) {
	srv := shared.Get(t)
	if srv.Domain != "localhost" || srv.ProxyJID != "proxy.localhost" {
		t.Errorf("Domain, ProxyJID = %q, %q", srv.Domain, srv.ProxyJID)
	}
	for name, addr := range map[string]string{"C2SAddr": srv.C2SAddr, "ProxyAddr": srv.ProxyAddr} {
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host != "127.0.0.1" || port == "0" {
			t.Errorf("%s = %q, want 127.0.0.1:PORT", name, addr)
		}
	}
	if srv.C2SAddr == srv.ProxyAddr {
		t.Errorf("c2s and proxy65 share %s", srv.C2SAddr)
	}
	for _, f := range []string{srv.CAFile, srv.CertFile, srv.KeyFile, srv.ConfigFile, srv.LogFile} {
		if !strings.HasPrefix(f, srv.Dir+string(filepath.Separator)) {
			t.Errorf("%s is not inside %s", f, srv.Dir)
		}
		if _, err := os.Stat(f); err != nil {
			t.Error(err)
		}
	}
	if fi, err := os.Stat(srv.KeyFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("key file mode %v, want no group/other access", fi.Mode())
	}
	if srv.Pid() == 0 {
		t.Error("Pid() = 0 for a running server")
	}
}

func TestStreamFeaturesAndStartTLS(t *testing.T) {
	srv := shared.Get(t)
	plain := dialStream(t, srv)
	if plain.feat.StartTLS == nil {
		t.Fatalf("no <starttls/> in stream features")
	}
	// allow_unencrypted_plain_auth = false: PLAIN only after TLS.
	if slices.Contains(plain.feat.Mechanisms, "PLAIN") {
		t.Errorf("PLAIN offered without TLS: %v", plain.feat.Mechanisms)
	}

	secure, err := plain.startTLS(t, caConfig(t, srv))
	if err != nil {
		t.Fatalf("TLS handshake verifying with %s: %v", srv.CAFile, err)
	}
	state := secure.conn.(*tls.Conn).ConnectionState()
	if len(state.VerifiedChains) == 0 {
		t.Fatalf("no verified chain")
	}
	leaf := state.PeerCertificates[0]
	for _, name := range []string{"localhost", "proxy.localhost", "127.0.0.1"} {
		if err := leaf.VerifyHostname(name); err != nil {
			t.Errorf("server certificate: %v", err)
		}
	}
	if secure.feat.StartTLS != nil {
		t.Errorf("<starttls/> still offered after TLS")
	}
	// internal_hashed with the default password_hash offers SCRAM-SHA-1 only.
	for _, want := range []string{"PLAIN", "SCRAM-SHA-1"} {
		if !slices.Contains(secure.feat.Mechanisms, want) {
			t.Errorf("mechanisms after TLS %v lack %s", secure.feat.Mechanisms, want)
		}
	}
	if slices.Contains(secure.feat.Mechanisms, "SCRAM-SHA-256") {
		t.Errorf("SCRAM-SHA-256 offered with password_hash SHA-1: %v", secure.feat.Mechanisms)
	}
}

func TestTLSRejectsUnknownCA(t *testing.T) {
	srv := shared.Get(t)
	cfg := &tls.Config{RootCAs: x509.NewCertPool(), ServerName: "localhost"}
	_, err := dialStream(t, srv).startTLS(t, cfg)
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("handshake with an empty root pool: got %v, want an unknown authority error", err)
	}
}

func TestAddUserAndNewUser(t *testing.T) {
	srv := shared.Get(t)
	ctx := testContext(t)
	if err := srv.AddUser(ctx, "erin", "correct horse"); err != nil {
		t.Fatal(err)
	}
	if !login(t, srv, "erin", "correct horse") {
		t.Errorf("login with the registered password failed")
	}
	if login(t, srv, "erin", "wrong") {
		t.Errorf("login with a wrong password succeeded")
	}
	if login(t, srv, "nobody", "correct horse") {
		t.Errorf("login of an unregistered user succeeded")
	}

	jid1, pw1 := srv.NewUser(t, "Alice")
	jid2, pw2 := srv.NewUser(t, "Alice")
	if jid1 == jid2 || pw1 == pw2 {
		t.Errorf("NewUser not unique: %s/%s, %s/%s", jid1, pw1, jid2, pw2)
	}
	user, host, ok := strings.Cut(jid1, "@")
	if !ok || host != "localhost" || !strings.HasPrefix(user, "alice-") {
		t.Errorf("NewUser jid = %q, want alice-N@localhost", jid1)
	}
	if !login(t, srv, user, pw1) {
		t.Errorf("login of NewUser %s failed", jid1)
	}

	for _, bad := range []string{"", "a@b", "a b", "Upper", "x/y"} {
		if err := srv.AddUser(ctx, bad, "pw"); err == nil {
			t.Errorf("AddUser(%q) succeeded", bad)
		}
	}
	if err := srv.AddUser(ctx, "frank", ""); err == nil {
		t.Errorf("AddUser with an empty password succeeded")
	}
}

// rosterSubscription asks the running server for user's subscription to
// contact.
func rosterSubscription(t *testing.T, srv *Server, user, contact string) string {
	t.Helper()
	out, err := srv.Eval(testContext(t), `local r = require"core.rostermanager".load_roster(`+
		luaQuote(user)+`, "localhost"); local i = r[`+luaQuote(contact)+`]; return i and i.subscription or "none"`)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMutualSubscribe(t *testing.T) {
	srv := shared.Get(t)
	ctx := testContext(t)
	a, _ := srv.NewUser(t, "sub")
	b, _ := srv.NewUser(t, "sub")
	c, _ := srv.NewUser(t, "sub")
	if err := srv.MutualSubscribe(ctx, a, b); err != nil {
		t.Fatal(err)
	}
	au, _, _ := strings.Cut(a, "@")
	bu, _, _ := strings.Cut(b, "@")
	cu, _, _ := strings.Cut(c, "@")
	for _, tc := range []struct{ user, contact, want string }{
		{au, b, "both"}, {bu, a, "both"}, {au, c, "none"}, {cu, a, "none"},
	} {
		if got := rosterSubscription(t, srv, tc.user, tc.contact); got != tc.want {
			t.Errorf("%s's subscription to %s = %q, want %q", tc.user, tc.contact, got, tc.want)
		}
	}
	if err := srv.MutualSubscribe(ctx, a, "ghost"); err == nil {
		t.Errorf("MutualSubscribe with an unregistered user succeeded")
	}
	if err := srv.MutualSubscribe(ctx, a, a); err == nil {
		t.Errorf("MutualSubscribe of a user with itself succeeded")
	}
}

func TestEffectiveConfig(t *testing.T) {
	srv := shared.Get(t)
	ctx := testContext(t)
	for query, want := range map[string]string{
		`return require"core.configmanager".get("localhost", "c2s_stanza_size_limit")`:  strconv.Itoa(stanzaSizeLimit),
		`return require"core.modulemanager".is_loaded("localhost", "limits") or false`:  "false",
		`return require"core.modulemanager".is_loaded("localhost", "offline") or false`: "false",
		`return require"core.modulemanager".is_loaded("localhost", "s2s") or false`:     "false",
		`return require"core.modulemanager".is_loaded("localhost", "roster") or false`:  "true",
		`return require"core.modulemanager".is_loaded("proxy.localhost", "proxy65")`:    "true",
	} {
		got, err := srv.Eval(ctx, query)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s = %q, want %q", query, got, want)
		}
	}
	if _, err := srv.Shell(ctx, `>error("expected failure")`); err == nil {
		t.Errorf("Shell ignored a Lua error")
	}
	if _, err := srv.Eval(ctx, "return 1\nreturn 2"); err == nil {
		t.Errorf("Eval accepted a chunk of two lines")
	}
}

func TestProxy65(t *testing.T) {
	srv := shared.Get(t)
	conn, err := net.DialTimeout("tcp", srv.ProxyAddr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial proxy65: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	// SOCKS5 greeting offering "no authentication".
	if _, err := conn.Write([]byte{5, 1, 0}); err != nil {
		t.Fatal(err)
	}
	reply := make([]byte, 2)
	if _, err := io.ReadFull(conn, reply); err != nil {
		t.Fatalf("read SOCKS5 method selection: %v", err)
	}
	if !bytes.Equal(reply, []byte{5, 0}) {
		t.Errorf("SOCKS5 method selection = %v, want [5 0]", reply)
	}
}

func TestLogTail(t *testing.T) {
	srv := shared.Get(t)
	tail := srv.LogTail(3)
	if lines := strings.Split(tail, "\n"); len(lines) != 3 || tail == "" {
		t.Errorf("LogTail(3) = %q, want 3 lines", tail)
	}
	if full := srv.LogTail(1 << 20); !strings.Contains(full, "Hello and welcome to Prosody") {
		t.Errorf("log does not contain prosody's greeting:\n%s", full)
	}

	path := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(path, []byte("a\nb\nc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := tailFile(path, 2); got != "b\nc" {
		t.Errorf("tailFile 2 = %q", got)
	}
	if got := tailFile(path, 10); got != "a\nb\nc" {
		t.Errorf("tailFile 10 = %q", got)
	}
}

func TestRestart(t *testing.T) {
	srv := startOwn(t, Options{
		Users:        map[string]string{"carol": "pw-carol", "dave": "pw-dave"},
		MutualRoster: true,
	})
	ctx := testContext(t)
	if !login(t, srv, "carol", "pw-carol") {
		t.Fatal("login of an Options.Users account failed")
	}
	if got := rosterSubscription(t, srv, "carol", "dave@localhost"); got != "both" {
		t.Fatalf("MutualRoster: carol's subscription to dave = %q", got)
	}
	old := dialStream(t, srv)
	pid, c2s, proxy := srv.Pid(), srv.C2SAddr, srv.ProxyAddr

	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if got := srv.Pid(); got == 0 || got == pid {
		t.Errorf("pid after restart = %d, before %d", got, pid)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("old prosody %d still there: kill 0 = %v", pid, err)
	}
	if srv.C2SAddr != c2s || srv.ProxyAddr != proxy {
		t.Errorf("addresses changed: %s %s -> %s %s", c2s, proxy, srv.C2SAddr, srv.ProxyAddr)
	}
	if _, err := io.ReadAll(old.conn); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("old connection: %v, want it closed", err)
	}
	if !login(t, srv, "dave", "pw-dave") {
		t.Errorf("login after restart failed")
	}
	if got := rosterSubscription(t, srv, "dave", "carol@localhost"); got != "both" {
		t.Errorf("after restart dave's subscription to carol = %q", got)
	}
	if strings.Count(srv.LogTail(1<<20), "Hello and welcome to Prosody") != 2 {
		t.Errorf("log does not show two starts")
	}
}

func TestStop(t *testing.T) {
	srv := startOwn(t, Options{})
	pid := srv.Pid()
	if pid == 0 {
		t.Fatal("no pid")
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("prosody %d still there after Stop: kill 0 = %v", pid, err)
	}
	if _, err := os.Stat(srv.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("directory still there after Stop: %v", err)
	}
	if conn, err := net.DialTimeout("tcp", srv.C2SAddr, time.Second); err == nil {
		conn.Close()
		t.Errorf("c2s port still accepts after Stop")
	}
	if srv.Pid() != 0 {
		t.Errorf("Pid() = %d after Stop", srv.Pid())
	}
	if err := srv.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if err := srv.Restart(testContext(t)); err == nil {
		t.Errorf("Restart after Stop succeeded")
	}
}

func TestStopReportsCrash(t *testing.T) {
	srv := startOwn(t, Options{})
	if err := syscall.Kill(srv.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for srv.Pid() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := srv.Stop(); err == nil || !strings.Contains(err.Error(), "exited by itself") {
		t.Errorf("Stop after a crash = %v, want an error", err)
	}
}

func TestKeep(t *testing.T) {
	srv := startOwn(t, Options{Keep: true})
	t.Cleanup(func() { os.RemoveAll(srv.Dir) })
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(srv.LogFile); err != nil {
		t.Errorf("Keep: %v", err)
	}
}

func TestPortRetry(t *testing.T) {
	// Hold a port so that prosody cannot bind it on the first attempt.
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	heldPort := held.Addr().(*net.TCPAddr).Port

	calls := 0
	srv := startOwn(t, Options{pickPorts: func(n int) ([]int, error) {
		calls++
		ports, err := freePorts(n)
		if calls == 1 && err == nil {
			ports[1] = heldPort // proxy65
		}
		return ports, err
	}})
	if calls != 2 {
		t.Errorf("picked ports %d times, want 2", calls)
	}
	if srv.ProxyAddr == held.Addr().String() {
		t.Errorf("server kept the taken port %s", srv.ProxyAddr)
	}

	// A port that is always taken: Start gives up, leaves nothing behind.
	_, err = Start(testContext(t), Options{pickPorts: func(n int) ([]int, error) {
		ports, err := freePorts(n)
		if err == nil {
			ports[1] = heldPort
		}
		return ports, err
	}})
	if !errors.Is(err, errPortInUse) {
		t.Errorf("Start with a taken port: %v, want errPortInUse", err)
	}
}

func TestStartFailureShowsOutput(t *testing.T) {
	before, _ := filepath.Glob(filepath.Join(os.TempDir(), "prosodytest-*"))
	_, err := Start(testContext(t), Options{GlobalConfig: "this is not lua"})
	if err == nil {
		t.Fatal("Start with a broken config succeeded")
	}
	if errors.Is(err, ErrNotInstalled) {
		t.Skip(err)
	}
	if !strings.Contains(err.Error(), "exited during start-up") || !strings.Contains(err.Error(), "prosody.cfg.lua") {
		t.Errorf("error does not show prosody's complaint:\n%v", err)
	}
	after, _ := filepath.Glob(filepath.Join(os.TempDir(), "prosodytest-*"))
	if len(after) > len(before) {
		t.Errorf("failed Start left a directory: %v -> %v", before, after)
	}
}

func TestPasswordHashSHA256(t *testing.T) {
	srv := startOwn(t, Options{PasswordHash: "SHA-256", Users: map[string]string{"gina": "pw"}})
	secure, err := dialStream(t, srv).startTLS(t, srv.TLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(secure.feat.Mechanisms, "SCRAM-SHA-256") || slices.Contains(secure.feat.Mechanisms, "SCRAM-SHA-1") {
		t.Errorf("mechanisms with password_hash SHA-256: %v, want SCRAM-SHA-256 and no SCRAM-SHA-1", secure.feat.Mechanisms)
	}
	if !secure.authPlain(t, "gina", "pw") {
		t.Errorf("PLAIN login failed")
	}
}

func TestOptionsValidation(t *testing.T) {
	for _, opts := range []Options{
		{PasswordHash: "MD5"},
		{LogLevel: "loud"},
		{Users: map[string]string{"a b": "pw"}},
	} {
		if srv, err := Start(testContext(t), opts); err == nil {
			srv.Stop()
			t.Errorf("Start(%+v) succeeded", opts)
		} else if errors.Is(err, ErrNotInstalled) {
			t.Skip(err)
		}
	}
}

func TestLuaQuote(t *testing.T) {
	for in, want := range map[string]string{
		`/tmp/x`:     `"/tmp/x"`,
		`a"b\c`:      `"a\"b\\c"`,
		"line\nnext": `"line\010next"`,
	} {
		if got := luaQuote(in); got != want {
			t.Errorf("luaQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestMissingProsody(t *testing.T) {
	for _, opts := range []Options{{Binary: "/nonexistent/prosody"}, {Prosodyctl: "/nonexistent/prosodyctl"}} {
		before, _ := filepath.Glob(filepath.Join(os.TempDir(), "prosodytest-*"))
		_, err := Start(testContext(t), opts)
		if !errors.Is(err, ErrNotInstalled) {
			t.Errorf("Start(%+v) = %v, want ErrNotInstalled", opts, err)
		}
		after, _ := filepath.Glob(filepath.Join(os.TempDir(), "prosodytest-*"))
		if len(after) != len(before) {
			t.Errorf("Start without prosody created a directory")
		}
	}
}

// TestVerdict: a missing prosody skips the test with a message that says
// how to install it and how to require it (testserver's tests cover the
// rest of Verdict).
func TestVerdict(t *testing.T) {
	missing := fmt.Errorf("%w (exec: not found)", ErrNotInstalled)
	skip, msg := testserver.Verdict(missing, program.NotInstalled, program.Env, false)
	if !skip || !strings.Contains(msg, "apt-get install prosody") || !strings.Contains(msg, EnvRequire+"=1") {
		t.Errorf("Verdict(%v) = %v, %q; want a skip that says how to install prosody and names %s", missing, skip, msg, EnvRequire)
	}
}

// recordingTB records what Lazy.Get does with a test.
type recordingTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recordingTB) Helper()           {}
func (r *recordingTB) Skip(args ...any)  { r.skipped, r.msg = true, fmt.Sprint(args...) }
func (r *recordingTB) Fatal(args ...any) { r.failed, r.msg = true, fmt.Sprint(args...) }

func TestLazyWithoutProsody(t *testing.T) {
	for _, required := range []string{"", "1"} {
		t.Setenv(EnvRequire, required)
		l := Lazy{Options: Options{Binary: "/nonexistent"}}
		rec := &recordingTB{TB: t}
		if srv := l.Get(rec); srv != nil {
			t.Errorf("Get returned a server")
		}
		if wantSkip := required == ""; rec.skipped != wantSkip || rec.failed == wantSkip {
			t.Errorf("%s=%q: skipped=%v failed=%v (%s)", EnvRequire, required, rec.skipped, rec.failed, rec.msg)
		}
		if err := l.Shutdown(); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	}
}

func TestLazyStopsOnce(t *testing.T) {
	var l Lazy
	if err := l.Shutdown(); err != nil {
		t.Fatal(err)
	}
	rec := &recordingTB{TB: t}
	if l.Get(rec) != nil || !rec.failed {
		t.Errorf("Get after stop: failed=%v skipped=%v, want a failure", rec.failed, rec.skipped)
	}
}

// bannerProsodyctl writes a wrapper of prosodyctl that hides lua-unbound
// from it: prosodyctl then prints Prosody's real multi-line "unable to find
// lua-unbound" banner on standard output before every answer, as on a
// machine where the package (a Recommends of Debian's prosody) is missing.
func bannerProsodyctl(t *testing.T) string {
	t.Helper()
	_, ctl, err := findPrograms(Options{})
	if err != nil {
		testserver.React(t, err, ErrNotInstalled, EnvRequire)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "lunbound.lua"), []byte(`error("lua-unbound hidden by a jinglekit test")`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A Lua module on package.path is found before the C module; ";;" is
	// the default path.
	path := filepath.Join(dir, "?.lua") + ";;"
	script := "#!/bin/sh\n"
	for _, v := range []string{"LUA_PATH", "LUA_PATH_5_2", "LUA_PATH_5_3", "LUA_PATH_5_4"} {
		script += "export " + v + "='" + path + "'\n"
	}
	script += "exec '" + ctl + "' \"$@\"\n"
	wrapper := filepath.Join(dir, "prosodyctl")
	if err := os.WriteFile(wrapper, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	return wrapper
}

// TestProsodyctlBanner: Prosody's banner about a missing optional
// dependency on prosodyctl's standard output changes no answer.
func TestProsodyctlBanner(t *testing.T) {
	srv := startOwn(t, Options{
		Prosodyctl:   bannerProsodyctl(t),
		Users:        map[string]string{"erin": "pw-erin", "frank": "pw-frank"},
		MutualRoster: true,
	})
	ctx := testContext(t)
	out, err := srv.Prosodyctl(ctx, "about")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "Prosody was unable to find lua-unbound") {
		t.Fatalf("the wrapper did not make prosodyctl print the banner, this test proves nothing:\n%s", out)
	}
	if !login(t, srv, "erin", "pw-erin") {
		t.Errorf("login of an account registered through the banner failed")
	}
	if got := rosterSubscription(t, srv, "erin", "frank@localhost"); got != "both" {
		t.Errorf("erin's subscription to frank = %q, want both", got)
	}
	if got, err := srv.Eval(ctx, `return "two\nlines"`); err != nil || got != "two\nlines" {
		t.Errorf("Eval of a two-line string = %q, %v", got, err)
	}
	if _, err := srv.Eval(ctx, `error("expected failure")`); err == nil {
		t.Errorf("Eval ignored a Lua error")
	}
}

// bannerAnswer is what prosodyctl 0.12.3 prints for an Eval of `return
// "both"` when lua-unbound is missing.
const bannerAnswer = `
**************************
Prosody was unable to find lua-unbound
This package can be obtained in the following ways:

  Debian/Ubuntu | sudo apt install lua-unbound
       luarocks | luarocks install luaunbound
         Source | https://www.zash.se/luaunbound.html

Old DNS resolver library will be used
More help can be found on our website, at https://prosody.im/doc/depends
**************************

Result: <<jinglekit-eval:both:jinglekit-eval>>
`

func TestParseEval(t *testing.T) {
	for _, tc := range []struct{ out, want string }{
		{bannerAnswer, "both"},
		{"Result: <<jinglekit-eval:2:jinglekit-eval>>\n", "2"},
		{"Result: <<jinglekit-eval:two\nlines:jinglekit-eval>>\n", "two\nlines"},
		{"Result: <<jinglekit-eval::jinglekit-eval>>\n", ""},
		{"warning: something\nResult: <<jinglekit-eval: spaced :jinglekit-eval>>\nwarning: more\n", " spaced "},
	} {
		got, err := parseEval(tc.out)
		if err != nil || got != tc.want {
			t.Errorf("parseEval(%q) = %q, %v; want %q", tc.out, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "Result: 2\n", bannerAnswer[:len(bannerAnswer)-20]} {
		if got, err := parseEval(bad); err == nil {
			t.Errorf("parseEval(%q) = %q, want an error", bad, got)
		}
	}
}
