package ice

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/pion/transport/v2"
	"golang.org/x/net/ipv4"
)

// Limits of a batchConn.
const (
	// sendQueueLen is how many datagrams a socket queues before WriteTo
	// blocks: at most this many (plus one batch being sent) are held, about
	// 2 KiB each.
	sendQueueLen = 64
	// sendBatchMax is the most datagrams sent by one system call. The
	// per-datagram cost of sendmmsg stops falling at about 16.
	sendBatchMax = 32
	// datagramBufSize is the size of the pooled copies; larger datagrams
	// (TURN, jumbo paths) get a buffer of their own.
	datagramBufSize = 2048
	// closeFlushTimeout bounds how long Close waits for the queued
	// datagrams to leave.
	closeFlushTimeout = 200 * time.Millisecond
	// recvBatchMax is the most datagrams read by one system call, and
	// recvBatchAfter how many datagrams are read one by one first, so that
	// the batch's buffers exist only on sockets that carry traffic.
	recvBatchMax   = 8
	recvBatchAfter = 64
	// recvDatagramMax is the largest datagram read in a batch: pion/ice's
	// own read buffer (receiveMTU), so nothing is cut shorter than before.
	recvDatagramMax = 8192
	// segmentBytesMax bounds the payload of one segmented send (UDP GSO):
	// it must fit one IP packet of 64 KiB with its headers.
	segmentBytesMax = 65000
	// coalescedMax is the read buffer of one message where the kernel
	// joins datagrams (UDP GRO), and coalescedBatch how many such
	// messages one recvmmsg reads.
	coalescedMax   = 1 << 16
	coalescedBatch = 4
)

// batchIO sends and receives several datagrams in one system call:
// ipv4.PacketConn and ipv6.PacketConn (sendmmsg and recvmmsg on Linux).
type batchIO interface {
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
}

// datagram is one queued write: a copy of the caller's bytes.
type datagram struct {
	buf  *[]byte
	addr net.Addr
}

// batchConn is a UDP socket whose writes are queued and sent by one writer
// goroutine, in batches of whatever is queued when it gets to them
// (sendmmsg through golang.org/x/net). The sender of an SCTP association
// writes one 1228-byte packet per call; a system call per datagram was
// about 30 % of its CPU, and sendmmsg costs a third of that per datagram
// at batches of 16.
//
// There is no timer: the writer yields once when it finds a lone datagram
// (so that the rest of a burst being written can join it), then sends
// what is queued; batches also form while the writer is busy with the
// previous one. Where the kernel has UDP GSO and GRO (Linux 4.18 and 5.0),
// a run of datagrams of one size to one address goes down the stack as
// one message that the kernel cuts, and the receiving socket reads what
// a sender sent that way as one message, cut here: on loopback that
// cuts the system's cost per datagram (about 12 % less CPU per byte for a
// pair in BenchmarkICETransfer). The queue is bounded (WriteTo
// blocks when it is full, until the write deadline or Close). An error of
// an asynchronous write is returned by the next WriteTo (whose datagram is
// still queued: the error is about an earlier one) and logged. Reads,
// addresses and socket options are the socket's own.
type batchConn struct {
	transport.UDPConn
	bio batchIO
	v6  bool // the socket's family: datagrams to the other one go through WriteTo
	log *slog.Logger

	queue     chan datagram
	closing   chan struct{} // closed by Close
	stopped   chan struct{} // closed when the writer has returned
	startOnce sync.Once     // the writer starts with the first write
	closeOnce sync.Once
	closeErr  error
	pool      sync.Pool // of *[]byte, datagramBufSize

	mu            sync.Mutex
	err           error // an asynchronous write error not yet returned
	writeDeadline time.Time

	noBatch bool // the system refused sendmmsg: one WriteTo each (writer only)
	// segment, when not nil, writes into b the control message that asks
	// the kernel to cut a message into datagrams of size bytes (UDP GSO,
	// Linux's UDP_SEGMENT) and returns it. The writer sets it to nil when
	// the kernel refuses a segmented send.
	segment func(b []byte, size int) []byte

	// coalesce, when not nil, asks the kernel to join the datagrams of
	// one sender into one message (UDP GRO, Linux's UDP_GRO) and returns
	// true if it will; readSegment reads the datagram size from a
	// message's control data (0: one datagram). Both are set together.
	coalesce    func() bool
	readSegment func(oob []byte) int

	rmu       sync.Mutex // the read side, below
	rmsgs     []ipv4.Message
	rn        int // messages in rmsgs
	rnext     int // the next one to return from
	roff      int // read offset in rmsgs[rnext]
	rseg      int // datagram size in rmsgs[rnext]; 0: the whole message
	rplain    int // datagrams read one by one so far
	rnoBatch  bool
	rbufMem   []byte
	rcoalesce bool // the kernel joins datagrams: rmsgs have OOB
	rjoined   int  // messages read that the kernel had joined
}

