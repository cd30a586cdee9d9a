package xmppclient

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/internal/prosodytest"
)

// Integration tests against a real Prosody started by prosodytest.

// loginConfig is a Config trusting only the harness CA.
func loginConfig(srv *prosodytest.Server, account, password string) Config {
	return Config{
		JID:        jid.MustParse(account),
		Password:   password,
		Server:     srv.C2SAddr,
		CAFile:     srv.CAFile,
		CAFileOnly: true,
	}
}

// mustDial dials and closes the client at the end of the test.
func mustDial(t *testing.T, cfg Config) *Client {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger, _ = testLogger(t)
	}
	c, err := Dial(testCtx(t, 20*time.Second), cfg)
	if err != nil {
		t.Fatalf("Dial %s: %v", cfg.JID, err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close %s: %v", cfg.JID, err)
		}
	})
	return c
}

func TestProsodyLoginSCRAMSHA256(t *testing.T) {
	srv := prosody.Get(t)
	account, password := srv.NewUser(t, "alice")
	c := mustDial(t, loginConfig(srv, account, password))

	if got := c.Mechanism(); got != MechanismSCRAMSHA256 {
		t.Errorf("mechanism = %q, want %s", got, MechanismSCRAMSHA256)
	}
	addr := c.LocalAddr()
	if addr.Bare().String() != account || addr.Resourcepart() == "" {
		t.Errorf("bound %s, want a server-generated resource of %s", addr, account)
	}
	st := c.Session().ConnectionState()
	if !st.HandshakeComplete || len(st.VerifiedChains) == 0 {
		t.Errorf("TLS state: handshake %v, %d verified chains", st.HandshakeComplete, len(st.VerifiedChains))
	}
	if want := xmpp.Secure | xmpp.Authn | xmpp.Ready; c.Session().State()&want != want {
		t.Errorf("session state %v", c.Session().State())
	}

	// The session works: the server answers a disco#info query.
	info, err := GetInfo(testCtx(t, 10*time.Second), c.Session(), jid.MustParse(srv.Domain), "")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(info.Identities, func(i Identity) bool { return i.Category == "server" }) {
		t.Errorf("server identities %+v", info.Identities)
	}

	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.Err(); err != nil {
		t.Errorf("Err after Close = %v", err)
	}
}

// TestProsodyRequestedResource: a full JID binds that resource (mellium's
// own bind feature would have sent an empty <resource/>).
func TestProsodyRequestedResource(t *testing.T) {
	srv := prosody.Get(t)
	account, password := srv.NewUser(t, "alice")
	for _, res := range []string{"laptop", "phone"} {
		c := mustDial(t, loginConfig(srv, account+"/"+res, password))
		if got := c.LocalAddr().String(); got != account+"/"+res {
			t.Errorf("bound %s, want %s/%s", got, account, res)
		}
	}
}

// TestProsodyCAAddedToSystemPool: without CAFileOnly the harness CA is added
// to the system roots.
func TestProsodyCAAddedToSystemPool(t *testing.T) {
	srv := prosody.Get(t)
	account, password := srv.NewUser(t, "alice")
	cfg := loginConfig(srv, account, password)
	cfg.CAFileOnly = false
	mustDial(t, cfg)
}

func TestProsodyPlainInsideTLS(t *testing.T) {
	srv := prosody.Get(t)
	account, password := srv.NewUser(t, "alice")
	cfg := loginConfig(srv, account, password)
	cfg.Mechanisms = []string{MechanismPlain}
	if c := mustDial(t, cfg); c.Mechanism() != MechanismPlain {
		t.Errorf("mechanism = %q", c.Mechanism())
	}
}

