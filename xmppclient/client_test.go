package xmppclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"
)

// tcpPair returns the two ends of a loopback TCP connection (buffered,
// unlike net.Pipe, so both sides may write at once).
func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := l.Accept()
		ch <- res{c, err}
	}()
	a, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		a.Close()
		t.Fatal(r.err)
	}
	t.Cleanup(func() { a.Close(); r.c.Close() })
	return a, r.c
}

// peerNegotiator opens a jabber:client stream directly between two peers:
// no features, each side sends a header and reads the other's.
func peerNegotiator(local, remote jid.JID) xmpp.Negotiator {
	return func(ctx context.Context, in, out *stream.Info, s *xmpp.Session, _ any) (xmpp.SessionState, io.ReadWriter, any, error) {
		in.XMLNS, out.XMLNS = stanza.NSClient, stanza.NSClient
		_, err := fmt.Fprintf(s.Conn(), `<?xml version='1.0'?><stream:stream xmlns='jabber:client' `+
			`xmlns:stream='http://etherx.jabber.org/streams' version='1.0' from='%s' to='%s'>`, local, remote)
		if err != nil {
			return 0, nil, nil, err
		}
		r := s.TokenReader()
		defer r.Close()
		for {
			tok, err := r.Token()
			if err != nil {
				return 0, nil, nil, err
			}
			if start, ok := tok.(xml.StartElement); ok && start.Name.Local == "stream" {
				return xmpp.Ready, nil, nil, nil
			}
		}
	}
}

// peerSessions returns two sessions talking to each other over loopback TCP.
func peerSessions(t *testing.T, a, b jid.JID) (*xmpp.Session, *xmpp.Session) {
	t.Helper()
	ctx := testCtx(t, 5*time.Second)
	ca, cb := tcpPair(t)
	type res struct {
		s   *xmpp.Session
		err error
	}
	ch := make(chan res, 1)
	go func() {
		s, err := xmpp.NewSession(ctx, a, b, cb, 0, peerNegotiator(b, a))
		ch <- res{s, err}
	}()
	sa, err := xmpp.NewSession(ctx, b, a, ca, 0, peerNegotiator(a, b))
	r := <-ch
	if err != nil || r.err != nil {
		t.Fatal(err, r.err)
	}
	return sa, r.s
}

// presenceRecorder is a handler that records received presence.
type presenceRecorder struct {
	ch chan recordedPresence
}

type recordedPresence struct {
	typ stanza.PresenceType
	ver string
}

func newPresenceRecorder() *presenceRecorder {
	return &presenceRecorder{ch: make(chan recordedPresence, 16)}
}

func (p *presenceRecorder) HandleXMPP(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	if start.Name.Local != "presence" {
		return nil
	}
	var v struct {
		Type stanza.PresenceType `xml:"type,attr"`
		C    struct {
			Ver string `xml:"ver,attr"`
		} `xml:"http://jabber.org/protocol/caps c"`
	}
	if err := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), t)).Decode(&v); err != nil {
		return err
	}
	p.ch <- recordedPresence{typ: v.Type, ver: v.C.Ver}
	return nil
}

func (p *presenceRecorder) next(t *testing.T) recordedPresence {
	t.Helper()
	select {
	case r := <-p.ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no presence received")
		return recordedPresence{}
	}
}

// servePeer serves s with h until its stream ends; the returned function
// waits for that.
func servePeer(t *testing.T, s *xmpp.Session, h xmpp.Handler) (wait func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.Serve(h) }()
	var once sync.Once
	var err error
	wait = func() error {
		once.Do(func() {
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				err = errors.New("peer's Serve did not return")
				s.Conn().Close()
				<-done
			}
		})
		return err
	}
	t.Cleanup(func() { s.Conn().Close(); _ = wait() })
	return wait
}

