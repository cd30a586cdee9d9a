package socks5

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	gosocks5 "github.com/armon/go-socks5"
)

// The local streamhost serves the SOCKS5 handshake with
// github.com/armon/go-socks5 and then takes the client's connection back:
// go-socks5 is a CONNECT proxy that would dial a target and copy between
// the two connections in its own loop, one extra copy (and, through a
// net.Pipe, a synchronous hand-off per write and no half-close) on every
// byte. Instead:
//
//   - Each accepted connection is wrapped in a serverConn before ServeConn
//     sees it. The Authenticator (no authentication) learns which
//     serverConn and bufio.Reader go-socks5 uses and ties them to the
//     AuthContext it returns.
//   - The NameResolver resolves only the expected DST.ADDR hashes (to a
//     dummy address, without DNS); the RuleSet allows only CONNECT to
//     them, and passes the serverConn on in the context.
//   - The Dial hook "connects" to nothing: it takes what go-socks5's
//     bufio.Reader holds beyond the request, marks the serverConn as
//     hijacked and returns a null target whose LocalAddr is a
//     *net.TCPAddr (go-socks5 asserts that type and panics otherwise,
//     upstream issue #50).
//   - go-socks5 then writes its success reply. The serverConn replaces it
//     with the reply XEP-0065 asks for (BND.ADDR = DST.ADDR as a domain
//     name; go-socks5 can only send the target's IP), and hands the raw
//     *net.TCPConn over to the transport.
//   - From then on the serverConn reads EOF, ignores Close, and the null
//     target reads EOF too: go-socks5's two copy loops end at once without
//     having moved a byte, and the transport owns a plain TCP connection
//     with CloseWrite.
//
// BenchmarkS5BDirect (this design) against BenchmarkRawTCP,
// BenchmarkGoSocks5Pipe and BenchmarkGoSocks5TCP (stock go-socks5 copying
// into a net.Pipe or to a TCP target) measures the difference.

// acceptedConn is a bytestream a peer opened on the local streamhost.
type acceptedConn struct {
	conn  net.Conn // *net.TCPConn, or *prefixConn when data came early
	hash  string
	local net.Addr
}

// route is a transport's claim on a DST.ADDR of the streamhost: the
// connections that ask for it are delivered to that transport.
type route struct {
	owner any // the transport; nil for a streamhost's fixed DST.ADDRs
	// primary marks the DST.ADDR of the owner's own candidates; the
	// other one (the peer's, accepted from peers that swap the JIDs) is
	// secondary, and loses to a primary claim on the same hash (two
	// sessions of one Method, both ends of the same stream).
	primary bool
	deliver func(*acceptedConn)
}

// streamhost is a local SOCKS5 server: the listener of a Method's direct
// candidates, shared by its transports (see hub), or, in tests, one with
// fixed DST.ADDRs.
type streamhost struct {
	ln      net.Listener
	srv     *gosocks5.Server
	timeout time.Duration // for the SOCKS5 handshake of each connection
	log     *slog.Logger

	mu      sync.Mutex
	routes  map[string][]route       // DST.ADDR → claims, in order of arrival
	maxConn int                      // connections in handshake at once
	conns   map[*serverConn]struct{} // not yet handed over
	byAuth  map[*gosocks5.AuthContext]*serverConn
	closed  bool
	wg      sync.WaitGroup
}

type ctxKey struct{}

// newStreamhost serves SOCKS5 on ln for the given DST.ADDRs (more can be
// routed with addRoute); deliver is called (from a serving goroutine)
// with each connection that completed the handshake for one of them.
// Close stops it.
func newStreamhost(ln net.Listener, hashes []string, timeout time.Duration, log *slog.Logger, deliver func(*acceptedConn)) *streamhost {
	sh := &streamhost{
		ln: ln, timeout: timeout, maxConn: handshakesPerTransport, log: log,
		routes: map[string][]route{},
		conns:  map[*serverConn]struct{}{},
		byAuth: map[*gosocks5.AuthContext]*serverConn{},
	}
	for _, h := range hashes {
		sh.routes[h] = []route{{primary: true, deliver: deliver}}
	}
	// gosocks5.New fails only when given nothing it can default.
	sh.srv, _ = gosocks5.New(&gosocks5.Config{
		AuthMethods: []gosocks5.Authenticator{noAuth{sh}},
		Resolver:    resolver{sh},
		Rules:       rules{sh},
		Logger:      slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		Dial:        sh.dial,
	})
	sh.wg.Add(1)
	go sh.accept()
	return sh
}

