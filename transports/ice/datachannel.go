package ice

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/pion/datachannel"
	"github.com/pion/sctp"
	"github.com/pion/transport/v2/deadline"

	"github.com/jinglekit/jinglekit/jingle"
)

// maxIncomingChannels bounds the data channels a peer may open on one
// transport; more are closed at once.
const maxIncomingChannels = 4

// inboundQueue is the number of messages read ahead of Read.
const inboundQueue = 32

// sctpMTU is the largest SCTP packet handed to DTLS: pion/sctp's default
// up to v1.8.x. Since v1.9 pion defaults to 1191 (libwebrtc's figure),
// which costs 3% more packets, and as much more CPU, for the same bytes.
// With DTLS's 37 bytes (record header, explicit nonce, GCM tag) a packet
// is a 1265-byte UDP payload: it fits a 1500-byte path over IPv6 even
// through a TURN Send indication (48 bytes).
const sctpMTU = 1228

// lingerTimeout bounds how long Close waits for queued data to be
// acknowledged before resetting the channel.
const lingerTimeout = 10 * time.Second

// streamParams configures the data channel layer of a transport.
type streamParams struct {
	role           dtlsRole // decides the parity of our channel's stream id
	openOwn        bool     // open a channel; else use the first the peer opens
	label          string
	protocol       string
	receiveWindow  int
	maxRecvMessage int // what we accept (and announced)
	sendMessage    int // what we send: ≤ what the peer accepts
	writeBuffer    int
	log            *slog.Logger
	n              *counters
}

// message is a data channel message read ahead, or the end of a channel.
type message struct {
	ch   *datachannel.DataChannel
	data []byte
	buf  []byte // the pooled buffer data is in, returned once read
	err  error  // io.EOF when the channel was closed
}

// Conn is the byte stream of one content over WebRTC data channels: a
// net.Conn over an SCTP association over DTLS over ICE.
//
// Channels are opened in band (RFC 8832), reliable and ordered, labelled
// with the content name. In the webrtc-datachannel dialect each side opens
// its own channel and writes on it, and reads the channel the peer opened:
// that is what Conversations does (it reads only a channel the other side
// opened). In the XEP-0343 dialect the offerer opens one channel and both
// sides use it both ways, as Psi does; StanzaJS, as offerer, sends on the
// channel it opens and, as answerer, reads the one it is given. Reads come
// from the first channel that carries data; data on any other is dropped.
//
// Writes are cut into messages no larger than the peer accepts; Write
// blocks while more than Config.WriteBuffer bytes wait in the SCTP queue.
// CloseWrite ends the outgoing direction (the peer reads io.EOF; where one
// channel carries both directions, the peer's answer to the reset ends
// reading too); Close ends both.
type Conn struct {
	p       streamParams
	assoc   *sctp.Association
	out     *datachannel.DataChannel
	control uint64 // buffered amount of the channel's control messages
	low     chan struct{}

	wmu     sync.Mutex // one Write at a time
	inq     chan message
	rmu     sync.Mutex // one Read at a time
	source  *datachannel.DataChannel
	rest    []byte
	restBuf []byte
	rerr    error
	pool    sync.Pool // message buffers of maxRecvMessage bytes

	rdl, wdl *deadline.Deadline

	mu       sync.Mutex
	peerChs  []*datachannel.DataChannel
	wclosed  bool
	closing  bool // Close has begun
	writers  int  // Writes under way
	closed   bool
	done     chan struct{}
	assocEnd chan struct{} // closed when the association is gone
	wg       sync.WaitGroup

	local, remote net.Addr
}

