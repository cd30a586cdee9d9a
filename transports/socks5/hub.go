package socks5

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"net"
	"strconv"
	"sync"
)

// handshakesPerTransport bounds the connections in SOCKS5 handshake on a
// streamhost, per transport that uses it: past that, new connections are
// closed at once.
const handshakesPerTransport = 16

// hub is a Method's local streamhost, shared by all its transports: one
// TCP listener for the direct candidates of every session, open while at
// least one transport negotiates, that routes each connection by the
// DST.ADDR of its CONNECT request (SHA1(sid + requester + target), unique
// to one stream) to the transport expecting it. A connection asking for
// no expected DST.ADDR is refused (go-socks5 answers host-unreachable and
// closes), as one that does not finish its handshake within
// Settings.HandshakeTimeout is closed.
type hub struct {
	mu   sync.Mutex
	sh   *streamhost // nil while no transport uses it
	refs int         // transports with routes on sh
}

// join routes t's DST.ADDRs to t.deliver, opening the listener if no
// transport uses it yet, and returns its port. t must leave.
func (h *hub) join(t *transport) (uint16, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sh == nil {
		ln, err := listen(t.set)
		if err != nil {
			return 0, err
		}
		h.sh = newStreamhost(ln, nil, t.set.HandshakeTimeout, t.set.Logger, nil)
	}
	h.refs++
	h.sh.addRoute(t.dstaddr, t, true, t.deliver)
	h.sh.addRoute(t.peerHash, t, false, t.deliver)
	h.sh.setMaxConn(handshakesPerTransport * h.refs)
	return uint16(h.sh.Addr().(*net.TCPAddr).Port), nil
}

// leave removes t's routes. When t was the last transport on the
// listener, leave closes it and the connections still in handshake, and
// returns the streamhost, whose goroutines the caller waits for (with
// wait) once it holds no lock a serving goroutine may need.
func (h *hub) leave(t *transport) *streamhost {
	h.mu.Lock()
	defer h.mu.Unlock()
	sh := h.sh
	if sh == nil || !sh.removeRoutes(t, t.dstaddr, t.peerHash) {
		return nil
	}
	h.refs--
	if h.refs > 0 {
		sh.setMaxConn(handshakesPerTransport * h.refs)
		return nil
	}
	h.sh = nil
	if err := sh.shutdown(); err != nil {
		t.log.Debug("socks5: closing the streamhost", "err", err)
	}
	return sh
}

// listen opens a streamhost's listener, on a port of the configured range
// if there is one.
func listen(set Settings) (net.Listener, error) {
	if set.PortMin == 0 {
		ln, err := net.Listen("tcp", net.JoinHostPort(set.ListenHost, "0"))
		if err != nil {
			return nil, fmt.Errorf("socks5: streamhost: %w", err)
		}
		return ln, nil
	}
	n := int(set.PortMax) - int(set.PortMin) + 1
	start, _ := rand.Int(rand.Reader, big.NewInt(int64(n)))
	var lastErr error
	for i := range n {
		port := int(set.PortMin) + (int(start.Int64())+i)%n
		ln, err := net.Listen("tcp", net.JoinHostPort(set.ListenHost, strconv.Itoa(port)))
		if err == nil {
			return ln, nil
		}
		lastErr = err
	}
	return nil, fmt.Errorf("socks5: streamhost: no free port in %d-%d: %w", set.PortMin, set.PortMax, lastErr)
}
