package ice

import (
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/transport/v2"
	"golang.org/x/net/ipv4"
)

// fakeBatchIO records the batches written and can hold them back (gate),
// fail them (failWith), or refuse batching altogether (unsupported).
// Reads go to the real socket through ipv4.PacketConn, counted.
type fakeBatchIO struct {
	real *ipv4.PacketConn
	conn *deadlineConn

	mu          sync.Mutex
	batches     [][][]byte // payloads of each WriteBatch call
	readBatches int
	gate        chan struct{} // when not nil, each WriteBatch waits for a value or the write deadline
	failWith    func(payload []byte) error
	unsupported bool
	sent        chan []byte // every payload that left, in order
}

func (f *fakeBatchIO) WriteBatch(ms []ipv4.Message, _ int) (int, error) {
	f.mu.Lock()
	gate, unsupported, failWith := f.gate, f.unsupported, f.failWith
	f.mu.Unlock()
	// Like a socket's, the write deadline applies even if set while
	// the call waits.
	for waiting := gate != nil; waiting; {
		select {
		case <-gate:
			waiting = false
		case <-time.After(2 * time.Millisecond):
			if dl := f.conn.deadline(); !dl.IsZero() && time.Now().After(dl) {
				return 0, os.ErrDeadlineExceeded
			}
		}
	}
	if unsupported {
		return 0, errors.ErrUnsupported
	}
	var got [][]byte
	for i, m := range ms {
		p := append([]byte(nil), m.Buffers[0]...)
		if failWith != nil {
			if err := failWith(p); err != nil {
				f.record(got)
				return i, nil // sendmmsg: a partial count, the error on the next call
			}
		}
		got = append(got, p)
	}
	f.record(got)
	return len(ms), nil
}

func (f *fakeBatchIO) record(got [][]byte) {
	f.mu.Lock()
	if len(got) > 0 {
		f.batches = append(f.batches, got)
	}
	f.mu.Unlock()
	for _, p := range got {
		f.sent <- p
	}
}

func (f *fakeBatchIO) ReadBatch(ms []ipv4.Message, flags int) (int, error) {
	f.mu.Lock()
	f.readBatches++
	f.mu.Unlock()
	return f.real.ReadBatch(ms, flags)
}

// deadlineConn is a real loopback socket whose WriteTo goes to the fake
// (the plain path) and whose write deadline the fake honours.
type deadlineConn struct {
	transport.UDPConn
	f  *fakeBatchIO
	mu sync.Mutex
	dl time.Time
}

func (d *deadlineConn) SetWriteDeadline(t time.Time) error {
	d.mu.Lock()
	d.dl = t
	d.mu.Unlock()
	return nil
}

func (d *deadlineConn) deadline() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dl
}

func (d *deadlineConn) WriteTo(p []byte, _ net.Addr) (int, error) {
	d.f.mu.Lock()
	failWith := d.f.failWith
	d.f.mu.Unlock()
	if failWith != nil {
		if err := failWith(p); err != nil {
			return 0, err
		}
	}
	d.f.sent <- append([]byte(nil), p...)
	return len(p), nil
}

func newFakeBatchConn(t *testing.T) (*batchConn, *fakeBatchIO) {
	t.Helper()
	uc := loopbackUDP(t)
	f := &fakeBatchIO{real: ipv4.NewPacketConn(uc), sent: make(chan []byte, 4096)}
	f.conn = &deadlineConn{UDPConn: uc, f: f}
	c := newBatchConn(f.conn, f, false, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { _ = c.Close() })
	return c, f
}

var peerAddr = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}

func seqPayload(i int) []byte {
	p := make([]byte, 100)
	binary.BigEndian.PutUint32(p, uint32(i))
	return p
}

// seqSize is the size of every seqPayload.
func seqSize(int) int { return 100 }

// expectRead reads n datagrams from c, within d, and checks that the i-th
// read is datagram i (its first 4 bytes), of size(i) bytes, and, when from
// is not nil, from that address.
func expectRead(t *testing.T, c net.PacketConn, n int, d time.Duration, size func(i int) int, from net.Addr) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, receiveBufForTest)
	for i := range n {
		k, src, err := c.ReadFrom(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if got := binary.BigEndian.Uint32(buf); got != uint32(i) || k != size(i) {
			t.Fatalf("read #%d: datagram %d of %d bytes, want %d bytes", i, got, k, size(i))
		}
		if from != nil && src.String() != from.String() {
			t.Fatalf("source %v, want %v", src, from)
		}
	}
}

