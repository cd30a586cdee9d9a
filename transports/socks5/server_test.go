package socks5

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	gosocks5 "github.com/armon/go-socks5"
)

// testStreamhost serves SOCKS5 on loopback for the given hashes and
// collects the bytestreams handed over.
type testStreamhost struct {
	*streamhost
	got chan *acceptedConn
}

func newTestStreamhost(t *testing.T, timeout time.Duration, hashes ...string) *testStreamhost {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testStreamhost{got: make(chan *acceptedConn, 32)}
	ts.streamhost = newStreamhost(ln, hashes, timeout, slog.New(slog.DiscardHandler), func(ac *acceptedConn) { ts.got <- ac })
	t.Cleanup(func() {
		ts.Close()
		close(ts.got)
		for ac := range ts.got {
			ac.conn.Close()
		}
	})
	return ts
}

func tctx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func (ts *testStreamhost) dial(t *testing.T) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", ts.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

func (ts *testStreamhost) accepted(t *testing.T) *acceptedConn {
	t.Helper()
	select {
	case ac := <-ts.got:
		t.Cleanup(func() { ac.conn.Close() })
		return ac
	case <-time.After(5 * time.Second):
		t.Fatal("no bytestream handed over")
		return nil
	}
}

func (ts *testStreamhost) none(t *testing.T) {
	t.Helper()
	select {
	case ac := <-ts.got:
		ac.conn.Close()
		t.Fatalf("a bytestream for %q was handed over", ac.hash)
	default:
	}
}

var (
	hashA = DstAddr("sid1", "alice@example.net/a", "bob@example.net/b")
	hashB = DstAddr("sid1", "bob@example.net/b", "alice@example.net/a")
)

// TestStreamhostHandOver: a client with an expected DST.ADDR gets the reply
// XEP-0065 asks for (BND.ADDR = DST.ADDR), and the raw TCP connection is
// handed over: data flows both ways and half-close works.
func TestStreamhostHandOver(t *testing.T) {
	ts := newTestStreamhost(t, 5*time.Second, hashA, hashB)
	for _, h := range []string{hashA, hashB} {
		c := ts.dial(t)
		if _, err := c.Write([]byte{5, 1, 0}); err != nil {
			t.Fatal(err)
		}
		sel := make([]byte, 2)
		if _, err := io.ReadFull(c, sel); err != nil || !bytes.Equal(sel, []byte{5, 0}) {
			t.Fatalf("method selection %v, %v", sel, err)
		}
		req := append([]byte{5, 1, 0, 3, byte(len(h))}, h...)
		req = append(req, 0, 0)
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		reply := make([]byte, len(req))
		if _, err := io.ReadFull(c, reply); err != nil {
			t.Fatal(err)
		}
		want := append([]byte{5, 0}, req[2:]...)
		if !bytes.Equal(reply, want) {
			t.Fatalf("reply %q, want %q", reply, want)
		}
		ac := ts.accepted(t)
		if ac.hash != h {
			t.Errorf("handed over for %q, want %q", ac.hash, h)
		}
		tc, ok := ac.conn.(*net.TCPConn)
		if !ok {
			t.Fatalf("bytestream is a %T, want the raw *net.TCPConn", ac.conn)
		}
		if tc.RemoteAddr().String() != c.LocalAddr().String() {
			t.Errorf("bytestream from %s, client is %s", tc.RemoteAddr(), c.LocalAddr())
		}
		// Client to server, then half-close; the server still answers.
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		if err := c.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tc)
		if err != nil || string(b) != "ping" {
			t.Fatalf("server read %q, %v", b, err)
		}
		if _, err := tc.Write([]byte("pong")); err != nil {
			t.Fatal(err)
		}
		tc.CloseWrite()
		b, err = io.ReadAll(c)
		if err != nil || string(b) != "pong" {
			t.Fatalf("client read %q, %v", b, err)
		}
	}
}