// newBatchConn wraps c; bio is c wrapped by ipv4 or ipv6.NewPacketConn.
func newBatchConn(c transport.UDPConn, bio batchIO, v6 bool, log *slog.Logger) *batchConn {
	return &batchConn{
		UDPConn: c, bio: bio, v6: v6, log: log,
		queue:   make(chan datagram, sendQueueLen),
		closing: make(chan struct{}),
		stopped: make(chan struct{}),
	}
}

// WriteTo queues a copy of p for addr. It returns len(p) once queued; a
// non-nil error with it is about an earlier datagram that could not be
// sent. It blocks while the queue is full, until the write deadline
// (os.ErrDeadlineExceeded, p not queued) or Close (net.ErrClosed).
func (c *batchConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	select {
	case <-c.closing:
		return 0, c.opError(net.ErrClosed, addr)
	default:
	}
	c.startOnce.Do(func() { go c.writeLoop() })
	earlier := c.takeErr() // before queueing: it cannot be about p
	d := datagram{buf: c.copyOf(p), addr: addr}
	select {
	case c.queue <- d:
		return len(p), earlier
	default:
	}
	var timeout <-chan time.Time
	if dl := c.deadline(); !dl.IsZero() {
		t := time.NewTimer(time.Until(dl))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case c.queue <- d:
		return len(p), earlier
	case <-c.closing:
		c.release(d)
		return 0, withEarlier(c.opError(net.ErrClosed, addr), earlier)
	case <-timeout:
		c.release(d)
		return 0, withEarlier(c.opError(os.ErrDeadlineExceeded, addr), earlier)
	}
}

// withEarlier adds an earlier asynchronous error to err; err alone stays
// a *net.OpError (Timeout and all).
func withEarlier(err, earlier error) error {
	if earlier == nil {
		return err
	}
	return errors.Join(err, earlier)
}

// WriteToUDP implements transport.UDPConn through WriteTo, in order with it.
func (c *batchConn) WriteToUDP(p []byte, addr *net.UDPAddr) (int, error) {
	return c.WriteTo(p, addr)
}

// SetDeadline sets the socket's read deadline and the queue's write
// deadline. The socket's own write deadline is left alone, so that what
// was queued before still leaves (pion sets a deadline just before Close).
func (c *batchConn) SetDeadline(t time.Time) error {
	_ = c.SetWriteDeadline(t)
	return c.UDPConn.SetReadDeadline(t)
}

// SetWriteDeadline bounds how long WriteTo waits for room in the queue.
func (c *batchConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.writeDeadline = t
	c.mu.Unlock()
	return nil
}

// Close sends what is queued (for at most closeFlushTimeout), stops the
// writer and closes the socket.
func (c *batchConn) Close() error {
	c.closeOnce.Do(func() {
		_ = c.UDPConn.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
		close(c.closing)
		c.startOnce.Do(func() { close(c.stopped) }) // never started
		<-c.stopped
		c.closeErr = c.UDPConn.Close()
	})
	return c.closeErr
}

func (c *batchConn) deadline() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writeDeadline
}

func (c *batchConn) opError(err error, addr net.Addr) error {
	return &net.OpError{Op: "write", Net: "udp", Source: c.LocalAddr(), Addr: addr, Err: err}
}

// takeErr returns the pending asynchronous error once.
func (c *batchConn) takeErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.err
	c.err = nil
	return err
}

// fail records the error of an asynchronous write; the first one waits
// for the next WriteTo, all are logged.
func (c *batchConn) fail(err error, addr net.Addr) {
	c.log.Debug("ice: queued datagram not sent", "to", fmt.Sprint(addr), "err", err)
	c.mu.Lock()
	if c.err == nil {
		c.err = fmt.Errorf("ice: an earlier datagram to %s: %w", addr, err)
	}
	c.mu.Unlock()
}

func (c *batchConn) copyOf(p []byte) *[]byte {
	if len(p) > datagramBufSize {
		b := append([]byte(nil), p...)
		return &b
	}
	bp, _ := c.pool.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, datagramBufSize)
		bp = &b
	}
	*bp = append((*bp)[:0], p...)
	return bp
}

func (c *batchConn) release(d datagram) {
	if cap(*d.buf) == datagramBufSize {
		c.pool.Put(d.buf)
	}
}