// openStream sets up the SCTP association over a DTLS connection, opens
// this side's channel and starts accepting the peer's. ctx bounds the
// set-up; the association lives until Conn.shutdown.
func openStream(ctx context.Context, dc net.Conn, p streamParams) (*Conn, error) {
	type result struct {
		a   *sctp.Association
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// Both ends are SCTP clients (simultaneous INIT), as in WebRTC.
		a, err := sctp.Client(sctp.Config{
			NetConn:              dc,
			LoggerFactory:        pionLoggers{log: p.log},
			MaxReceiveBufferSize: uint32(p.receiveWindow),
			MaxMessageSize:       uint32(max(p.sendMessage, p.maxRecvMessage)),
			// RFC 9653: no CRC32c inside DTLS when both sides agree.
			EnableZeroChecksum: true,
			MTU:                sctpMTU,
		})
		ch <- result{a, err}
	}()
	var r result
	select {
	case r = <-ch:
	case <-ctx.Done():
		// Closing the DTLS connection ends the association's read loop,
		// and with it sctp.Client.
		_ = dc.Close()
		r = <-ch
		if r.a != nil {
			_ = r.a.Close()
		}
		return nil, ctx.Err()
	}
	if r.err != nil {
		return nil, fmt.Errorf("ice: SCTP association: %w: %w", jingle.ErrTransportFailed, r.err)
	}
	c := &Conn{
		p: p, assoc: r.a,
		low:      make(chan struct{}, 1),
		inq:      make(chan message, inboundQueue),
		rdl:      deadline.New(),
		wdl:      deadline.New(),
		done:     make(chan struct{}),
		assocEnd: make(chan struct{}),
	}
	c.local, c.remote = dc.LocalAddr(), dc.RemoteAddr()
	var (
		out *datachannel.DataChannel
		err error
	)
	if p.openOwn {
		// RFC 8832 §6: the DTLS client uses even stream ids, the server odd.
		id := uint16(0)
		if p.role == dtlsServer {
			id = 1
		}
		out, err = datachannel.Dial(r.a, id, &datachannel.Config{
			ChannelType:   datachannel.ChannelTypeReliable,
			Label:         p.label,
			Protocol:      p.protocol,
			LoggerFactory: pionLoggers{log: p.log},
		})
	} else {
		// Wait for the offerer's channel and use it both ways.
		stop := context.AfterFunc(ctx, func() { _ = r.a.Close() })
		out, err = datachannel.Accept(r.a, &datachannel.Config{LoggerFactory: pionLoggers{log: p.log}})
		if !stop() && err == nil {
			err = ctx.Err()
		}
	}
	if err != nil {
		_ = r.a.Close()
		return nil, fmt.Errorf("ice: opening data channel: %w: %w", jingle.ErrTransportFailed, err)
	}
	c.out = out
	// The DCEP OPEN or ACK may still count in the buffered amount, and
	// pion sometimes never releases it; drain waits for user data only.
	c.control = out.BufferedAmount()
	out.SetBufferedAmountLowThreshold(uint64(p.writeBuffer / 2))
	out.OnBufferedAmountLow(func() {
		select {
		case c.low <- struct{}{}:
		default:
		}
	})
	c.wg.Add(2)
	go c.readLoop(out)
	go c.acceptLoop()
	return c, nil
}

// acceptLoop takes the channels the peer opens, up to a limit.
func (c *Conn) acceptLoop() {
	defer c.wg.Done()
	defer close(c.assocEnd)
	for {
		dc, err := datachannel.Accept(c.assoc, &datachannel.Config{LoggerFactory: pionLoggers{log: c.p.log}}, c.out)
		if err != nil {
			c.push(message{err: fmt.Errorf("ice: association closed: %w", io.EOF)})
			return
		}
		if dc == c.out {
			continue // the peer sent on our channel before we read from it
		}
		c.mu.Lock()
		if c.closed || len(c.peerChs) >= maxIncomingChannels {
			c.mu.Unlock()
			c.p.log.Debug("ice: refusing data channel", "label", dc.Config.Label)
			_ = dc.Close()
			continue
		}
		c.peerChs = append(c.peerChs, dc)
		c.wg.Add(1)
		c.mu.Unlock()
		go c.readLoop(dc)
	}
}

// readLoop reads one channel's messages into the queue.
func (c *Conn) readLoop(dc *datachannel.DataChannel) {
	defer c.wg.Done()
	for {
		buf := c.getBuf()
		n, _, err := dc.ReadDataChannel(buf)
		if err != nil {
			if errors.Is(err, io.ErrShortBuffer) {
				err = fmt.Errorf("ice: peer sent a message larger than %d bytes", c.p.maxRecvMessage)
			} else {
				err = io.EOF
			}
			c.push(message{ch: dc, err: err})
			return
		}
		if n == 0 {
			c.putBuf(buf)
			continue
		}
		if !c.push(message{ch: dc, data: buf[:n], buf: buf}) {
			return
		}
	}
}

// push queues a message; it gives up when the Conn is closed.
func (c *Conn) push(m message) bool {
	select {
	case c.inq <- m:
		return true
	case <-c.done:
		return false
	}
}

// Read implements net.Conn.
func (c *Conn) Read(b []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for len(c.rest) == 0 {
		if c.rerr != nil {
			return 0, c.rerr
		}
		select {
		case m := <-c.inq:
			c.take(m)
		case <-c.rdl.Done():
			return 0, os.ErrDeadlineExceeded
		case <-c.done:
			return 0, net.ErrClosed
		}
	}
	n := copy(b, c.rest)
	c.rest = c.rest[n:]
	if len(c.rest) == 0 && c.restBuf != nil {
		c.putBuf(c.restBuf)
		c.restBuf = nil
	}
	c.p.n.bytesRecv.Add(uint64(n))
	return n, nil
}

// getBuf returns a buffer for one message from the pool.
func (c *Conn) getBuf() []byte {
	if b, ok := c.pool.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, c.p.maxRecvMessage)
}

func (c *Conn) putBuf(b []byte) {
	b = b[:cap(b)]
	c.pool.Put(&b)
}