// addRoute delivers the connections asking for hash to deliver, on
// behalf of owner.
func (sh *streamhost) addRoute(hash string, owner any, primary bool, deliver func(*acceptedConn)) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.routes[hash] = append(sh.routes[hash], route{owner: owner, primary: primary, deliver: deliver})
}

// removeRoutes drops owner's routes of the given DST.ADDRs and reports
// whether it had any. Connections already past the CONNECT request still
// reach owner's deliver, which refuses them once owner is settled.
func (sh *streamhost) removeRoutes(owner any, hashes ...string) bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	found := false
	for _, h := range hashes {
		rs := sh.routes[h]
		kept := slices.DeleteFunc(rs, func(r route) bool { return r.owner == owner })
		switch {
		case len(kept) == len(rs):
			continue
		case len(kept) == 0:
			delete(sh.routes, h)
		default:
			sh.routes[h] = kept
		}
		found = true
	}
	return found
}

// lookup returns where a connection asking for hash goes: the first
// primary claim, else the first claim; nil when nobody expects it.
func (sh *streamhost) lookup(hash string) func(*acceptedConn) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	rs := sh.routes[hash]
	if len(rs) == 0 {
		return nil
	}
	if i := slices.IndexFunc(rs, func(r route) bool { return r.primary }); i >= 0 {
		return rs[i].deliver
	}
	return rs[0].deliver
}

// setMaxConn sets the number of connections in handshake at once.
func (sh *streamhost) setMaxConn(n int) {
	sh.mu.Lock()
	sh.maxConn = n
	sh.mu.Unlock()
}

// Addr returns the listening address.
func (sh *streamhost) Addr() net.Addr { return sh.ln.Addr() }

func (sh *streamhost) accept() {
	defer sh.wg.Done()
	for {
		c, err := sh.ln.Accept()
		if err != nil {
			sh.mu.Lock()
			closed := sh.closed
			sh.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return
			}
			sh.log.Debug("socks5: accept", "err", err)
			time.Sleep(50 * time.Millisecond) // e.g. out of file descriptors
			continue
		}
		tc, ok := c.(*net.TCPConn)
		if !ok {
			c.Close()
			continue
		}
		sh.mu.Lock()
		if sh.closed || len(sh.conns) >= sh.maxConn {
			sh.mu.Unlock()
			sh.log.Debug("socks5: streamhost refusing connection", "from", c.RemoteAddr())
			tc.Close()
			continue
		}
		sc := &serverConn{raw: tc, sh: sh}
		sh.conns[sc] = struct{}{}
		sh.wg.Add(1)
		sh.mu.Unlock()
		go sh.serve(sc)
	}
}

func (sh *streamhost) serve(sc *serverConn) {
	defer sh.wg.Done()
	defer func() {
		if r := recover(); r != nil {
			sh.log.Error("socks5: go-socks5 panicked", "from", sc.raw.RemoteAddr(), "panic", r)
		}
		sh.forget(sc)
	}()
	_ = sc.raw.SetDeadline(time.Now().Add(sh.timeout))
	if err := sh.srv.ServeConn(sc); err != nil {
		sh.log.Debug("socks5: streamhost closed a connection", "from", sc.raw.RemoteAddr(), "err", err)
	}
}

// forget drops sc from the tables and closes it unless it was handed over.
func (sh *streamhost) forget(sc *serverConn) {
	sh.mu.Lock()
	delete(sh.conns, sc)
	if sc.auth != nil {
		delete(sh.byAuth, sc.auth)
	}
	sh.mu.Unlock()
	if !sc.handedOver() {
		sc.raw.Close()
	}
}

// Close stops accepting, closes the connections still in handshake and
// waits for the serving goroutines. Connections already handed over are
// not touched.
func (sh *streamhost) Close() error {
	err := sh.shutdown()
	sh.wait()
	return err
}

