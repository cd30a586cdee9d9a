package filetransfer_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/xml"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jingletest"
	"github.com/jinglekit/jinglekit/xmpptest"
)

// testTimeouts keep the tests from waiting long on a failure, but are far
// longer than anything takes when it works: no test depends on them.
var testTimeouts = filetransfer.Timeouts{Checksum: 20 * time.Second, Verdict: 20 * time.Second, Idle: 20 * time.Second, Grace: 200 * time.Millisecond}

// party is one side of a test: XMPP session, Jingle manager with the
// file-transfer Handler and a pipe transport, and its receive directory.
type party struct {
	jid     jid.JID
	xs      *xmpp.Session
	m       *jingle.Manager
	h       *filetransfer.Handler
	dir     string
	results chan filetransfer.Result
}

// newParty connects addr to n. methods are the transport methods to
// register (a PipeMethod on x when none).
func newParty(t testing.TB, n *xmpptest.Network, addr string, x *jingletest.Exchange, configure func(h *filetransfer.Handler), methods ...jingle.TransportMethod) *party {
	t.Helper()
	p := &party{
		jid:     jid.MustParse(addr),
		m:       &jingle.Manager{},
		dir:     t.TempDir(),
		results: make(chan filetransfer.Result, 64),
	}
	p.h = &filetransfer.Handler{
		Dir:      p.dir,
		Timeouts: testTimeouts,
		Done:     func(r filetransfer.Result) { p.results <- r },
	}
	if configure != nil {
		configure(p.h)
	}
	p.m.RegisterApplication(p.h)
	if len(methods) == 0 {
		methods = []jingle.TransportMethod{&jingletest.PipeMethod{X: x}}
	}
	for _, tm := range methods {
		p.m.RegisterTransport(tm)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts := []mux.Option{p.m.Handler()}
	for _, tm := range methods {
		// Methods that answer stanzas of their own (transports/ibb).
		if h, ok := tm.(interface{ Handler() mux.Option }); ok {
			opts = append(opts, h.Handler())
		}
	}
	xs, err := n.Client(ctx, p.jid, mux.New(stanza.NSClient, opts...))
	if err != nil {
		t.Fatal(err)
	}
	p.xs = xs
	p.m.SetStream(xs)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.m.Close(ctx); err != nil {
			t.Errorf("closing manager of %s: %v", addr, err)
		}
	})
	return p
}

// newPair returns alice (no policy: she only sends) and bob, who accepts
// every offer unless configure says otherwise.
func newPair(t testing.TB, configureBob func(h *filetransfer.Handler)) (*xmpptest.Network, *party, *party) {
	t.Helper()
	n := xmpptest.NewNetwork(t)
	x := jingletest.NewExchange()
	alice := newParty(t, n, xmpptest.Alice, x, nil)
	bob := newParty(t, n, xmpptest.Bob, x, func(h *filetransfer.Handler) {
		h.Policy = filetransfer.AcceptAll
		if configureBob != nil {
			configureBob(h)
		}
	})
	return n, alice, bob
}

func tctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// randomBytes returns n deterministic pseudo-random bytes.
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 1, 2, 3}))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

func sha256Of(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

// result waits for the next result of p's Handler.
func (p *party) result(t testing.TB) filetransfer.Result {
	t.Helper()
	select {
	case r := <-p.results:
		return r
	case <-time.After(60 * time.Second):
		t.Fatalf("%s: no result", p.jid)
		return filetransfer.Result{}
	}
}

// listDir returns the names in dir, sorted.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}

// completeFiles lists the names in dir that are not partial transfers.
func completeFiles(t *testing.T, dir string) []string {
	var out []string
	for _, n := range listDir(t, dir) {
		if !strings.HasSuffix(n, ".part") && n != filetransfer.StateDirName {
			out = append(out, n)
		}
	}
	return out
}

func wantFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes, sha256 %x; want %d bytes, sha256 %x", path, len(got), sha256Of(got), len(want), sha256Of(want))
	}
}

func wantInside(t *testing.T, dir, path string) {
	t.Helper()
	rel, err := filepath.Rel(dir, path)
	if err != nil || strings.Contains(rel, string(filepath.Separator)) || rel == ".." || strings.HasPrefix(rel, ".") {
		t.Fatalf("%s is not a plain file directly inside %s", path, dir)
	}
}