func TestProsodyWrongPassword(t *testing.T) {
	srv := prosody.Get(t)
	account, password := srv.NewUser(t, "alice")
	for _, mech := range []string{MechanismSCRAMSHA256, MechanismPlain} {
		cfg := loginConfig(srv, account, password+"-wrong")
		cfg.Mechanisms = []string{mech}
		cfg.Logger, _ = testLogger(t)
		c, err := Dial(testCtx(t, 20*time.Second), cfg)
		if err == nil {
			c.Close()
			t.Fatalf("%s: login with a wrong password succeeded", mech)
		}
		if !errors.Is(err, ErrAuth) {
			t.Errorf("%s: err = %v, want ErrAuth", mech, err)
		}
		var serr *SASLError
		if !errors.As(err, &serr) || serr.Condition != "not-authorized" || serr.Mechanism != mech {
			t.Errorf("%s: SASL error = %+v", mech, serr)
		}
		if errors.Is(err, ErrConnect) || errors.Is(err, ErrTLS) {
			t.Errorf("%s: err %v also matches ErrConnect/ErrTLS", mech, err)
		}
	}
}

// TestProsodyForcedSCRAMSHA1NotOffered: this server stores SCRAM-SHA-256
// credentials only, so insisting on SCRAM-SHA-1 fails before any exchange.
func TestProsodyForcedSCRAMSHA1NotOffered(t *testing.T) {
	srv := prosody.Get(t)
	account, password := srv.NewUser(t, "alice")
	cfg := loginConfig(srv, account, password)
	cfg.Mechanisms = []string{MechanismSCRAMSHA1}
	cfg.Logger, _ = testLogger(t)
	_, err := Dial(testCtx(t, 20*time.Second), cfg)
	if !errors.Is(err, ErrNoMechanism) || errors.Is(err, ErrAuth) {
		t.Fatalf("err = %v, want ErrNoMechanism", err)
	}
}

// TestProsodySCRAMSHA1 runs its own server storing SCRAM-SHA-1 credentials.
func TestProsodySCRAMSHA1(t *testing.T) {
	prosody.Get(t) // skip like the others when prosody is missing
	logger, _ := testLogger(t)
	srv, err := prosodytest.Start(testCtx(t, 30*time.Second), prosodytest.Options{
		PasswordHash: "SHA-1",
		Users:        map[string]string{"alice": "alice-password"},
		Logger:       logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("stopping the SHA-1 server: %v", err)
		}
	})
	account := "alice@" + srv.Domain

	t.Run("forced", func(t *testing.T) {
		cfg := loginConfig(srv, account, "alice-password")
		cfg.Mechanisms = []string{MechanismSCRAMSHA1}
		if c := mustDial(t, cfg); c.Mechanism() != MechanismSCRAMSHA1 {
			t.Errorf("mechanism = %q", c.Mechanism())
		}
	})
	t.Run("default order falls back", func(t *testing.T) {
		if c := mustDial(t, loginConfig(srv, account, "alice-password")); c.Mechanism() != MechanismSCRAMSHA1 {
			t.Errorf("mechanism = %q, want SCRAM-SHA-1 (the server offers no SCRAM-SHA-256)", c.Mechanism())
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		cfg := loginConfig(srv, account, "nope")
		cfg.Mechanisms = []string{MechanismSCRAMSHA1}
		cfg.Logger = logger
		if _, err := Dial(testCtx(t, 20*time.Second), cfg); !errors.Is(err, ErrAuth) {
			t.Errorf("err = %v, want ErrAuth", err)
		}
	})
}

func TestProsodyUnreachablePort(t *testing.T) {
	srv := prosody.Get(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().String()
	l.Close()
	cfg := loginConfig(srv, "alice@"+srv.Domain, "x")
	cfg.Server = port
	if _, err := Dial(testCtx(t, 10*time.Second), cfg); !errors.Is(err, ErrConnect) {
		t.Fatalf("err = %v, want ErrConnect", err)
	}
}

func TestProsodyUntrustedCertificate(t *testing.T) {
	srv := prosody.Get(t)
	account, password := srv.NewUser(t, "alice")
	wrongCA, _ := newTestCA(t) // signed nothing the server has
	for name, mod := range map[string]func(*Config){
		"unrelated CA only":     func(c *Config) { c.CAFile = wrongCA },
		"unrelated CA + system": func(c *Config) { c.CAFile, c.CAFileOnly = wrongCA, false },
		"system roots only":     func(c *Config) { c.CAFile, c.CAFileOnly = "", false },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := loginConfig(srv, account, password)
			mod(&cfg)
			cfg.Logger, _ = testLogger(t)
			c, err := Dial(testCtx(t, 20*time.Second), cfg)
			if err == nil {
				c.Close()
				t.Fatal("login succeeded with an untrusted certificate")
			}
			if !errors.Is(err, ErrTLS) {
				t.Errorf("err = %v, want ErrTLS", err)
			}
			var verr *tls.CertificateVerificationError
			if !errors.As(err, &verr) {
				t.Errorf("err = %v, want a *tls.CertificateVerificationError in the chain", err)
			}
			if errors.Is(err, ErrAuth) || errors.Is(err, ErrConnect) {
				t.Errorf("err %v also matches ErrAuth/ErrConnect", err)
			}
		})
	}
}

