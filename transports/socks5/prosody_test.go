package socks5_test

import (
	"context"
	"encoding/xml"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/internal/prosodytest"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jingletest"
	"github.com/jinglekit/jinglekit/transports/socks5"
	"github.com/jinglekit/jinglekit/xmppclient"
)

// prosodySide logs a new account in to the shared Prosody and wires a
// Manager with the S5B method on it.
func prosodySide(t *testing.T, srv *prosodytest.Server, name string, set socks5.Settings) *side {
	t.Helper()
	bare, pass := srv.NewUser(t, name)
	addr := bare + "/jinglekit"
	if set.Logger == nil {
		set.Logger = newLogger(t).With("side", addr)
	}
	sd := &side{
		j:   jid.MustParse(addr),
		m:   &jingle.Manager{Logger: set.Logger},
		app: jingletest.NewApp(),
		s5b: socks5.NewMethod(set),
	}
	sd.m.RegisterApplication(sd.app)
	sd.m.RegisterTransport(sd.s5b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := xmppclient.Dial(ctx, xmppclient.Config{
		JID: sd.j, Password: pass, Server: srv.C2SAddr, CAFile: srv.CAFile,
		Handler: mux.New(stanza.NSClient, sd.m.Handler()),
		Logger:  set.Logger,
	})
	if err != nil {
		t.Fatalf("login %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	sd.xs = c.Session()
	sd.j = sd.xs.LocalAddr()
	sd.m.SetStream(sd.xs)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := sd.m.Close(ctx); err != nil {
			t.Errorf("closing the manager of %s: %v", addr, err)
		}
	})
	return sd
}

// prosodySettings: loopback candidates, proxy discovery on.
func prosodySettings() socks5.Settings {
	s := loopback()
	s.NoProxyDiscovery = false
	s.NegotiationTimeout = 30 * time.Second
	return s
}

// countingSender counts the IQs sent through it.
type countingSender struct {
	jingle.IQSender
	n atomic.Int32
}

func (c *countingSender) SendIQElement(ctx context.Context, payload xml.TokenReader, iq stanza.IQ) (xmlstream.TokenReadCloser, error) {
	c.n.Add(1)
	return c.IQSender.SendIQElement(ctx, payload, iq)
}

// TestProsodyProxyDiscovery: disco#items of the server, disco#info of each
// item and the streamhost query find mod_proxy65 with its address; the
// Method caches the result.
func TestProsodyProxyDiscovery(t *testing.T) {
	srv := prosody.Get(t)
	alice := prosodySide(t, srv, "alice", prosodySettings())
	ctx := tctx(t, 20*time.Second)
	want := socks5.Proxy{JID: jid.MustParse(srv.ProxyJID), Addr: srv.ProxyAddr}

	ps, err := socks5.DiscoverProxies(ctx, alice.xs, jid.MustParse(srv.Domain))
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || !ps[0].JID.Equal(want.JID) || ps[0].Addr != want.Addr {
		t.Fatalf("discovered %v, want [%v]", ps, want)
	}
	sh, err := socks5.QueryStreamHost(ctx, alice.xs, want.JID)
	if err != nil || !sh.JID.Equal(want.JID) || sh.Addr != want.Addr {
		t.Fatalf("streamhost %v, %v", sh, err)
	}

	cs := &countingSender{IQSender: alice.xs}
	m := socks5.NewMethod(socks5.Settings{})
	for i := range 2 {
		ps, err := m.Proxies(ctx, cs)
		if err != nil || len(ps) != 1 || ps[0].Addr != want.Addr {
			t.Fatalf("Proxies #%d: %v, %v", i, ps, err)
		}
	}
	// disco#items, disco#info of the proxy, streamhost query; nothing more
	// the second time.
	if n := cs.n.Load(); n != 3 {
		t.Errorf("%d IQs for two calls, want 3 (the second answered from the cache)", n)
	}

	// An entity that is no proxy.
	if _, err := socks5.QueryStreamHost(ctx, alice.xs, jid.MustParse(srv.Domain)); err == nil {
		t.Error("the server itself answered as a streamhost")
	}
}

// TestProsodyDirect: a session between two accounts of a real Prosody uses
// the direct candidates (proxy candidates are offered too) for 1 MiB and
// 64 MiB.
func TestProsodyDirect(t *testing.T) {
	srv := prosody.Get(t)
	alice := prosodySide(t, srv, "alice", prosodySettings())
	bob := prosodySide(t, srv, "bob", prosodySettings())
	for _, size := range []int{1 << 20, 64 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			as, bs := accepted(t, alice, bob, offer("f"))
			ca, cb := conns(t, as, bs, "f")
			if ca.RemoteAddr().String() == srv.ProxyAddr || cb.RemoteAddr().String() == srv.ProxyAddr {
				t.Fatalf("went through the proxy: %s, %s", ca.RemoteAddr(), cb.RemoteAddr())
			}
			if ca.LocalAddr().String() != cb.RemoteAddr().String() {
				t.Errorf("alice %s, bob talks to %s", ca.LocalAddr(), cb.RemoteAddr())
			}
			send(t, ca, cb, size)
			if err := as.Terminate(tctx(t, 10*time.Second), jingle.Reason{Condition: jingle.ReasonSuccess}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestProsodyProxy: with NoDirect on both sides the data goes through
// mod_proxy65, activated by the party that offered it — the initiator
// (SHA1(sid + initiator + responder)), or the responder when only it
// offers the proxy (SHA1(sid + responder + initiator)).
func TestProsodyProxy(t *testing.T) {
	srv := prosody.Get(t)
	noDirect := prosodySettings()
	noDirect.NoDirect = true
	noProxy := noDirect
	noProxy.NoProxyDiscovery = true
	alice := prosodySide(t, srv, "alice", noDirect)
	bob := prosodySide(t, srv, "bob", noDirect)
	carol := prosodySide(t, srv, "carol", noProxy)
	for _, c := range []struct {
		name       string
		a, b       *side
		size       int
		activation string
	}{
		{"initiator's proxy 1MiB", alice, bob, 1 << 20, "initiator"},
		{"initiator's proxy 64MiB", alice, bob, 64 << 20, "initiator"},
		{"responder's proxy 1MiB", carol, bob, 1 << 20, "responder"},
	} {
		t.Run(c.name, func(t *testing.T) {
			as, bs := accepted(t, c.a, c.b, offer("f"))
			ca, cb := conns(t, as, bs, "f")
			if ca.RemoteAddr().String() != srv.ProxyAddr || cb.RemoteAddr().String() != srv.ProxyAddr {
				t.Fatalf("not through the proxy: %s, %s (proxy %s)", ca.RemoteAddr(), cb.RemoteAddr(), srv.ProxyAddr)
			}
			send(t, ca, cb, c.size)
			if err := as.Terminate(tctx(t, 10*time.Second), jingle.Reason{Condition: jingle.ReasonSuccess}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestProsodyProxyReverse: data from the responder to the initiator
// through the proxy.
func TestProsodyProxyReverse(t *testing.T) {
	srv := prosody.Get(t)
	noDirect := prosodySettings()
	noDirect.NoDirect = true
	alice := prosodySide(t, srv, "alice", noDirect)
	bob := prosodySide(t, srv, "bob", noDirect)
	as, bs := accepted(t, alice, bob, offer("f"))
	ca, cb := conns(t, as, bs, "f")
	send(t, cb, ca, 1<<20)
	if _, ok := ca.(*net.TCPConn); !ok {
		t.Errorf("stream is a %T", ca)
	}
}
