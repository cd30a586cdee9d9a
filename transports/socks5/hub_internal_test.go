package socks5

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/jingle"
)

// TestStreamhostRoutes: a streamhost shared by transports delivers a
// connection to the primary claim on its DST.ADDR (the transport whose
// own candidates the hash names) before a secondary one, whatever the
// order of the claims; removing an owner's routes sends the next
// connection to the remaining claim, and with no claim left the
// connection is refused.
func TestStreamhostRoutes(t *testing.T) {
	ts := newTestStreamhost(t, 3*time.Second)
	h := DstAddr("sid", "a@example.net/a", "b@example.net/b")
	got := map[string]chan *acceptedConn{"sec": make(chan *acceptedConn, 4), "prim": make(chan *acceptedConn, 4)}
	to := func(name string) func(*acceptedConn) { return func(ac *acceptedConn) { got[name] <- ac } }
	ts.addRoute(h, "sec", false, to("sec"))
	ts.addRoute(h, "prim", true, to("prim"))
	t.Cleanup(func() {
		for _, ch := range got {
			close(ch)
			for ac := range ch {
				ac.conn.Close()
			}
		}
	})

	expect := func(want string) {
		t.Helper()
		c, err := connect(tctx(t, 5*time.Second), &net.Dialer{}, ts.Addr().String(), h)
		if want == "" {
			if err == nil {
				c.Close()
				t.Fatal("connection accepted with no route left")
			}
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("connect: %v, want ErrRefused", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		defer c.Close()
		select {
		case ac := <-got[want]:
			if ac.hash != h {
				t.Errorf("delivered with hash %q", ac.hash)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("nothing delivered to %s", want)
		}
		for name, ch := range got {
			if len(ch) > 0 {
				t.Fatalf("also delivered to %s", name)
			}
		}
	}
	expect("prim")
	if !ts.removeRoutes("prim", h) {
		t.Fatal("removeRoutes found no route of prim")
	}
	expect("sec")
	ts.removeRoutes("sec", h)
	expect("")
	if ts.removeRoutes("sec", h) {
		t.Error("removeRoutes found a route twice")
	}
}

// TestInterfaceAddrsCached: a Method lists the interface addresses once
// per interfaceAddrsTTL, not once per transport; a failed listing is not
// remembered; asking with another loopback policy lists again.
func TestInterfaceAddrsCached(t *testing.T) {
	calls := 0
	fail := false
	c := &addrCache{ttl: time.Hour, list: func(bool) ([]netip.Addr, error) {
		calls++
		if fail {
			return nil, errors.New("no netlink")
		}
		return []netip.Addr{netip.MustParseAddr("192.0.2.1")}, nil
	}}
	fail = true
	if _, err := c.get(false); err == nil {
		t.Fatal("the listing's error was lost")
	}
	fail = false
	for range 100 {
		a, err := c.get(false)
		if err != nil || len(a) != 1 || a[0] != netip.MustParseAddr("192.0.2.1") {
			t.Fatalf("get: %v, %v", a, err)
		}
		a[0] = netip.Addr{} // the caller's copy
	}
	if calls != 2 {
		t.Fatalf("%d listings for 101 transports, want 2 (the failed one, then one)", calls)
	}
	c.get(true)
	if calls != 3 {
		t.Fatalf("%d listings, want a new one with loopback allowed", calls)
	}
	c.ttl = time.Nanosecond
	time.Sleep(time.Millisecond)
	c.get(true)
	if calls != 4 {
		t.Fatalf("%d listings, want a new one once the TTL passed", calls)
	}
}

// TestNewTransportListsInterfacesOnce: the transports of a Method that
// offers the interface addresses (no Addresses configured) do not list
// the interfaces each (a netlink dump per interface).
func TestNewTransportListsInterfacesOnce(t *testing.T) {
	// A host name, not an IP address: the addresses come from the listing.
	m := NewMethod(Settings{AllowLoopback: true, ListenHost: "localhost", NoProxyDiscovery: true, Logger: slog.New(slog.DiscardHandler)})
	calls := 0
	m.addrs.list = func(bool) ([]netip.Addr, error) {
		calls++
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}
	for i := range 5 {
		tr, err := m.NewTransport(tctx(t, 5*time.Second), jingle.TransportParams{
			SID: fmt.Sprint(i), Local: jid.MustParse("a@example.net/a"), Peer: jid.MustParse("b@example.net/b"), Initiator: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
	}
	if calls != 1 {
		t.Fatalf("%d listings of the interfaces for 5 transports, want 1", calls)
	}
}