func TestProsodyInsecureSkipVerify(t *testing.T) {
	srv := prosody.Get(t)
	account, password := srv.NewUser(t, "alice")
	logger, logs := testLogger(t)
	cfg := loginConfig(srv, account, password)
	cfg.CAFile, cfg.CAFileOnly = "", false // would fail verification
	cfg.InsecureSkipVerify = true
	cfg.Logger = logger
	c := mustDial(t, cfg)
	if len(c.Session().ConnectionState().VerifiedChains) != 0 {
		t.Error("certificate was verified although InsecureSkipVerify is set")
	}
	out := logs.String()
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "InsecureSkipVerify") {
		t.Errorf("no warning logged; log:\n%s", out)
	}
}

// TestProsodyDiscoAndCaps: bob queries alice's disco#info through the
// server, learns her caps from directed presence and then answers from his
// cache.
func TestProsodyDiscoAndCaps(t *testing.T) {
	srv := prosody.Get(t)
	ctx := testCtx(t, 20*time.Second)
	aliceAccount, alicePass := srv.NewUser(t, "alice")
	bobAccount, bobPass := srv.NewUser(t, "bob")

	d := NewDisco(DiscoConfig{})
	bobCfg := loginConfig(srv, bobAccount+"/jingle", bobPass)
	bobCfg.Handler = mux.New(stanza.NSClient, d.HandlePresence(), HandleDisco(Caps{}))
	bob := mustDial(t, bobCfg)

	caps := Caps{
		Identities: []Identity{{Category: "client", Type: "bot", Name: "jinglekit"}},
		Features:   []string{"urn:xmpp:jingle:1", "urn:xmpp:jingle:apps:file-transfer:5", "urn:xmpp:jingle:transports:s5b:1"},
	}
	aliceH := capsPeer(caps)
	aliceCfg := loginConfig(srv, aliceAccount+"/jingle", alicePass)
	aliceCfg.Handler = aliceH
	aliceCfg.Caps = caps
	alice := mustDial(t, aliceCfg)
	aliceAddr := alice.LocalAddr()

	// Without caps: an ordinary query through the server.
	info, err := d.Info(ctx, bob.Session(), aliceAddr)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(info.Features, caps.Info().Features) || !slices.Equal(info.Identities, caps.Info().Identities) {
		t.Fatalf("alice's disco#info = %+v, want %+v", info, caps.Info())
	}

	// Directed presence with caps (no subscription needed).
	if err := alice.SendPresenceTo(ctx, bob.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "bob to learn alice's caps", func() bool { v, _ := d.knows(aliceAddr); return v == caps.Ver() })
	before := aliceH.gets.Load()
	for range 3 {
		ok, err := d.HasFeature(ctx, bob.Session(), aliceAddr, "urn:xmpp:jingle:transports:s5b:1")
		if err != nil || !ok {
			t.Fatalf("HasFeature(s5b) = %v, %v", ok, err)
		}
	}
	if got := aliceH.gets.Load() - before; got != 1 {
		t.Errorf("alice answered %d queries after advertising caps, want 1 (then the cache)", got)
	}
	if !d.cached(caps.Ver()) {
		t.Error("alice's verified caps are not cached")
	}

	// Going offline reaches bob as unavailable presence (he had directed
	// presence) and he forgets her caps.
	if err := alice.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "bob to forget alice", func() bool { _, ok := d.knows(aliceAddr); return !ok })
}