// expectSent checks that the next n datagrams sent are seqPayload 0 to
// n-1, in order.
func expectSent(t *testing.T, f *fakeBatchIO, n int) {
	t.Helper()
	for i := range n {
		if got := binary.BigEndian.Uint32(recvSent(t, f)); got != uint32(i) {
			t.Fatalf("datagram %d sent as #%d", got, i)
		}
	}
}

func recvSent(t *testing.T, f *fakeBatchIO) []byte {
	t.Helper()
	select {
	case p := <-f.sent:
		return p
	case <-time.After(5 * time.Second):
		t.Fatal("datagram not sent within 5 s")
		return nil
	}
}

// A lone datagram leaves at once: the writer does not wait for more, nor
// for a timer (20 datagrams one after the other, each waited for, take
// well under a second).
func TestBatchConnSendsLoneDatagram(t *testing.T) {
	c, f := newFakeBatchConn(t)
	start := time.Now()
	for i := range 20 {
		if n, err := c.WriteTo(seqPayload(i), peerAddr); err != nil || n != 100 {
			t.Fatalf("WriteTo = %d, %v", n, err)
		}
		if got := binary.BigEndian.Uint32(recvSent(t, f)); got != uint32(i) {
			t.Fatalf("sent datagram %d, want %d", got, i)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("20 lone datagrams took %v to leave", d)
	}
}

// Datagrams queued while a batch is being sent leave together, in order,
// and the caller's buffer can be reused as soon as WriteTo returns.
func TestBatchConnBatchesInOrder(t *testing.T) {
	c, f := newFakeBatchConn(t)
	gate := make(chan struct{})
	f.mu.Lock()
	f.gate = gate
	f.mu.Unlock()
	const total = 20
	buf := make([]byte, 100)
	for i := range total {
		copy(buf, seqPayload(i))
		if _, err := c.WriteTo(buf, peerAddr); err != nil {
			t.Fatal(err)
		}
	}
	close(gate)
	expectSent(t, f, total)
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.batches) >= total {
		t.Fatalf("%d batches for %d datagrams: nothing was batched", len(f.batches), total)
	}
}

// The queue is bounded: with the writer stuck, WriteTo accepts at most
// the queue plus one batch, then blocks until the write deadline.
func TestBatchConnBackPressure(t *testing.T) {
	c, f := newFakeBatchConn(t)
	gate := make(chan struct{})
	f.mu.Lock()
	f.gate = gate
	f.mu.Unlock()
	if err := c.SetWriteDeadline(time.Now().Add(300 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	accepted := 0
	var err error
	for accepted < 10*sendQueueLen {
		if _, err = c.WriteTo(seqPayload(accepted), peerAddr); err != nil {
			break
		}
		accepted++
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("after %d datagrams: err %v, want the write deadline", accepted, err)
	}
	if accepted < sendQueueLen || accepted > sendQueueLen+sendBatchMax {
		t.Fatalf("accepted %d datagrams with the writer stuck, want %d to %d",
			accepted, sendQueueLen, sendQueueLen+sendBatchMax)
	}
	_ = c.SetWriteDeadline(time.Time{})
	close(gate)
	expectSent(t, f, accepted)
}

// Close unblocks a WriteTo waiting for room, stops the writer within the
// flush bound even if the socket does not drain, and later writes fail.
func TestBatchConnCloseStopsWriter(t *testing.T) {
	c, f := newFakeBatchConn(t)
	f.mu.Lock()
	f.gate = make(chan struct{}) // never opened
	f.mu.Unlock()
	blocked := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			if _, err := c.WriteTo(seqPayload(i), peerAddr); err != nil {
				blocked <- err
				return
			}
		}
	}()
	time.Sleep(50 * time.Millisecond) // let the queue fill
	start := time.Now()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > closeFlushTimeout+2*time.Second {
		t.Fatalf("Close took %v", d)
	}
	select {
	case <-c.stopped:
	default:
		t.Fatal("writer still running after Close")
	}
	select {
	case err := <-blocked:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("blocked WriteTo: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WriteTo still blocked after Close")
	}
	if _, err := c.WriteTo([]byte("late"), peerAddr); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteTo after Close: %v", err)
	}
}

