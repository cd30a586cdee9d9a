package socks5_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/xml"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/internal/testproc"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jingletest"
	"github.com/jinglekit/jinglekit/transports/socks5"
	"github.com/jinglekit/jinglekit/xmppclient"
	"github.com/jinglekit/jinglekit/xmpptest"
)

// newLogger collects the logs of a test and prints them only if it fails
// (or always, with JINGLEKIT_TEST_LOG=1).
func newLogger(t testing.TB) *slog.Logger {
	l := &testproc.Output{}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("JINGLEKIT_TEST_LOG") == "1" {
			t.Logf("logs:\n%s", l.String())
		}
	})
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func tctx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// loopback returns settings for tests on one host: a direct candidate on
// 127.0.0.1, no proxy discovery, short timeouts.
func loopback() socks5.Settings {
	return socks5.Settings{
		AllowLoopback:      true,
		Addresses:          []string{"127.0.0.1"},
		ListenHost:         "127.0.0.1",
		NoProxyDiscovery:   true,
		ConnectTimeout:     3 * time.Second,
		HandshakeTimeout:   3 * time.Second,
		NegotiationTimeout: 10 * time.Second,
	}
}

// unreachable returns settings whose direct candidate nobody can use: it
// is offered on 127.0.0.1 while the streamhost listens on 127.0.0.2.
func unreachable() socks5.Settings {
	s := loopback()
	s.ListenHost = "127.0.0.2"
	return s
}

// side is one party of a test: its XMPP session, Jingle manager, test
// application, S5B method and a pipe method for fallback.
type side struct {
	j   jid.JID
	xs  *xmpp.Session
	m   *jingle.Manager
	app *jingletest.App
	s5b *socks5.Method
}

func newSide(t testing.TB, n *xmpptest.Network, addr string, set socks5.Settings, x *jingletest.Exchange) *side {
	t.Helper()
	if set.Logger == nil {
		set.Logger = newLogger(t).With("side", addr)
	}
	return newSideWith(t, n, addr, socks5.NewMethod(set), x)
}

// newSideWith is newSide with a given S5B method, which may be another
// side's.
func newSideWith(t testing.TB, n *xmpptest.Network, addr string, s5b *socks5.Method, x *jingletest.Exchange) *side {
	t.Helper()
	sd := &side{
		j:   jid.MustParse(addr),
		m:   &jingle.Manager{Logger: newLogger(t).With("side", addr), Limits: jingle.Limits{IQTimeout: 10 * time.Second}},
		app: jingletest.NewApp(),
		s5b: s5b,
	}
	sd.m.RegisterApplication(sd.app)
	sd.m.RegisterTransport(sd.s5b)
	if x != nil {
		sd.m.RegisterTransport(&jingletest.PipeMethod{X: x})
	}
	// The stream is an IQTracker, as an xmppclient.Client is: reports go
	// out without a goroutine waiting for their answers. It is closed
	// after the Manager.
	tr := &xmppclient.IQTracker{}
	t.Cleanup(func() { tr.Close(nil) })
	sd.xs = jingletest.Join(t, n, addr, tr.Handler(mux.New(stanza.NSClient, sd.m.Handler())), sd.m)
	tr.SetSession(sd.xs)
	sd.m.SetStream(tr)
	return sd
}

// newPair connects alice and bob to a new in-memory network.
func newPair(t testing.TB, as, bs socks5.Settings, fallback bool) (*xmpptest.Network, *side, *side) {
	t.Helper()
	n := xmpptest.NewNetwork(t)
	var x *jingletest.Exchange
	if fallback {
		x = jingletest.NewExchange()
	}
	return n, newSide(t, n, xmpptest.Alice, as, x), newSide(t, n, xmpptest.Bob, bs, x)
}

func offer(name string, transports ...string) jingle.Offer {
	if len(transports) == 0 {
		transports = []string{socks5.NS}
	}
	return jingle.Offer{Name: name, Description: jingletest.Desc(name), Transports: transports}
}

// start initiates a session from a to b and returns both ends; b's
// session is not accepted yet.
func start(t testing.TB, a, b *side, o jingle.Offer) (as, bs *jingle.Session) {
	t.Helper()
	as, err := a.m.Initiate(tctx(t, 10*time.Second), b.j, o)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case bs = <-b.app.Sessions:
	case <-time.After(10 * time.Second):
		t.Fatal("no incoming session")
	}
	ev, err := bs.NextEvent(tctx(t, 10*time.Second))
	if err != nil || ev.Action != jingle.ActionSessionInitiate {
		t.Fatalf("first event %v, %v", ev.Action, err)
	}
	return as, bs
}

// accepted starts a session and has b accept it.
func accepted(t testing.TB, a, b *side, o jingle.Offer) (as, bs *jingle.Session) {
	t.Helper()
	as, bs = start(t, a, b, o)
	if err := bs.Accept(tctx(t, 10*time.Second), nil); err != nil {
		t.Fatal(err)
	}
	return as, bs
}

type connResult struct {
	c   net.Conn
	err error
}

// conns asks both sessions for the content's stream at the same time.
func conns(t testing.TB, as, bs *jingle.Session, name string) (ca, cb net.Conn) {
	t.Helper()
	ra, rb := connAsync(t, as, name), connAsync(t, bs, name)
	a, b := <-ra, <-rb
	if a.err != nil || b.err != nil {
		t.Fatalf("Conn: %s: %v; %s: %v", as.Local(), a.err, bs.Local(), b.err)
	}
	return a.c, b.c
}

func connAsync(t testing.TB, s *jingle.Session, name string) <-chan connResult {
	ch := make(chan connResult, 1)
	ctx := tctx(t, 30*time.Second)
	go func() {
		c, err := s.Conn(ctx, name)
		ch <- connResult{c, err}
	}()
	return ch
}

