package linklocal_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stream"

	"github.com/jinglekit/jinglekit/linklocal"
	"github.com/jinglekit/jinglekit/xmppclient"
)

const (
	streamNS = `xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'`
	discoGet = `<iq type='get' id='q1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`
)

// rawConn is a hand-written peer.
type rawConn struct {
	t testing.TB
	net.Conn
	r *bufio.Reader
}

// dialFrom connects to addr from the local IP src ("" for any).
func dialFrom(t testing.TB, addr, src string) *rawConn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, Conn: c, r: bufio.NewReader(c)}
}

func (c *rawConn) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		c.t.Fatal(err)
	}
}

// readUntil reads until the text contains want (or the connection ends).
func (c *rawConn) readUntil(want string) string {
	var b strings.Builder
	buf := make([]byte, 4096)
	for !strings.Contains(b.String(), want) {
		n, err := c.r.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String()
}

// readAll reads until the peer closes the connection.
func (c *rawConn) readAll() string {
	b, _ := io.ReadAll(c.r)
	return string(b)
}

func header(from, to string) string {
	s := "<?xml version='1.0'?><stream:stream " + streamNS + " version='1.0'"
	if from != "" {
		s += " from='" + from + "'"
	}
	if to != "" {
		s += " to='" + to + "'"
	}
	return s + ">"
}

// TestNotAStreamHeader: a connection whose first element is not a stream
// header is answered with a stream header, the stream error and the
// closing tag, and closed; nothing reaches the handler.
func TestNotAStreamHeader(t *testing.T) {
	b := newParty(t, partyOpts{name: "bob@forza", ftDir: t.TempDir(), accept: true})
	for _, tc := range []struct{ name, in, cond string }{
		{"iq first", discoGet, "invalid-namespace"},
		{"message first", `<message to='bob@forza'><body>hi</body></message>`, "invalid-namespace"},
		{"http", "GET / HTTP/1.1\r\nHost: bob\r\n\r\n", "not-well-formed"},
		{"comment", "<!-- x -->" + header("alice@pronto", "bob@forza"), "restricted-xml"},
		{"server stream", strings.Replace(header("alice@pronto", "bob@forza"), "jabber:client", "jabber:server", 1), "invalid-namespace"},
		{"version 2", "<stream:stream " + streamNS + " version='2.0' from='alice@pronto' to='bob@forza'>", "unsupported-version"},
		{"binary", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "not-well-formed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialFrom(t, b.hostport(), "")
			c.send(tc.in)
			got := c.readAll()
			if !strings.Contains(got, "<stream:stream") || !strings.Contains(got, "<"+tc.cond) || !strings.HasSuffix(got, "</stream:stream>") {
				t.Fatalf("answer %q, want a header, <%s/> and the closing tag", got, tc.cond)
			}
		})
	}
	if ps := b.node.Peers(); len(ps) != 0 {
		t.Fatalf("peers after hostile connections: %+v", ps)
	}
	if entries, _ := os.ReadDir(b.ft.Dir); len(entries) != 0 {
		t.Fatalf("files written: %v", entries)
	}
}

// TestHeaderTooLarge: a peer cannot make the node buffer an unbounded
// stream header.
func TestHeaderTooLarge(t *testing.T) {
	b := newParty(t, partyOpts{name: "bob@forza", accept: true, limits: linklocal.Limits{MaxHeaderBytes: 4096}})
	c := dialFrom(t, b.hostport(), "")
	go func() {
		_, _ = io.WriteString(c, "<stream:stream "+streamNS+" from='"+strings.Repeat("a", 64<<10))
	}()
	start := time.Now()
	_ = c.readAll() // ends when the node closes the connection
	if time.Since(start) > 5*time.Second {
		t.Fatal("the node kept the connection open")
	}
	if ps := b.node.Peers(); len(ps) != 0 {
		t.Fatalf("peers: %+v", ps)
	}
}

// TestClaimedName checks XEP-0174 §7: a stream must come from an address
// of the name it claims.
func TestClaimedName(t *testing.T) {
	strict := newParty(t, partyOpts{name: "bob@forza"})
	open := newParty(t, partyOpts{name: "carol@forza", accept: true})
	for _, p := range []*party{strict, open} {
		if _, err := p.node.AddPeer(tctx(t), "alice@pronto", "127.0.0.1:1"); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name       string
		p          *party
		src, from  string
		to         string
		ok         bool
		cond       string
		acceptedAs string
	}{
		{"known name, its address", strict, "127.0.0.1", "alice@pronto", "bob@forza", true, "", "alice@pronto"},
		{"known name, another address", strict, "127.0.0.2", "alice@pronto", "bob@forza", false, "invalid-from", ""},
		{"known name, another address, open node", open, "127.0.0.2", "alice@pronto", "carol@forza", false, "invalid-from", ""},
		{"unadvertised name", strict, "127.0.0.2", "mallory@evil", "bob@forza", false, "invalid-from", ""},
		{"unadvertised name, open node", open, "127.0.0.3", "mallory@evil", "carol@forza", true, "", "mallory@evil"},
		{"the node's own name", open, "127.0.0.4", "carol@forza", "carol@forza", false, "invalid-from", ""},
		{"not a link-local name", open, "127.0.0.4", "mallory", "carol@forza", false, "invalid-from", ""},
		{"addressed to someone else", strict, "127.0.0.1", "alice@pronto", "dave@forza", false, "host-unknown", ""},
		{"no from, one peer at the address", strict, "127.0.0.1", "", "bob@forza", true, "", "alice@pronto"},
		{"no from, nobody at the address", strict, "127.0.0.2", "", "bob@forza", false, "invalid-from", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialFrom(t, tc.p.hostport(), tc.src)
			c.send(header(tc.from, tc.to))
			if !tc.ok {
				got := c.readAll()
				if !strings.Contains(got, "<"+tc.cond) || !strings.HasSuffix(got, "</stream:stream>") {
					t.Fatalf("answer %q, want <%s/>", got, tc.cond)
				}
				return
			}
			got := c.readUntil("features>")
			if !strings.Contains(got, "to='"+tc.acceptedAs+"'") || strings.Contains(got, "stream:error") || !strings.Contains(got, xmppclient.NSDiscoInfo) {
				t.Fatalf("answer %q, want a stream to %s with disco#info features", got, tc.acceptedAs)
			}
			// The open stream answers disco#info for this node.
			c.send(discoGet)
			if got := c.readUntil("</iq>"); !strings.Contains(got, "type='result'") && !strings.Contains(got, `type="result"`) {
				t.Fatalf("disco answer %q", got)
			}
			c.send("</stream:stream>")
			if got := c.readAll(); !strings.HasSuffix(got, "</stream:stream>") {
				t.Fatalf("close answered %q", got)
			}
		})
	}
}