// Close of a socket never written to has no writer to wait for; what was
// queued before Close leaves before the socket closes.
func TestBatchConnCloseFlushes(t *testing.T) {
	c, _ := newFakeBatchConn(t)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c2, f := newFakeBatchConn(t)
	gate := make(chan struct{})
	f.mu.Lock()
	f.gate = gate
	f.mu.Unlock()
	for i := range 5 {
		if _, err := c2.WriteTo(seqPayload(i), peerAddr); err != nil {
			t.Fatal(err)
		}
	}
	go func() { time.Sleep(20 * time.Millisecond); close(gate) }()
	if err := c2.Close(); err != nil {
		t.Fatal(err)
	}
	expectSent(t, f, 5)
}

// A datagram that cannot be sent is reported by the next WriteTo, whose
// own datagram still leaves; the one after reports nothing.
func TestBatchConnErrorOnNextWrite(t *testing.T) {
	c, f := newFakeBatchConn(t)
	f.mu.Lock()
	f.failWith = func(p []byte) error {
		if string(p) == "bad" {
			return syscall.EHOSTUNREACH
		}
		return nil
	}
	f.mu.Unlock()
	if _, err := c.WriteTo([]byte("bad"), peerAddr); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		c.mu.Lock()
		failed := c.err != nil
		c.mu.Unlock()
		if failed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the failed datagram was not recorded within 5 s")
		}
	}
	n, err := c.WriteTo([]byte("next"), peerAddr)
	if !errors.Is(err, syscall.EHOSTUNREACH) || n != 4 {
		t.Fatalf("next WriteTo = %d, %v; want 4 and the earlier EHOSTUNREACH", n, err)
	}
	if got := recvSent(t, f); string(got) != "next" {
		t.Fatalf("sent %q", got)
	}
	if _, err := c.WriteTo([]byte("after"), peerAddr); err != nil {
		t.Fatalf("error reported twice: %v", err)
	}
}

// Where sendmmsg is refused, every datagram goes through the plain WriteTo.
func TestBatchConnFallsBackToWriteTo(t *testing.T) {
	c, f := newFakeBatchConn(t)
	f.mu.Lock()
	f.unsupported = true
	f.mu.Unlock()
	for i := range 10 {
		if _, err := c.WriteTo(seqPayload(i), peerAddr); err != nil {
			t.Fatal(err)
		}
	}
	expectSent(t, f, 10)
	if _, err := c.WriteTo([]byte("x"), peerAddr); err != nil {
		t.Fatalf("fallback reported an error: %v", err)
	}
}

// Datagrams to the other address family are sent by WriteTo, in order
// with the batched ones.
func TestBatchConnOtherFamilyInOrder(t *testing.T) {
	c, f := newFakeBatchConn(t)
	v6 := &net.UDPAddr{IP: net.IPv6loopback, Port: 9}
	for i := range 6 {
		to := peerAddr
		if i%2 == 1 {
			to = v6
		}
		if _, err := c.WriteTo(seqPayload(i), to); err != nil {
			t.Fatal(err)
		}
	}
	expectSent(t, f, 6)
}

// Reads switch to recvmmsg after the first datagrams and return every
// datagram, in order, with its source.
func TestBatchConnReadsInBatches(t *testing.T) {
	c, f := newFakeBatchConn(t)
	src := loopbackUDP(t)
	defer func() { _ = src.Close() }()
	if err := c.SetReadBuffer(1 << 20); err != nil {
		t.Fatal(err)
	}
	const total = recvBatchAfter + 10*recvBatchMax
	for i := range total {
		if _, err := src.WriteTo(seqPayload(i), c.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	expectRead(t, c, total, 5*time.Second, seqSize, src.LocalAddr())
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.readBatches == 0 || f.readBatches > 2*(total-recvBatchAfter)/recvBatchMax {
		t.Fatalf("%d recvmmsg calls for %d datagrams queued", f.readBatches, total-recvBatchAfter)
	}
}

const receiveBufForTest = 8192

// loopbackUDP is a UDP socket on 127.0.0.1 with a port of the kernel's
// choosing; the caller (or what wraps it) closes it.
func loopbackUDP(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// On Linux the sockets pion opens get batched I/O, and a real round trip
// through sendmmsg and recvmmsg keeps every datagram and its order.
func TestBatchUDPLoopback(t *testing.T) {
	a, b := loopbackUDP(t), loopbackUDP(t)
	_ = b.SetReadBuffer(4 << 20)
	log := slog.New(slog.DiscardHandler)
	ca, cb := batchUDP(a, log), batchUDP(b, log)
	defer func() { _ = ca.Close(); _ = cb.Close() }()
	const total = 2000
	go func() {
		for i := range total {
			if _, err := ca.WriteTo(seqPayload(i), cb.LocalAddr()); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	expectRead(t, cb, total, 10*time.Second, seqSize, nil)
}