// shutdown is Close without the wait: it may be called where a serving
// goroutine could be waiting (a transport's lock held).
func (sh *streamhost) shutdown() error {
	sh.mu.Lock()
	if sh.closed {
		sh.mu.Unlock()
		return nil
	}
	sh.closed = true
	for sc := range sh.conns {
		sc.raw.Close()
	}
	sh.mu.Unlock()
	return sh.ln.Close()
}

// wait waits for the goroutines of a streamhost that was shut down.
func (sh *streamhost) wait() { sh.wg.Wait() }

// dial is go-socks5's Dial hook: it hijacks the client connection instead
// of connecting anywhere.
func (sh *streamhost) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	sc, _ := ctx.Value(ctxKey{}).(*serverConn)
	if sc == nil {
		return nil, errors.New("socks5: no connection in the request context")
	}
	sc.hijack()
	return nullConn{}, nil
}

// handOver gives the client connection to the transport, once the reply
// has been written.
func (sh *streamhost) handOver(sc *serverConn) {
	sh.mu.Lock()
	closed := sh.closed
	delete(sh.conns, sc)
	sh.mu.Unlock()
	if closed {
		sc.raw.Close()
		return
	}
	var c net.Conn = sc.raw
	if len(sc.prefix) > 0 {
		c = &prefixConn{TCPConn: sc.raw, prefix: sc.prefix}
	}
	sc.deliver(&acceptedConn{conn: c, hash: sc.hash, local: sc.raw.LocalAddr()})
}

// noAuth is the no-authentication method; it remembers which connection
// and reader go-socks5 uses for the AuthContext it returns.
type noAuth struct{ sh *streamhost }

func (noAuth) GetCode() uint8 { return gosocks5.NoAuth }

func (a noAuth) Authenticate(r io.Reader, w io.Writer) (*gosocks5.AuthContext, error) {
	sc, ok := w.(*serverConn)
	if !ok {
		return nil, fmt.Errorf("socks5: unexpected connection type %T", w)
	}
	if _, err := sc.raw.Write([]byte{socksVersion, methodNoAuth}); err != nil {
		return nil, err
	}
	ac := &gosocks5.AuthContext{Method: gosocks5.NoAuth}
	sc.br, _ = r.(*bufio.Reader)
	a.sh.mu.Lock()
	sc.auth = ac
	a.sh.byAuth[ac] = sc
	a.sh.mu.Unlock()
	return ac, nil
}

// resolver resolves only the expected DST.ADDRs, without DNS; go-socks5
// answers anything else with host-unreachable and closes.
type resolver struct{ sh *streamhost }

func (r resolver) Resolve(ctx context.Context, name string) (context.Context, net.IP, error) {
	if r.sh.lookup(name) == nil {
		return ctx, nil, fmt.Errorf("socks5: unexpected DST.ADDR %.64q", name)
	}
	return ctx, net.IPv4zero, nil
}

// rules allows only CONNECT to an expected DST.ADDR given as a domain name.
type rules struct{ sh *streamhost }

func (r rules) Allow(ctx context.Context, req *gosocks5.Request) (context.Context, bool) {
	if req.Command != gosocks5.ConnectCommand || req.DestAddr == nil {
		return ctx, false
	}
	deliver := r.sh.lookup(req.DestAddr.FQDN)
	if deliver == nil {
		return ctx, false
	}
	r.sh.mu.Lock()
	sc := r.sh.byAuth[req.AuthContext]
	r.sh.mu.Unlock()
	if sc == nil {
		return ctx, false
	}
	sc.hash, sc.port, sc.deliver = req.DestAddr.FQDN, req.DestAddr.Port, deliver
	return context.WithValue(ctx, ctxKey{}, sc), true
}

const (
	connHandshake = iota
	connReplyPending
	connHandedOver
)

// serverConn is what go-socks5 sees of an accepted connection.
type serverConn struct {
	raw *net.TCPConn
	sh  *streamhost
	// Set by go-socks5's goroutine during the handshake.
	auth    *gosocks5.AuthContext
	br      *bufio.Reader
	hash    string
	port    int
	deliver func(*acceptedConn) // the route of hash
	prefix  []byte

	mu    sync.Mutex
	state int
}