// TestStreamhostPipelined: data the client sends right behind its CONNECT
// request, before the reply, is not lost.
func TestStreamhostPipelined(t *testing.T) {
	ts := newTestStreamhost(t, 5*time.Second, hashA)
	c := ts.dial(t)
	msg := append([]byte{5, 1, 0, 5, 1, 0, 3, 40}, hashA...)
	msg = append(msg, 0, 0)
	msg = append(msg, "early data"...)
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	ac := ts.accepted(t)
	c.CloseWrite()
	b, err := io.ReadAll(ac.conn)
	if err != nil || string(b) != "early data" {
		t.Fatalf("read %q, %v", b, err)
	}
}

// TestHandshakeClient checks the package's client against the streamhost.
func TestHandshakeClient(t *testing.T) {
	ts := newTestStreamhost(t, 5*time.Second, hashA)
	c := ts.dial(t)
	if err := Handshake(tctx(t, 5*time.Second), c, hashA); err != nil {
		t.Fatal(err)
	}
	ts.accepted(t)
	c2 := ts.dial(t)
	err := Handshake(tctx(t, 5*time.Second), c2, hashB)
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("wrong DST.ADDR: %v, want ErrRefused", err)
	}
	if err := Handshake(context.Background(), c2, string(make([]byte, 256))); err == nil {
		t.Fatal("a DST.ADDR of 256 bytes was sent")
	}
}

// TestStreamhostHostile: every request but a CONNECT to an expected
// DST.ADDR given as a domain name is refused and closed, never handed
// over, while a correct client at the same time completes.
func TestStreamhostHostile(t *testing.T) {
	ts := newTestStreamhost(t, 500*time.Millisecond, hashA)
	connect := func(atyp byte, addr []byte) []byte {
		b := []byte{5, 1, 0, 5, 1, 0, atyp}
		if atyp == 3 {
			b = append(b, byte(len(addr)))
		}
		b = append(b, addr...)
		return append(b, 0, 0)
	}
	lnAddr := ts.Addr().(*net.TCPAddr)
	cases := []struct {
		name string
		send []byte
	}{
		{"wrong DST.ADDR", connect(3, []byte(hashB))},
		{"DST.ADDR prefix", connect(3, []byte(hashA[:39]))},
		{"DST.ADDR upper case", connect(3, bytes.ToUpper([]byte(hashA)))},
		{"empty DST.ADDR", connect(3, nil)},
		{"IPv4 of the streamhost itself", connect(1, lnAddr.IP.To4())},
		{"IPv6 loopback", connect(4, net.IPv6loopback)},
		{"BIND", append([]byte{5, 1, 0, 5, 2, 0, 3, 40}, append([]byte(hashA), 0, 0)...)},
		{"UDP ASSOCIATE", append([]byte{5, 1, 0, 5, 3, 0, 3, 40}, append([]byte(hashA), 0, 0)...)},
		{"unknown ATYP", append([]byte{5, 1, 0, 5, 1, 0, 9}, 1, 2, 3, 4, 0, 0)},
		{"SOCKS4", []byte{4, 1, 0, 80, 127, 0, 0, 1, 0}},
		{"HTTP", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
		{"garbage", []byte{0xff, 0xfe, 0xfd, 0, 1, 2, 3}},
		{"only user/password auth", []byte{5, 1, 2}},
		{"no methods", []byte{5, 0}},
		{"truncated greeting", []byte{5, 3, 0}},
		{"silence", nil},
	}
	// Room for every hostile client and the good one: with the default
	// limit (16, as many as the cases) the good client was refused
	// whenever the hostile ones were all still in handshake.
	// TestStreamhostLimits tests the limit.
	ts.setMaxConn(len(cases) + 1)
	var wg sync.WaitGroup
	for _, c := range cases {
		wg.Add(1)
		conn := ts.dial(t)
		go func() {
			defer wg.Done()
			if len(c.send) > 0 {
				conn.Write(c.send)
			}
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			// The streamhost may answer (method selection, an error
			// reply), but it must end the connection, without a success
			// reply to a CONNECT.
			b, err := io.ReadAll(conn)
			if isTimeout(err) {
				t.Errorf("%s: not closed (read %q)", c.name, b)
			}
			if rest, ok := bytes.CutPrefix(b, []byte{5, 0}); ok && len(rest) >= 2 && rest[1] == 0 {
				t.Errorf("%s: success reply in %q", c.name, b)
			}
		}()
	}
	// Meanwhile, the right client completes.
	good := ts.dial(t)
	if err := Handshake(tctx(t, 5*time.Second), good, hashA); err != nil {
		t.Fatal(err)
	}
	ac := ts.accepted(t)
	if ac.hash != hashA {
		t.Fatalf("handed over %q", ac.hash)
	}
	wg.Wait()
	ts.none(t)
}

// isTimeout reports whether a read ended by its deadline, rather than
// because the streamhost closed the connection (EOF or reset).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestStreamhostLimits: connections beyond the handshake limit are closed
// at once, and Close ends the handshakes in progress.
func TestStreamhostLimits(t *testing.T) {
	ts := newTestStreamhost(t, time.Minute, hashA)
	var conns []*net.TCPConn
	for range ts.maxConn {
		c := ts.dial(t)
		c.Write([]byte{5}) // start a greeting and stall
		conns = append(conns, c)
	}
	// Wait until the streamhost has taken them all.
	deadline := time.Now().Add(5 * time.Second)
	for {
		ts.mu.Lock()
		n := len(ts.conns)
		ts.mu.Unlock()
		if n == ts.maxConn {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections in handshake, want %d", n, ts.maxConn)
		}
		time.Sleep(10 * time.Millisecond)
	}
	extra := ts.dial(t)
	extra.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := extra.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("connection beyond the limit: read %d, %v", n, err)
	}
	start := time.Now()
	if err := ts.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadAll(c); isTimeout(err) {
			t.Error("a stalled connection was not closed by Close")
		}
	}
	ts.none(t)
}