// TestProsodyServerEndsStream: Done and Err report a stream the server
// closed.
func TestProsodyServerEndsStream(t *testing.T) {
	srv := prosody.Get(t)
	account, password := srv.NewUser(t, "alice")
	c := mustDial(t, loginConfig(srv, account+"/gone", password))
	if _, err := srv.Shell(testCtx(t, 20*time.Second), `c2s:close("`+account+`/gone")`); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed after the server closed the session")
	}
	if c.Err() == nil {
		t.Error("Err = nil for a stream the server ended")
	}
	t.Logf("Err = %v", c.Err())
}

// TestProsodySRV: without Server, Dial finds the server by SRV lookup of the
// JID's domain (here from a fake DNS server on loopback).
func TestProsodySRV(t *testing.T) {
	srv := prosody.Get(t)
	account, password := srv.NewUser(t, "alice")
	_, portStr, err := net.SplitHostPort(srv.C2SAddr)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		t.Fatal(err)
	}
	dns := newFakeDNS(t)
	dns.setSRV(t, "_xmpp-client._tcp", srv.Domain, "xmpp.jinglekit.test", uint16(port))

	cfg := loginConfig(srv, account, password)
	cfg.Server = ""
	cfg.Resolver = dns.resolver()
	c := mustDial(t, cfg)
	if c.LocalAddr().Bare().String() != account {
		t.Errorf("bound %s", c.LocalAddr())
	}
	if !dns.asked("SRV _xmpp-client._tcp." + srv.Domain) {
		t.Errorf("no SRV query; queries: %q", dns.log())
	}
	if !dns.asked("A xmpp.jinglekit.test.") {
		t.Errorf("SRV target not resolved through the resolver; queries: %q", dns.log())
	}
	// The certificate was checked against the JID's domain, not against the
	// SRV target (for which the server has no certificate).
	if len(c.Session().ConnectionState().VerifiedChains) == 0 {
		t.Error("certificate not verified")
	}
}

// TestSRVEveryAddress: when no address of the SRV records answers, the
// error names each address tried, with its error.
func TestSRVEveryAddress(t *testing.T) {
	var ports []uint16
	for range 2 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, uint16(l.Addr().(*net.TCPAddr).Port))
		l.Close()
	}
	dns := newFakeDNS(t)
	dns.setSRV(t, "_xmpp-client._tcp", "example.test", "one.example.test", ports[0])
	dns.setSRV(t, "_xmpps-client._tcp", "example.test", "two.example.test", ports[1])
	_, err := Dial(testCtx(t, 10*time.Second), Config{
		JID: jid.MustParse("alice@example.test"), Password: "x", Resolver: dns.resolver(),
	})
	if !errors.Is(err, ErrConnect) {
		t.Fatalf("err = %v, want ErrConnect", err)
	}
	for _, want := range []string{
		fmt.Sprintf("one.example.test:%d: dial tcp 127.0.0.1:%d: connect: connection refused", ports[0], ports[0]),
		fmt.Sprintf("two.example.test:%d (direct TLS): dial tcp 127.0.0.1:%d: connect: connection refused", ports[1], ports[1]),
		"2 addresses tried",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// TestSRVUnreachable: SRV records pointing at a closed port give ErrConnect.
func TestSRVUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	dns := newFakeDNS(t)
	dns.setSRV(t, "_xmpp-client._tcp", "example.test", "xmpp.example.test", port)
	dns.setSRV(t, "_xmpps-client._tcp", "example.test", "xmpp.example.test", port)
	_, err = Dial(testCtx(t, 10*time.Second), Config{
		JID: jid.MustParse("alice@example.test"), Password: "x", Resolver: dns.resolver(),
	})
	if !errors.Is(err, ErrConnect) {
		t.Fatalf("err = %v, want ErrConnect", err)
	}
}