// TestSpoofedStanza: on an accepted stream, a stanza claiming to come
// from someone else ends the stream (invalid-from) before any handler sees
// it; a stanza for someone else is not handed on.
func TestSpoofedStanza(t *testing.T) {
	dir := t.TempDir()
	b := newParty(t, partyOpts{name: "bob@forza", ftDir: dir})
	if _, err := b.node.AddPeer(tctx(t), "alice@pronto", "127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	c := dialFrom(t, b.hostport(), "127.0.0.1")
	c.send(header("alice@pronto", "bob@forza"))
	c.readUntil("features>")

	// For someone else: mellium answers the unhandled IQ itself.
	c.send(`<iq type='get' id='q2' to='dave@forza'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`)
	if got := c.readUntil("</iq>"); !strings.Contains(got, "service-unavailable") || strings.Contains(got, "<identity") {
		t.Fatalf("IQ for someone else answered %q", got)
	}
	// A file offer claiming to come from carol.
	c.send(`<iq type='set' id='j1' from='carol@elsewhere' to='bob@forza'><jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' initiator='carol@elsewhere' sid='s1'>` +
		`<content creator='initiator' name='f'><description xmlns='urn:xmpp:jingle:apps:file-transfer:5'><file><name>evil.txt</name><size>3</size></file></description>` +
		`<transport xmlns='urn:xmpp:jingle:transports:ibb:1' block-size='4096' sid='ibb1'/></content></jingle></iq>`)
	got := c.readAll()
	if !strings.Contains(got, "<invalid-from") || strings.Contains(got, "id='j1'") || strings.Contains(got, `id="j1"`) {
		t.Fatalf("spoofed stanza answered %q, want an invalid-from stream error and no IQ answer", got)
	}
	select {
	case s := <-b.app.Sessions:
		t.Fatalf("a session reached the application: %v", s.SID())
	default:
	}
	if n := len(b.m.Sessions()); n != 0 {
		t.Fatalf("%d jingle sessions", n)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("files written: %v", entries)
	}
}

// fakePeer listens and answers whoever connects with reply, recording how
// many connected.
func fakePeer(t *testing.T, reply string) (addr string, conns <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{}, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			ch <- struct{}{}
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			if reply != "" {
				_, _ = io.WriteString(c, reply)
			}
			// Hold the connection until the node gives up.
			_, _ = io.Copy(io.Discard, c)
			_ = c.Close()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); <-done })
	return ln.Addr().String(), ch
}

// TestDialHostilePeer: the peer dialled must answer as itself, without
// requiring TLS, with a stream; anything else fails the dial with a clear
// error and leaves no stream.
func TestDialHostilePeer(t *testing.T) {
	a := newParty(t, partyOpts{name: "alice@pronto", limits: linklocal.Limits{NegotiateTimeout: time.Second}})
	features := "<stream:features/>"
	for _, tc := range []struct {
		name, reply string
		want        error
	}{
		{"answers as someone else", header("mallory@evil", "alice@pronto") + features, linklocal.ErrWrongPeer},
		{"answers to someone else", header("bob@forza", "carol@x") + features, linklocal.ErrWrongPeer},
		{"answers with our name", header("alice@pronto", "alice@pronto") + features, linklocal.ErrWrongPeer},
		{"requires TLS", header("bob@forza", "alice@pronto") + "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>", linklocal.ErrTLSRequired},
		{"refuses", header("bob@forza", "alice@pronto") + "<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>", stream.NotAuthorized},
		{"not XMPP", "SSH-2.0-OpenSSH_9.6\r\n", linklocal.ErrNotStream},
		{"silent", "", context.DeadlineExceeded},
		{"half a header", "<stream:stream " + streamNS, context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, conns := fakePeer(t, tc.reply)
			if _, err := a.node.AddPeer(tctx(t), "bob@forza", addr); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err := a.node.Disco(tctx(t), jid.MustParse("bob@forza"))
			if !errors.Is(err, tc.want) {
				t.Fatalf("dial error %v, want %v", err, tc.want)
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("took %v", time.Since(start))
			}
			select {
			case <-conns:
			default:
				t.Fatal("the fake peer saw no connection")
			}
		})
	}
}