// writeLoop is the writer: it takes what is queued, up to sendBatchMax,
// sends it, and again, until Close; then it sends what is left.
func (c *batchConn) writeLoop() {
	defer close(c.stopped)
	batch := make([]datagram, 0, sendBatchMax)
	msgs := newSendMsgs()
	for {
		select {
		case d := <-c.queue:
			batch = append(batch[:0], d)
		case <-c.closing:
			c.drain(batch, msgs)
			return
		}
		if len(c.queue) == 0 {
			// Yield once before sending a lone datagram: pion/sctp
			// writes a burst one packet at a time, each sealed by DTLS
			// on its way here, and without this the writer takes each
			// as it comes (1.2 datagrams per call in BenchmarkICETransfer;
			// about 14 with it). A lone datagram waits for nothing but
			// the goroutines already runnable.
			runtime.Gosched()
		}
		batch = c.fill(batch)
		c.flush(batch, msgs)
	}
}

// fill adds what is queued, without waiting, up to sendBatchMax.
func (c *batchConn) fill(batch []datagram) []datagram {
	for len(batch) < sendBatchMax {
		select {
		case d := <-c.queue:
			batch = append(batch, d)
		default:
			return batch
		}
	}
	return batch
}

// sendMsgs are the writer's messages for WriteBatch, made once: msgs[i]
// carries counts[i] datagrams (more than one when the kernel cuts it, UDP
// GSO), with its control message in oob[i].
type sendMsgs struct {
	msgs   []ipv4.Message
	counts []int
	oob    [][24]byte // a UDP_SEGMENT control message: CmsgSpace(2) ≤ 24
}

func newSendMsgs() *sendMsgs {
	s := &sendMsgs{
		msgs:   make([]ipv4.Message, sendBatchMax),
		counts: make([]int, sendBatchMax),
		oob:    make([][24]byte, sendBatchMax),
	}
	for i := range s.msgs {
		s.msgs[i].Buffers = make([][]byte, 0, sendBatchMax)
	}
	return s
}

// drain sends what is still queued when Close is called.
func (c *batchConn) drain(batch []datagram, msgs *sendMsgs) {
	for {
		batch = c.fill(batch[:0])
		if len(batch) == 0 {
			return
		}
		c.flush(batch, msgs)
	}
}

// flush sends batch in order and releases its buffers: runs of datagrams
// to the socket's family in one WriteBatch each, the others by WriteTo.
// Where the kernel cuts datagrams (UDP GSO), consecutive datagrams to one
// address, all of one size but the last, which may be shorter, go in one
// message: one trip down the stack instead of one per datagram.
func (c *batchConn) flush(batch []datagram, s *sendMsgs) {
	for len(batch) > 0 {
		n, m := 0, 0 // datagrams and messages
		for n < len(batch) && c.batchable(batch[n].addr) {
			k := c.segmentRun(batch[n:])
			bm := &s.msgs[m]
			for _, d := range batch[n : n+k] {
				bm.Buffers = append(bm.Buffers, *d.buf)
			}
			bm.Addr = batch[n].addr
			if k > 1 {
				bm.OOB = c.segment(s.oob[m][:0], len(*batch[n].buf))
			}
			s.counts[m] = k
			n += k
			m++
		}
		if n == 0 {
			c.writeOne(batch[0])
			n = 1
		} else {
			c.writeBatch(batch[:n], s.msgs[:m], s.counts[:m])
		}
		for i := range n {
			c.release(batch[i])
		}
		for i := range m {
			clear(s.msgs[i].Buffers)
			s.msgs[i].Buffers, s.msgs[i].Addr, s.msgs[i].OOB = s.msgs[i].Buffers[:0], nil, nil
		}
		batch = batch[n:]
	}
}

// segmentRun is how many datagrams from batch[0] one message carries: 1
// without UDP GSO; else those to the same address, all the size of the
// first but the last, within segmentBytesMax.
func (c *batchConn) segmentRun(batch []datagram) int {
	if c.segment == nil {
		return 1
	}
	size := len(*batch[0].buf)
	to, _ := batch[0].addr.(*net.UDPAddr)
	total, k := size, 1
	for k < len(batch) && len(*batch[k-1].buf) == size {
		l := len(*batch[k].buf)
		ua, _ := batch[k].addr.(*net.UDPAddr)
		if l == 0 || l > size || total+l > segmentBytesMax || !sameUDPAddr(to, ua) {
			break
		}
		total += l
		k++
	}
	return k
}

func sameUDPAddr(a, b *net.UDPAddr) bool {
	return a != nil && b != nil && a.Port == b.Port && a.Zone == b.Zone && a.IP.Equal(b.IP)
}