// dialAsync calls Dial on the content's transport itself, bypassing the
// session's fallback.
func dialAsync(t testing.TB, s *jingle.Session, name string) <-chan connResult {
	tr, err := s.Transport(name)
	if err != nil {
		t.Fatal(err)
	}
	st, ok := tr.(jingle.StreamTransport)
	if !ok {
		t.Fatalf("transport %T is not a stream transport", tr)
	}
	ch := make(chan connResult, 1)
	ctx := tctx(t, 30*time.Second)
	go func() {
		c, err := st.Dial(ctx)
		ch <- connResult{c, err}
	}()
	return ch
}

type closeWriter interface{ CloseWrite() error }

// send writes size random bytes on w and half-closes it, while r reads to
// the end; it checks that r got exactly what was sent (SHA-256).
func send(t testing.TB, w, r net.Conn, size int) {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	want := sha256.Sum256(data)
	cw, ok := w.(closeWriter)
	if !ok {
		t.Fatalf("the stream (%T) has no CloseWrite", w)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := w.Write(data)
		if err == nil {
			err = cw.CloseWrite()
		}
		errc <- err
	}()
	r.SetReadDeadline(time.Now().Add(60 * time.Second))
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		t.Fatalf("reading: %v after %d bytes", err, n)
	}
	if err := <-errc; err != nil {
		t.Fatalf("writing: %v", err)
	}
	if n != int64(size) {
		t.Fatalf("read %d bytes, sent %d", n, size)
	}
	if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
		t.Fatalf("sha-256 %x, sent %x", got, want)
	}
	r.SetReadDeadline(time.Time{})
}

// s5bInfo is one <transport/> of a transport-info seen on the network.
type s5bInfo struct {
	from, to string
	t        socks5.Transport
}

// recorder records the S5B transport-info and the transports of
// session-initiate and session-accept that cross the network.
type recorder struct {
	mu     sync.Mutex
	infos  []s5bInfo
	offers map[jingle.Action]socks5.Transport
}

func (r *recorder) observe(from, to jid.JID, raw []byte) {
	var iq struct {
		Type   string         `xml:"type,attr"`
		Jingle *jingle.Jingle `xml:"urn:xmpp:jingle:1 jingle"`
	}
	if xml.Unmarshal(raw, &iq) != nil || iq.Jingle == nil {
		return
	}
	for _, c := range iq.Jingle.Contents {
		if c.Transport == nil || c.Transport.Namespace() != socks5.NS {
			continue
		}
		var tr socks5.Transport
		if c.Transport.Decode(&tr) != nil {
			continue
		}
		r.mu.Lock()
		switch iq.Jingle.Action {
		case jingle.ActionTransportInfo:
			r.infos = append(r.infos, s5bInfo{from.String(), to.String(), tr})
		default:
			if r.offers == nil {
				r.offers = map[jingle.Action]socks5.Transport{}
			}
			r.offers[iq.Jingle.Action] = tr
		}
		r.mu.Unlock()
	}
}

func (r *recorder) reports(from string) []socks5.Transport {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []socks5.Transport
	for _, i := range r.infos {
		if i.from == from {
			out = append(out, i.t)
		}
	}
	return out
}

func (r *recorder) offer(a jingle.Action) socks5.Transport {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.offers[a]
}

// isReport reports whether raw is a transport-info with candidate-used
// or candidate-error.
func isReport(raw []byte) bool {
	s := string(raw)
	return strings.Contains(s, "transport-info") && (strings.Contains(s, "candidate-used") || strings.Contains(s, "candidate-error"))
}

func isAction(raw []byte, a jingle.Action) bool {
	return bytes.Contains(raw, []byte(`action="`+string(a)+`"`)) || bytes.Contains(raw, []byte(`action='`+string(a)+`'`))
}

// holder is a network filter that holds back the stanzas sent by one
// party that match hold until a stanza matching release has been routed,
// then delivers them, in order, right behind it.
type holder struct {
	n       *xmpptest.Network
	from    string
	hold    func([]byte) bool
	release func(from, to jid.JID, raw []byte) bool
	rec     *recorder

	mu       sync.Mutex
	released bool
	held     []heldStanza
	count    int
}

type heldStanza struct {
	to  jid.JID
	raw []byte
}

func (h *holder) filter(from, to jid.JID, raw []byte) []byte {
	if h.rec != nil {
		h.rec.observe(from, to, raw)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.released && from.String() == h.from && h.hold(raw) {
		h.held = append(h.held, heldStanza{to, append([]byte(nil), raw...)})
		h.count++
		return nil
	}
	if !h.released && h.release(from, to, raw) {
		h.released = true
		// Behind the releasing stanza when they go to the same party.
		held := h.held
		h.held = nil
		if len(held) > 0 && held[0].to.Equal(to) {
			go h.inject(append([]heldStanza{{to, append([]byte(nil), raw...)}}, held...))
			return nil
		}
		go h.inject(held)
	}
	return raw
}

func (h *holder) inject(ss []heldStanza) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range ss {
		_ = h.n.Inject(ctx, s.to, string(s.raw))
	}
}

func (h *holder) isReleased() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.released
}

func (h *holder) heldCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.count
}

func wantFailed(t testing.TB, who string, r connResult) {
	t.Helper()
	if r.err == nil {
		r.c.Close()
		t.Fatalf("%s: Dial succeeded, want a failure", who)
	}
	if !errors.Is(r.err, jingle.ErrTransportFailed) {
		t.Fatalf("%s: Dial: %v, want an error wrapping jingle.ErrTransportFailed", who, r.err)
	}
}

func port(a net.Addr) string {
	_, p, _ := net.SplitHostPort(a.String())
	return p
}