// TestStreamhostHandshakeTimeout: a client that stalls is closed after
// the handshake timeout.
func TestStreamhostHandshakeTimeout(t *testing.T) {
	ts := newTestStreamhost(t, 200*time.Millisecond, hashA)
	c := ts.dial(t)
	c.Write([]byte{5, 1, 0})
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if isTimeout(err) {
		t.Fatalf("not closed after the handshake timeout (read %q)", b)
	}
	if !bytes.Equal(b, []byte{5, 0}) {
		t.Errorf("read %q, want only the method selection", b)
	}
	ts.none(t)
}

// TestGoSocks5Issue50 documents why the streamhost's null target reports a
// *net.TCPAddr: stock go-socks5 asserts that type on the connection its
// Dial returns and panics otherwise (upstream issue #50). The streamhost
// also recovers from a panic in ServeConn.
func TestGoSocks5Issue50(t *testing.T) {
	srv, err := gosocks5.New(&gosocks5.Config{
		Resolver: resolverFunc(func(ctx context.Context, _ string) (context.Context, net.IP, error) { return ctx, net.IPv4zero, nil }),
		Logger:   log.New(io.Discard, "", 0),
		Dial: func(context.Context, string, string) (net.Conn, error) {
			a, _ := net.Pipe() // LocalAddr is a pipeAddr
			return a, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	c, s := net.Pipe()
	defer c.Close()
	go func() {
		c.Write(append(append([]byte{5, 1, 0, 5, 1, 0, 3, 40}, hashA...), 0, 0))
		io.Copy(io.Discard, c)
	}()
	panicked := func() (p bool) {
		defer func() { p = recover() != nil }()
		srv.ServeConn(s)
		return false
	}()
	s.Close()
	if !panicked {
		t.Error("go-socks5 no longer panics on a non-TCP target: the workaround may go")
	}
}

type resolverFunc func(ctx context.Context, name string) (context.Context, net.IP, error)

func (f resolverFunc) Resolve(ctx context.Context, name string) (context.Context, net.IP, error) {
	return f(ctx, name)
}