// rawPeer is an XMPP client that speaks Jingle by hand: it records the
// <jingle/> IQs it gets and acknowledges them.
type rawPeer struct {
	jid  jid.JID
	xs   *xmpp.Session
	seen chan *jingle.Jingle
}

func newRawPeer(t *testing.T, n *xmpptest.Network, addr string) *rawPeer {
	t.Helper()
	p := &rawPeer{jid: jid.MustParse(addr), seen: make(chan *jingle.Jingle, 64)}
	h := mux.New(stanza.NSClient, mux.IQFunc(stanza.SetIQ, xml.Name{Space: jingle.NS, Local: "jingle"},
		func(iq stanza.IQ, r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
			var j jingle.Jingle
			if err := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), r)).Decode(&j); err != nil {
				return err
			}
			p.seen <- &j
			_, err := xmlstream.Copy(r, iq.Result(nil))
			return err
		}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	xs, err := n.Client(ctx, p.jid, h)
	if err != nil {
		t.Fatal(err)
	}
	p.xs = xs
	return p
}

// expect waits for a <jingle/> with the action, skipping others.
func (p *rawPeer) expect(t *testing.T, a jingle.Action) *jingle.Jingle {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case j := <-p.seen:
			if j.Action == a {
				return j
			}
		case <-timeout:
			t.Fatalf("%s never got %s", p.jid, a)
			return nil
		}
	}
}

// send sends a raw <jingle/> in an IQ set and returns the IQ error, if any.
func (p *rawPeer) send(ctx context.Context, to jid.JID, payload string) error {
	resp, err := p.xs.SendIQElement(ctx, xml.NewDecoder(strings.NewReader(payload)), stanza.IQ{To: to, Type: stanza.SetIQ})
	if err != nil {
		return err
	}
	defer resp.Close()
	var buf bytes.Buffer
	enc := xml.NewEncoder(&buf)
	if _, err := xmlstream.Copy(enc, resp); err != nil {
		return err
	}
	enc.Flush()
	var iq struct {
		Type  string        `xml:"type,attr"`
		Error *jingle.Error `xml:"error"`
	}
	if err := xml.Unmarshal(buf.Bytes(), &iq); err != nil {
		return err
	}
	if iq.Type == "error" {
		if iq.Error == nil {
			return errors.New("error IQ without <error/>")
		}
		return iq.Error
	}
	return nil
}

// pipeConn returns the raw peer's end of the pipe transport of a content
// of a session the raw peer initiated.
func pipeConn(t *testing.T, x *jingletest.Exchange, sid, content string, initiator bool) net.Conn {
	t.Helper()
	pm := &jingletest.PipeMethod{X: x}
	creator := jingle.CreatorInitiator
	tr, err := pm.NewTransport(context.Background(), jingle.TransportParams{
		SID: sid, Content: jingle.ContentKey{Creator: creator, Name: content}, Initiator: initiator,
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := tr.(jingle.StreamTransport).Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return c
}

// cutMethod wraps the pipe method: the initiator's (or, with responder,
// the responder's) connection of the first transport it makes is closed
// after cut bytes were written.
type cutMethod struct {
	*jingletest.PipeMethod
	cut       int64
	responder bool

	mu   sync.Mutex
	used bool
}

func (m *cutMethod) NewTransport(ctx context.Context, p jingle.TransportParams) (jingle.Transport, error) {
	t, err := m.PipeMethod.NewTransport(ctx, p)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.used || p.Initiator == m.responder {
		return t, nil
	}
	m.used = true
	return &cutTransport{StreamTransport: t.(jingle.StreamTransport), cut: m.cut}, nil
}

type cutTransport struct {
	jingle.StreamTransport
	cut int64
}

func (t *cutTransport) Dial(ctx context.Context) (net.Conn, error) {
	c, err := t.StreamTransport.Dial(ctx)
	if err != nil {
		return nil, err
	}
	return &cutConn{Conn: c, left: t.cut}, nil
}

type cutConn struct {
	net.Conn
	mu   sync.Mutex
	left int64
}

func (c *cutConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if int64(len(b)) <= c.left {
		n, err := c.Conn.Write(b)
		c.left -= int64(n)
		return n, err
	}
	n, _ := c.Conn.Write(b[:c.left])
	c.left = 0
	c.Conn.Close()
	return n, io.ErrClosedPipe
}
