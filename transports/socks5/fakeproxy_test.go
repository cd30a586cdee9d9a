package socks5_test

import (
	"encoding/xml"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/transports/socks5"
	"github.com/jinglekit/jinglekit/xmpptest"
)

// fakeProxy is a XEP-0065 proxy on the in-memory network: an XMPP entity
// answering the streamhost query and activation, and a SOCKS5 relay on
// loopback that pairs the two connections of one DST.ADDR and relays
// once activated, as Prosody's mod_proxy65 does.
type fakeProxy struct {
	j            jid.JID
	ln           net.Listener
	failActivate bool

	mu        sync.Mutex
	streams   map[string][]net.Conn
	active    []net.Conn
	activated int
	relayed   int64
	closed    bool
	wg        sync.WaitGroup
}

const fakeProxyJID = "proxy@example.net/relay"

func newFakeProxy(t testing.TB, n *xmpptest.Network, failActivate bool) *fakeProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &fakeProxy{j: jid.MustParse(fakeProxyJID), ln: ln, failActivate: failActivate, streams: map[string][]net.Conn{}}
	name := xml.Name{Space: socks5.NSBytestreams, Local: "query"}
	h := mux.New(stanza.NSClient,
		mux.IQFunc(stanza.GetIQ, name, p.handleGet),
		mux.IQFunc(stanza.SetIQ, name, p.handleSet))
	if _, err := n.Client(tctx(t, 10*time.Second), p.j, h); err != nil {
		ln.Close()
		t.Fatal(err)
	}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// proxy returns the proxy as configured in Settings.
func (p *fakeProxy) proxy() socks5.Proxy {
	return socks5.Proxy{JID: p.j, Addr: p.ln.Addr().String()}
}

func (p *fakeProxy) activations() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.activated
}

func (p *fakeProxy) bytesRelayed() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.relayed
}

func (p *fakeProxy) close() {
	p.mu.Lock()
	p.closed = true
	for _, cs := range p.streams {
		for _, c := range cs {
			c.Close()
		}
	}
	for _, c := range p.active {
		c.Close()
	}
	p.mu.Unlock()
	p.ln.Close()
	p.wg.Wait()
}

func (p *fakeProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.handshake(c)
	}
}

// handshake reads the greeting and CONNECT and files the connection under
// its DST.ADDR.
func (p *fakeProxy) handshake(c net.Conn) {
	defer p.wg.Done()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 257)
	if _, err := io.ReadFull(c, b[:2]); err != nil || b[0] != 5 {
		c.Close()
		return
	}
	if _, err := io.ReadFull(c, b[:b[1]]); err != nil {
		c.Close()
		return
	}
	c.Write([]byte{5, 0})
	if _, err := io.ReadFull(c, b[:5]); err != nil || b[1] != 1 || b[3] != 3 {
		c.Close()
		return
	}
	n := int(b[4])
	if _, err := io.ReadFull(c, b[:n+2]); err != nil {
		c.Close()
		return
	}
	hash := string(b[:n])
	c.SetDeadline(time.Time{})
	// Filed before the reply: once a client has its reply it may have the
	// stream activated, which must find it.
	p.mu.Lock()
	if p.closed || len(p.streams[hash]) >= 2 {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.streams[hash] = append(p.streams[hash], c)
	p.mu.Unlock()
	c.Write(append(append([]byte{5, 0, 0, 3, byte(n)}, hash...), 0, 0))
}

func (p *fakeProxy) handleGet(iq stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	host, port, _ := net.SplitHostPort(p.ln.Addr().String())
	el := jingle.MustElement(socks5.Query{StreamHosts: []socks5.StreamHost{{JID: p.j.String(), Host: host, Port: port}}})
	_, err := xmlstream.Copy(t, iq.Result(el.TokenReader()))
	return err
}

// handleSet activates: SHA1(sid + sender + target) must name two
// connections.
func (p *fakeProxy) handleSet(iq stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	var q socks5.Query
	if err := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), t)).Decode(&q); err != nil || q.Activate == nil {
		_, err := xmlstream.Copy(t, iq.Error(stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest}))
		return err
	}
	hash := socks5.DstAddr(q.SID, iq.From.String(), q.Activate.JID)
	p.mu.Lock()
	cs := p.streams[hash]
	ok := len(cs) == 2 && !p.failActivate
	if ok {
		p.activated++
		delete(p.streams, hash)
		p.active = append(p.active, cs...)
		p.wg.Add(1)
		go p.relay(cs[0], cs[1])
	}
	p.mu.Unlock()
	if !ok {
		_, err := xmlstream.Copy(t, iq.Error(stanza.Error{Type: stanza.Cancel, Condition: stanza.NotAllowed}))
		return err
	}
	_, err := xmlstream.Copy(t, iq.Result(nil))
	return err
}

// relay copies both ways, passing half-closes on, until both directions
// ended.
func (p *fakeProxy) relay(a, b net.Conn) {
	defer p.wg.Done()
	var wg sync.WaitGroup
	one := func(dst, src net.Conn) {
		defer wg.Done()
		n, _ := io.Copy(dst, src)
		p.mu.Lock()
		p.relayed += n
		p.mu.Unlock()
		dst.(*net.TCPConn).CloseWrite()
	}
	wg.Add(2)
	go one(a, b)
	go one(b, a)
	wg.Wait()
	a.Close()
	b.Close()
}