// writeBatch sends a run of messages with sendmmsg, going on after a
// message that fails. If the system refuses sendmmsg itself (a datagram
// that fails in a batch is sent alone by WriteTo and that succeeds), the
// rest of the socket's life uses WriteTo; if it refuses a segmented
// message whose datagrams then go alone, the rest of the socket's life
// sends them uncut.
func (c *batchConn) writeBatch(batch []datagram, msgs []ipv4.Message, counts []int) {
	for len(msgs) > 0 {
		var (
			n   int
			err error
		)
		if c.noBatch {
			err = errors.New("sendmmsg disabled")
		} else {
			n, err = c.bio.WriteBatch(msgs, 0)
		}
		if err == nil && n == 0 {
			err = errors.New("sendmmsg sent nothing")
		}
		if err != nil {
			// The first message failed: its datagrams alone, through the
			// plain path.
			ok := true
			for _, d := range batch[:counts[0]] {
				ok = c.writeOne(d) && ok
			}
			switch {
			case !ok:
			case counts[0] > 1:
				c.log.Debug("ice: segmented send (UDP GSO) refused, sending datagrams uncut", "err", err)
				c.segment = nil
			case !c.noBatch:
				c.log.Debug("ice: sendmmsg refused, sending datagrams one by one", "err", err)
				c.noBatch = true
			}
			n = 1
		}
		for _, k := range counts[:n] {
			batch = batch[k:]
		}
		msgs, counts = msgs[n:], counts[n:]
	}
}

// writeOne sends one datagram with the socket's WriteTo.
func (c *batchConn) writeOne(d datagram) bool {
	if _, err := c.UDPConn.WriteTo(*d.buf, d.addr); err != nil {
		c.fail(err, d.addr)
		return false
	}
	return true
}

// batchable says whether a datagram to addr can go in a WriteBatch:
// a UDP address of the socket's family.
func (c *batchConn) batchable(addr net.Addr) bool {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return false
	}
	return (ua.IP.To4() == nil) == c.v6 && ua.IP.To16() != nil
}

// ReadFrom returns the next datagram. After the first recvBatchAfter
// datagrams, it reads up to recvBatchMax at once (recvmmsg) and returns
// them one per call: the receiving end of a data channel is its slower
// end, so datagrams wait in the socket and a batch is usually full.
// A datagram longer than p is cut to len(p), as by the socket's ReadFrom.
func (c *batchConn) ReadFrom(p []byte) (int, net.Addr, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.rnext < c.rn {
		return c.nextRead(p)
	}
	if c.rnoBatch || c.rplain < recvBatchAfter {
		c.rplain++
		return c.UDPConn.ReadFrom(p)
	}
	if c.rmsgs == nil {
		c.makeReadBatch()
	}
	n, err := c.bio.ReadBatch(c.rmsgs, 0)
	if err != nil {
		if errors.Is(err, errors.ErrUnsupported) {
			c.log.Debug("ice: recvmmsg refused, reading datagrams one by one", "err", err)
			c.rnoBatch = true
			return c.UDPConn.ReadFrom(p)
		}
		return 0, nil, err
	}
	c.rn, c.rnext, c.roff = n, 0, 0
	c.rseg = c.segmentOf(0)
	return c.nextRead(p)
}

// makeReadBatch makes the buffers of batched reads, and asks for
// coalesced reads (UDP GRO) where the kernel has them: with them, a
// sender's segmented message arrives whole, not cut datagram by datagram.
func (c *batchConn) makeReadBatch() {
	count, size := recvBatchMax, recvDatagramMax
	if c.coalesce != nil && c.coalesce() {
		c.rcoalesce = true
		count, size = coalescedBatch, coalescedMax
	}
	c.rbufMem = make([]byte, count*size)
	c.rmsgs = make([]ipv4.Message, count)
	for i := range c.rmsgs {
		c.rmsgs[i].Buffers = [][]byte{c.rbufMem[i*size : (i+1)*size]}
		if c.rcoalesce {
			c.rmsgs[i].OOB = make([]byte, 64)
		}
	}
}

// segmentOf is the datagram size of message i, 0 when it is one datagram.
func (c *batchConn) segmentOf(i int) int {
	if !c.rcoalesce || i >= c.rn {
		return 0
	}
	m := &c.rmsgs[i]
	seg := c.readSegment(m.OOB[:m.NN])
	if seg <= 0 || seg >= m.N {
		return 0
	}
	c.rjoined++
	return seg
}

// ReadFromUDP implements transport.UDPConn through ReadFrom, in order
// with it.
func (c *batchConn) ReadFromUDP(p []byte) (int, *net.UDPAddr, error) {
	n, addr, err := c.ReadFrom(p)
	ua, _ := addr.(*net.UDPAddr)
	return n, ua, err
}

// nextRead returns the next datagram of the batch read: a message, or
// the next datagram-sized part of a coalesced one.
func (c *batchConn) nextRead(p []byte) (int, net.Addr, error) {
	m := &c.rmsgs[c.rnext]
	data := m.Buffers[0][c.roff:m.N]
	if c.rseg > 0 && len(data) > c.rseg {
		c.roff += c.rseg
		return copy(p, data[:c.rseg]), m.Addr, nil
	}
	addr := m.Addr
	m.Addr = nil
	c.rnext++
	c.roff = 0
	c.rseg = c.segmentOf(c.rnext)
	return copy(p, data), addr, nil
}
