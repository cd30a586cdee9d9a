package ibb_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/xml"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jingletest"
	"github.com/jinglekit/jinglekit/transports/ibb"
	"github.com/jinglekit/jinglekit/xmpptest"
)

const (
	mallory = "mallory@example.net/m"
	eve     = "eve@example.net/e"
)

func tctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// peer is one party of a test: an XMPP session whose mux serves an IBB
// Method, plus every IQ set and message other handlers did not take.
type peer struct {
	addr jid.JID
	xs   *xmpp.Session
	m    *ibb.Method
	rec  *recorder
}

// recorder keeps the IBB stanzas a raw peer (one without a Method)
// receives, and answers IQs with a result.
type recorder struct {
	mu   sync.Mutex
	got  []string // "iq open sid", "iq close sid", "message data sid"
	wake chan struct{}
}

func newRecorder() *recorder { return &recorder{wake: make(chan struct{}, 1)} }

func (r *recorder) add(s string) {
	r.mu.Lock()
	r.got = append(r.got, s)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

// waitFor waits until the recorder holds want.
func (r *recorder) waitFor(t testing.TB, want string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		for _, g := range r.list() {
			if g == want {
				return
			}
		}
		select {
		case <-r.wake:
		case <-deadline:
			t.Fatalf("never received %q; got %q", want, r.list())
		}
	}
}

func (r *recorder) HandleIQ(iq stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	r.add("iq " + start.Name.Local + " " + attr(start.Attr, "sid"))
	_, err := xmlstream.Copy(t, stanza.IQ{ID: iq.ID, To: iq.From, Type: stanza.ResultIQ}.Wrap(nil))
	return err
}

func attr(as []xml.Attr, local string) string {
	for _, a := range as {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// newPeer connects addr to n. With m nil it is a raw peer whose IBB IQs
// are recorded and acknowledged.
func newPeer(t testing.TB, n *xmpptest.Network, addr string, m *ibb.Method) *peer {
	t.Helper()
	p := &peer{addr: jid.MustParse(addr), m: m, rec: newRecorder()}
	var opts []mux.Option
	if m != nil {
		opts = append(opts, m.Handler())
	} else {
		for _, name := range []xml.Name{ibb.OpenName, ibb.DataName, ibb.CloseName} {
			opts = append(opts, mux.IQ(stanza.SetIQ, name, p.rec))
		}
	}
	p.xs = jingletest.Join(t, n, addr, mux.New(stanza.NSClient, opts...), nil)
	return p
}

// offerer makes a's transport towards b (a proposes: a opens).
func transportFor(t testing.TB, a *peer, b jid.JID, offer *jingle.Element) jingle.StreamTransport {
	t.Helper()
	tr, err := a.m.NewTransport(tctx(t), jingle.TransportParams{
		SID: "jingle-sid", Content: jingle.ContentKey{Creator: jingle.CreatorInitiator, Name: "c"},
		Local: a.addr, Peer: b, Initiator: offer == nil, Offer: offer, Stream: a.xs,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr.(jingle.StreamTransport)
}

// connect negotiates an IBB transport from a to b without Jingle (a offers,
// b answers, a opens) and returns both ends.
func connect(t testing.TB, a, b *peer) (ca, cb *ibb.Conn) {
	t.Helper()
	_, _, ca, cb = connectTransports(t, a, b)
	return ca, cb
}

// connectTransports is connect that also returns a's and b's transports.
func connectTransports(t testing.TB, a, b *peer) (ta, tb jingle.StreamTransport, ca, cb *ibb.Conn) {
	t.Helper()
	ta = transportFor(t, a, b.addr, nil)
	offer := ta.Local()
	tb = transportFor(t, b, a.addr, &offer)
	ctx := tctx(t)
	if err := ta.SetRemote(ctx, tb.Local()); err != nil {
		t.Fatal(err)
	}
	type res struct {
		c   *ibb.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := tb.Dial(ctx)
		if err != nil {
			ch <- res{nil, err}
			return
		}
		ch <- res{c.(*ibb.Conn), nil}
	}()
	c, err := ta.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	return ta, tb, c.(*ibb.Conn), r.c
}

// pair returns a network with alice and bob, each with the given Method.
func pair(t testing.TB, ma, mb *ibb.Method) (*xmpptest.Network, *peer, *peer) {
	t.Helper()
	n := xmpptest.NewNetwork(t)
	return n, newPeer(t, n, xmpptest.Alice, ma), newPeer(t, n, xmpptest.Bob, mb)
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// transfer writes data on w and closes it, reads r to EOF, and checks
// that what arrived is byte-identical (SHA-256).
func transfer(t testing.TB, w, r io.ReadWriteCloser, data []byte) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		_, err := io.Copy(w, bytes.NewReader(data))
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		errc <- err
	}()
	h := sha256.New()
	n, rerr := io.Copy(h, r)
	werr := <-errc
	if rerr != nil {
		t.Fatalf("reading: %v after %d bytes", rerr, n)
	}
	if werr != nil {
		t.Fatalf("writing: %v", werr)
	}
	want := sha256.Sum256(data)
	if n != int64(len(data)) || !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatalf("received %d bytes with sha-256 %x, sent %d with %x", n, h.Sum(nil), len(data), want)
	}
}

// rawResult is the answer to an IQ sent by hand.
type rawResult struct {
	Type string        `xml:"type,attr"`
	Err  *stanza.Error `xml:"error"`
}

// sendRaw sends payload (one element, as XML text) in an IQ set from p to
// to and returns the answer's error condition ("" for a result).
func sendRaw(t testing.TB, p *peer, to jid.JID, payload string) stanza.Condition {
	t.Helper()
	var el jingle.Element
	if err := xml.Unmarshal([]byte(payload), &el); err != nil {
		t.Fatalf("bad test payload %s: %v", payload, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := p.xs.SendIQElement(ctx, el.TokenReader(), stanza.IQ{To: to, Type: stanza.SetIQ})
	if err != nil {
		t.Fatalf("sending %s: %v", payload, err)
	}
	defer resp.Close()
	var r rawResult
	if err := xml.NewTokenDecoder(resp).Decode(&r); err != nil {
		t.Fatalf("reading answer to %s: %v", payload, err)
	}
	switch {
	case r.Type == "result":
		return ""
	case r.Type == "error" && r.Err != nil:
		return r.Err.Condition
	}
	t.Fatalf("answer to %s: type %q", payload, r.Type)
	return ""
}

// readN reads exactly n bytes from c within a few seconds.
func readN(t testing.TB, c io.Reader, n int) []byte {
	t.Helper()
	if d, ok := c.(interface{ SetReadDeadline(time.Time) error }); ok {
		d.SetReadDeadline(time.Now().Add(10 * time.Second))
		defer d.SetReadDeadline(time.Time{})
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("reading %d bytes: %v", n, err)
	}
	return buf
}

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}