func TestClientPresenceAndClose(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	sa, sb := peerSessions(t, aliceJID, bobJID)
	rec := newPresenceRecorder()
	wait := servePeer(t, sb, rec)
	caps := testCaps()
	logger, _ := testLogger(t)
	c := New(sa, nil, WithCaps(caps), WithLogger(logger))

	if !c.LocalAddr().Equal(aliceJID) || c.Session() != sa || c.Mechanism() != "" {
		t.Errorf("LocalAddr %s, Mechanism %q", c.LocalAddr(), c.Mechanism())
	}
	if err := c.SendPresence(ctx); err != nil {
		t.Fatal(err)
	}
	if p := rec.next(t); p.typ != "" || p.ver != caps.Ver() {
		t.Errorf("initial presence = %+v, want available with ver %s", p, caps.Ver())
	}
	if err := c.SendPresenceTo(ctx, bobJID); err != nil {
		t.Fatal(err)
	}
	rec.next(t)

	start := time.Now()
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("Close took %v although the peer closed its stream at once", time.Since(start))
	}
	if p := rec.next(t); p.typ != stanza.UnavailablePresence {
		t.Errorf("presence at close = %+v, want unavailable", p)
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Done not closed after Close returned")
	}
	if err := c.Err(); err != nil {
		t.Errorf("Err after Close = %v, want nil", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if err := wait(); err != nil {
		t.Errorf("peer's Serve: %v", err)
	}
}

func TestClientPeerClosesStream(t *testing.T) {
	sa, sb := peerSessions(t, aliceJID, bobJID)
	wait := servePeer(t, sb, nil)
	logger, logs := testLogger(t)
	c := New(sa, nil, WithLogger(logger))
	if c.Err() != nil {
		t.Fatalf("Err while up = %v", c.Err())
	}
	if err := sb.Close(); err != nil { // bob ends his stream
		t.Fatal(err)
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed after the peer closed the stream")
	}
	if !errors.Is(c.Err(), ErrDisconnected) {
		t.Errorf("Err = %v, want ErrDisconnected", c.Err())
	}
	if !strings.Contains(logs.String(), "stream ended") {
		t.Errorf("end of stream not logged: %s", logs)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close after disconnect = %v", err)
	}
	if err := wait(); err != nil {
		t.Errorf("peer's Serve: %v", err)
	}
}

// TestClientCloseTimeout: a peer that never closes its side must not make
// Close hang.
func TestClientCloseTimeout(t *testing.T) {
	sa, sb := peerSessions(t, aliceJID, bobJID)
	// Bob reads everything but never answers the stream close.
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		_, _ = io.Copy(io.Discard, sb.Conn())
	}()
	c := New(sa, nil, WithCloseTimeout(300*time.Millisecond))
	start := time.Now()
	_ = c.Close()
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Close took %v with a 300ms timeout", d)
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Done not closed")
	}
	sb.Conn().Close()
	<-drained
}

func TestDialConnectRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = Dial(testCtx(t, 5*time.Second), Config{
		JID: jid.MustParse("alice@localhost"), Password: "x", Server: addr,
	})
	if !errors.Is(err, ErrConnect) {
		t.Fatalf("err = %v, want ErrConnect", err)
	}
	if errors.Is(err, ErrTLS) || errors.Is(err, ErrAuth) {
		t.Errorf("err %v matches other sentinels too", err)
	}
}

func TestDialTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = Dial(ctx, Config{JID: jid.MustParse("alice@localhost"), Password: "x", Server: l.Addr().String()})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want context.DeadlineExceeded in the chain", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Dial took %v with a 300ms context", d)
	}
	if c, ok := <-accepted; ok {
		c.Close()
	}
}

// fakeServer accepts one connection and plays a server that offers PLAIN
// and records the names of the elements it receives. With cert == nil it
// refuses STARTTLS; otherwise it proceeds and handshakes with cert.
func fakeServer(t *testing.T, cert *tls.Certificate) (addr string, received func() []string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		names []string
		done  = make(chan struct{})
	)
	go func() {
		defer close(done)
		c, err := l.Accept()
		l.Close()
		if err != nil {
			return
		}
		defer func() { c.Close() }()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		d := xml.NewDecoder(c)
		depth := 0
		for {
			tok, err := d.Token()
			if err != nil {
				return
			}
			switch tok := tok.(type) {
			case xml.StartElement:
				depth++
				mu.Lock()
				names = append(names, tok.Name.Local)
				mu.Unlock()
				switch {
				case tok.Name.Local == "stream":
					depth = 0
					fmt.Fprint(c, `<?xml version='1.0'?><stream:stream xmlns='jabber:client' `+
						`xmlns:stream='http://etherx.jabber.org/streams' version='1.0' from='localhost' id='x'>`+
						`<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>`+
						`<mechanism>PLAIN</mechanism></mechanisms></stream:features>`)
				case tok.Name.Local == "starttls" && cert == nil:
					fmt.Fprint(c, `<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>`)
				case tok.Name.Local == "starttls":
					fmt.Fprint(c, `<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`)
					tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{*cert}})
					if err := tc.Handshake(); err != nil {
						return
					}
					c, d = tc, xml.NewDecoder(tc)
				}
			case xml.EndElement:
				depth--
			}
		}
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return l.Addr().String(), func() []string {
		<-done
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), names...)
	}
}