func (c *serverConn) handedOver() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state == connHandedOver
}

// hijack runs in go-socks5's goroutine, before it writes the reply: what
// its reader buffered beyond the CONNECT request belongs to the stream.
func (c *serverConn) hijack() {
	if c.br != nil && c.br.Buffered() > 0 {
		b, _ := c.br.Peek(c.br.Buffered())
		c.prefix = append([]byte(nil), b...)
		_, _ = c.br.Discard(len(b))
	}
	c.mu.Lock()
	c.state = connReplyPending
	c.mu.Unlock()
}

func (c *serverConn) Read(b []byte) (int, error) {
	if c.handedOver() {
		return 0, io.EOF
	}
	return c.raw.Read(b)
}

func (c *serverConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	state := c.state
	c.mu.Unlock()
	switch state {
	case connHandedOver:
		return 0, net.ErrClosed
	case connReplyPending:
		if len(b) < 2 || b[1] != replySucceed {
			return c.raw.Write(b)
		}
		// XEP-0065: BND.ADDR and BND.PORT are DST.ADDR and DST.PORT.
		reply := make([]byte, 0, 7+len(c.hash))
		reply = append(reply, socksVersion, replySucceed, 0, atypDomain, byte(len(c.hash)))
		reply = append(reply, c.hash...)
		reply = append(reply, byte(c.port>>8), byte(c.port))
		if _, err := c.raw.Write(reply); err != nil {
			return 0, err
		}
		if err := c.raw.SetDeadline(time.Time{}); err != nil {
			return 0, err
		}
		c.mu.Lock()
		c.state = connHandedOver
		c.mu.Unlock()
		c.sh.handOver(c)
		return len(b), nil
	}
	return c.raw.Write(b)
}

func (c *serverConn) Close() error {
	if c.handedOver() {
		return nil
	}
	return c.raw.Close()
}

func (c *serverConn) LocalAddr() net.Addr  { return c.raw.LocalAddr() }
func (c *serverConn) RemoteAddr() net.Addr { return c.raw.RemoteAddr() }

func (c *serverConn) SetDeadline(t time.Time) error {
	if c.handedOver() {
		return nil
	}
	return c.raw.SetDeadline(t)
}

func (c *serverConn) SetReadDeadline(t time.Time) error {
	if c.handedOver() {
		return nil
	}
	return c.raw.SetReadDeadline(t)
}

func (c *serverConn) SetWriteDeadline(t time.Time) error {
	if c.handedOver() {
		return nil
	}
	return c.raw.SetWriteDeadline(t)
}

// nullConn is the target go-socks5 "connects" to: nothing to read, and a
// *net.TCPAddr as LocalAddr so that go-socks5 does not panic.
type nullConn struct{}

var nullAddr = &net.TCPAddr{IP: net.IPv4zero}

func (nullConn) Read([]byte) (int, error)    { return 0, io.EOF }
func (nullConn) Write(b []byte) (int, error) { return len(b), nil }
func (nullConn) Close() error                { return nil }

// WriteTo implements io.WriterTo: go-socks5's copy from the target then
// ends without allocating a 32 kB copy buffer per connection.
func (nullConn) WriteTo(io.Writer) (int64, error) { return 0, nil }
func (nullConn) LocalAddr() net.Addr              { return nullAddr }
func (nullConn) RemoteAddr() net.Addr             { return nullAddr }
func (nullConn) SetDeadline(time.Time) error      { return nil }
func (nullConn) SetReadDeadline(time.Time) error  { return nil }
func (nullConn) SetWriteDeadline(time.Time) error { return nil }

// prefixConn is a TCP connection with bytes read ahead of it.
type prefixConn struct {
	*net.TCPConn
	prefix []byte
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.TCPConn.Read(b)
}

// WriteTo implements io.WriterTo (the embedded one would skip the prefix).
func (c *prefixConn) WriteTo(w io.Writer) (int64, error) {
	var n int64
	if len(c.prefix) > 0 {
		m, err := w.Write(c.prefix)
		n += int64(m)
		c.prefix = c.prefix[m:]
		if err != nil {
			return n, err
		}
	}
	m, err := io.Copy(w, c.TCPConn)
	return n + m, err
}
