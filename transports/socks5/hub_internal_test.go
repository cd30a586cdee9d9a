package socks5

import (
	"errors"
	"net"
	"testing"
	"time"
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