// TestDialRequiresTLS: against a server without STARTTLS, Dial fails with
// ErrTLS and never sends credentials.
func TestDialRequiresTLS(t *testing.T) {
	addr, received := fakeServer(t, nil)
	_, err := Dial(testCtx(t, 5*time.Second), Config{
		JID: jid.MustParse("alice@localhost"), Password: "secret", Server: addr,
		Mechanisms: []string{MechanismPlain},
	})
	if !errors.Is(err, ErrTLS) {
		t.Errorf("err = %v, want ErrTLS", err)
	}
	names := received()
	if len(names) == 0 || names[0] != "stream" {
		t.Fatalf("server received %q", names)
	}
	for _, n := range names {
		if n == "auth" {
			t.Fatalf("client sent <auth/> on a plaintext stream: %q", names)
		}
	}
	if !strings.Contains(strings.Join(names, " "), "starttls") {
		t.Errorf("client did not attempt STARTTLS: %q", names)
	}
}

// TestDialNoTLSOffered: a server that does not list STARTTLS (and refuses
// it) gives ErrNoTLS, which is an ErrTLS.
func TestDialNoTLSOffered(t *testing.T) {
	addr, _ := fakeServer(t, nil)
	_, err := Dial(testCtx(t, 5*time.Second), Config{
		JID: jid.MustParse("alice@localhost"), Password: "secret", Server: addr,
	})
	if !errors.Is(err, ErrNoTLS) || !errors.Is(err, ErrTLS) {
		t.Errorf("err = %v, want ErrNoTLS", err)
	}
}

// TestDialNotXMPP: what answers with something else than an XMPP stream
// (a SOCKS5 proxy's refusal, an HTTP reply) gives ErrNotXMPP.
func TestDialNotXMPP(t *testing.T) {
	for name, reply := range map[string]string{"socks5": "\x05\xff", "http": "HTTP/1.1 400 Bad Request\r\n\r\n"} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Read(make([]byte, 512))
			c.Write([]byte(reply))
			c.Close()
		}()
		_, err = Dial(testCtx(t, 5*time.Second), Config{
			JID: jid.MustParse("alice@localhost"), Password: "secret", Server: l.Addr().String(),
		})
		l.Close()
		if !errors.Is(err, ErrNotXMPP) || !errors.Is(err, ErrConnect) {
			t.Errorf("%s: err = %v, want ErrNotXMPP", name, err)
		}
	}
}

func TestDialConfigErrors(t *testing.T) {
	ctx := testCtx(t, 5*time.Second)
	for name, cfg := range map[string]Config{
		"no localpart":   {JID: jid.MustParse("localhost"), Password: "x", Server: "127.0.0.1:1"},
		"no password":    {JID: jid.MustParse("a@localhost"), Server: "127.0.0.1:1"},
		"bad mechanism":  {JID: jid.MustParse("a@localhost"), Password: "x", Server: "127.0.0.1:1", Mechanisms: []string{"DIGEST-MD5"}},
		"CAFileOnly":     {JID: jid.MustParse("a@localhost"), Password: "x", Server: "127.0.0.1:1", CAFileOnly: true},
		"missing CAFile": {JID: jid.MustParse("a@localhost"), Password: "x", Server: "127.0.0.1:1", CAFile: "/nonexistent.pem"},
	} {
		if _, err := Dial(ctx, cfg); err == nil || errors.Is(err, ErrConnect) {
			t.Errorf("%s: err = %v, want a configuration error", name, err)
		}
	}
}

// TestDialWrongServerName: a certificate from a trusted CA for another name
// is refused (the name checked is the JID's domain).
func TestDialWrongServerName(t *testing.T) {
	caFile, ca := newTestCA(t)
	cert := ca.issue(t, "other.example")
	addr, received := fakeServer(t, &cert)
	_, err := Dial(testCtx(t, 5*time.Second), Config{
		JID: jid.MustParse("alice@localhost"), Password: "secret", Server: addr,
		CAFile: caFile, CAFileOnly: true,
	})
	var herr x509.HostnameError
	if !errors.Is(err, ErrTLS) || !errors.As(err, &herr) {
		t.Errorf("err = %v, want ErrTLS with an x509.HostnameError", err)
	}
	if n := received(); slices.Contains(n, "auth") {
		t.Errorf("credentials sent: %q", n)
	}
}