// TestProsodyServers: Dial tries Server then Servers in order, skips an
// endpoint where nothing listens and one that is not an XMPP server, and
// says which endpoint took the login; a wrong password stops the search.
func TestProsodyServers(t *testing.T) {
	srv := prosody.Get(t)
	account, password := srv.NewUser(t, "alice")
	dead := closedPort(t)
	// Accepts TCP, then closes at once: not an XMPP server.
	junk, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer junk.Close()
	go func() {
		for {
			c, err := junk.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	cfg := loginConfig(srv, account, password)
	cfg.Server, cfg.Servers = dead, []string{junk.Addr().String(), srv.C2SAddr, dead}
	c := mustDial(t, cfg)
	if c.Server() != srv.C2SAddr {
		t.Errorf("Server() = %q, want %q", c.Server(), srv.C2SAddr)
	}

	// One endpoint, in Servers only.
	cfg.Server, cfg.Servers = "", []string{srv.C2SAddr}
	if c := mustDial(t, cfg); c.Server() != srv.C2SAddr {
		t.Errorf("Server() = %q, want %q", c.Server(), srv.C2SAddr)
	}

	cfg.Password = password + "-wrong"
	cfg.Server, cfg.Servers = srv.C2SAddr, []string{srv.C2SAddr + "0", dead}
	var logs bytes.Buffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	_, err = Dial(testCtx(t, 20*time.Second), cfg)
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("wrong password: %v, want ErrAuth", err)
	}
	if strings.Contains(logs.String(), "trying the next server") {
		t.Errorf("a refused login went on to the next server:\n%s", logs.String())
	}

	cfg.Password = password
	cfg.Server, cfg.Servers = dead, []string{junk.Addr().String()}
	_, err = Dial(testCtx(t, 20*time.Second), cfg)
	if !errors.Is(err, ErrConnect) || !strings.Contains(err.Error(), "no server of") {
		t.Fatalf("no usable server: %v", err)
	}
}

// closedPort returns a loopback address where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// recorder keeps a copy of the bytes that pass through it.
type recorder struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String()
}

type recordReader struct {
	r   io.Reader
	rec *recorder
}

func (rr recordReader) Read(b []byte) (int, error) {
	n, err := rr.r.Read(b)
	rr.rec.mu.Lock()
	rr.rec.buf.Write(b[:n])
	rr.rec.mu.Unlock()
	return n, err
}

type recordWriter struct {
	w   io.Writer
	rec *recorder
}

func (rw recordWriter) Write(b []byte) (int, error) {
	rw.rec.mu.Lock()
	rw.rec.buf.Write(b)
	rw.rec.mu.Unlock()
	return rw.w.Write(b)
}

// TestProsodyFilters: ReadFilter and WriteFilter see the secured
// stream, from the stream restart after STARTTLS on, both ways.
func TestProsodyFilters(t *testing.T) {
	srv := prosody.Get(t)
	account, password := srv.NewUser(t, "alice")
	var in, out recorder
	cfg := loginConfig(srv, account, password)
	cfg.ReadFilter = func(r io.Reader) io.Reader { return recordReader{r, &in} }
	cfg.WriteFilter = func(w io.Writer) io.Writer { return recordWriter{w, &out} }
	c := mustDial(t, cfg)
	if err := c.Session().Send(testCtx(t, 10*time.Second), stanza.Message{To: c.LocalAddr(), Type: stanza.ChatMessage}.Wrap(nil)); err != nil {
		t.Fatal(err)
	}
	sent, got := out.String(), in.String()
	for _, s := range []string{"<stream:stream", "<auth", "<bind", "<message"} {
		if !strings.Contains(sent, s) {
			t.Errorf("the write filter did not see %s: %q", s, sent)
		}
	}
	if strings.Contains(sent, "<starttls") {
		t.Errorf("the write filter saw the plaintext stream: %q", sent)
	}
	for _, s := range []string{"<success", "<bind"} {
		if !strings.Contains(got, s) {
			t.Errorf("the read filter did not see %s: %q", s, got)
		}
	}
}