// take applies a queued message; c.rmu is held.
func (c *Conn) take(m message) {
	switch {
	case m.ch == nil:
		// The association ended.
		c.rerr = m.err
	case c.source == nil && m.err != nil:
		// A channel ended before it carried data: not the one we read.
	case c.source == nil:
		c.source = m.ch
		c.rest, c.restBuf = m.data, m.buf
	case m.ch != c.source:
		c.p.log.Debug("ice: dropping data of a second channel", "label", m.ch.Config.Label, "bytes", len(m.data))
		if m.buf != nil {
			c.putBuf(m.buf)
		}
	case m.err != nil:
		c.rerr = m.err
	default:
		c.rest, c.restBuf = m.data, m.buf
	}
}

// Write implements net.Conn.
func (c *Conn) Write(b []byte) (int, error) {
	c.mu.Lock()
	closed, wclosed := c.closed || c.closing, c.wclosed
	if !closed && !wclosed {
		c.writers++
	}
	c.mu.Unlock()
	switch {
	case closed:
		return 0, net.ErrClosed
	case wclosed:
		return 0, fmt.Errorf("ice: write after CloseWrite: %w", net.ErrClosed)
	}
	defer func() {
		c.mu.Lock()
		c.writers--
		c.mu.Unlock()
	}()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	dc := c.out
	written := 0
	for len(b) > 0 {
		for dc.BufferedAmount() > uint64(c.p.writeBuffer) {
			select {
			case <-c.low:
			case <-c.wdl.Done():
				return written, os.ErrDeadlineExceeded
			case <-c.done:
				return written, net.ErrClosed
			}
		}
		if err := c.wdl.Err(); err != nil {
			return written, os.ErrDeadlineExceeded
		}
		n := min(len(b), c.p.sendMessage)
		if _, err := dc.WriteDataChannel(b[:n], false); err != nil {
			return written, fmt.Errorf("ice: data channel write: %w", err)
		}
		written += n
		c.p.n.bytesSent.Add(uint64(n))
		b = b[n:]
	}
	return written, nil
}

// drain waits until the outgoing channel's queue is empty, bounded by the
// write deadline and lingerTimeout.
func (c *Conn) drain() {
	dc := c.out
	t := time.NewTimer(lingerTimeout)
	defer t.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for dc.BufferedAmount() > c.control {
		select {
		case <-tick.C:
		case <-t.C:
			return
		case <-c.wdl.Done():
			return
		case <-c.done:
			return
		case <-c.assocEnd:
			return
		}
	}
}

// CloseWrite sends everything queued and closes the outgoing channel: the
// peer reads io.EOF. Reading goes on.
func (c *Conn) CloseWrite() error {
	c.mu.Lock()
	closed := c.closed || c.closing
	c.mu.Unlock()
	if closed {
		return nil
	}
	return c.closeWrite()
}

func (c *Conn) closeWrite() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	if c.wclosed {
		c.mu.Unlock()
		return nil
	}
	c.wclosed = true
	c.mu.Unlock()
	c.drain()
	return c.out.Close()
}

// Close implements net.Conn: queued data is sent (bounded by the write
// deadline and 10s), then the channels are closed. A Write blocked at the
// time is aborted instead, with net.ErrClosed, and what it queued is not
// waited for; a blocked Read returns net.ErrClosed. The association stays
// until the transport is closed.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed || c.closing {
		c.mu.Unlock()
		return nil
	}
	c.closing = true
	if c.writers > 0 {
		c.closed = true
		close(c.done)
	}
	c.mu.Unlock()
	if err := c.closeWrite(); err != nil {
		c.p.log.Debug("ice: closing data channel", "err", err)
	}
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.done)
	}
	peers := append([]*datachannel.DataChannel(nil), c.peerChs...)
	c.mu.Unlock()
	for _, dc := range peers {
		_ = dc.Close()
	}
	return nil
}

// shutdown aborts the stream: nothing queued is waited for. It closes the
// association and waits for the Conn's goroutines.
func (c *Conn) shutdown() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.done)
	}
	c.mu.Unlock()
	_ = c.assoc.Close()
	c.wg.Wait()
}

// LocalAddr implements net.Conn: the local address of the selected pair.
func (c *Conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr implements net.Conn: the peer's address of the selected pair.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline implements net.Conn.
func (c *Conn) SetDeadline(t time.Time) error {
	c.rdl.Set(t)
	c.wdl.Set(t)
	return nil
}

// SetReadDeadline implements net.Conn.
func (c *Conn) SetReadDeadline(t time.Time) error { c.rdl.Set(t); return nil }

// SetWriteDeadline implements net.Conn.
func (c *Conn) SetWriteDeadline(t time.Time) error { c.wdl.Set(t); return nil }

// MessageSize returns the size of the messages Write sends.
func (c *Conn) MessageSize() int { return c.p.sendMessage }
