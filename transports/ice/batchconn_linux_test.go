//go:build linux

package ice

import (
	"encoding/binary"
	"log/slog"
	"net"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// gsoSize is the size of datagram i in TestBatchUDPSegmentsKeepSizes:
// runs of one size, broken by shorter and longer ones.
func gsoSize(i int) int {
	switch {
	case i%37 == 36:
		return 300 // a shorter last datagram of a run
	case i%53 == 52:
		return 1500 // longer than the run: starts a new one
	default:
		return 1200
	}
}

// segmentingPair wraps a and b for batched I/O, closed when the test ends,
// and fails the test when the kernel refuses UDP GSO or GRO.
func segmentingPair(t *testing.T, a, b *net.UDPConn) (ca, cb *batchConn) {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	ca, cb = batchUDP(a, log).(*batchConn), batchUDP(b, log).(*batchConn)
	t.Cleanup(func() { _ = ca.Close(); _ = cb.Close() })
	if ca.segment == nil || cb.coalesce == nil {
		t.Fatal("the kernel refuses UDP_SEGMENT: this test needs Linux ≥ 5.0")
	}
	return ca, cb
}

// Through the kernel's segmented sends and joined reads (UDP GSO and
// GRO), every datagram arrives alone, whole, in order, with its size.
func TestBatchUDPSegmentsKeepSizes(t *testing.T) {
	a, b := loopbackUDP(t), loopbackUDP(t)
	_ = b.SetReadBuffer(4 << 20)
	ca, cb := segmentingPair(t, a, b)
	const total = 3000
	go func() {
		p := make([]byte, 1500)
		for i := range total {
			binary.BigEndian.PutUint32(p, uint32(i))
			if _, err := ca.WriteTo(p[:gsoSize(i)], cb.LocalAddr()); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	expectRead(t, cb, total, 10*time.Second, gsoSize, ca.LocalAddr())
}

// A run flushed at once leaves as one segmented message (UDP GSO) and is
// read as one joined message (UDP GRO), cut back into its datagrams.
func TestBatchUDPJoinsARun(t *testing.T) {
	a, b := loopbackUDP(t), loopbackUDP(t)
	ca, cb := segmentingPair(t, a, b)
	// Batched and joined reads from the start: the kernel joins what
	// arrives after UDP_GRO is on.
	cb.rplain = recvBatchAfter
	cb.makeReadBatch()
	// The writer is not started: flush sends the run synchronously.
	var batch []datagram
	for i := range 20 {
		p := make([]byte, 1200-i/19*900) // the last one shorter
		binary.BigEndian.PutUint32(p, uint32(i))
		batch = append(batch, datagram{buf: &p, addr: cb.LocalAddr()})
	}
	ca.flush(batch, newSendMsgs())
	expectRead(t, cb, len(batch), 10*time.Second, func(i int) int { return len(*batch[i].buf) }, nil)
	if cb.rjoined != 1 || cb.rn != 1 {
		t.Fatalf("%d joined messages in %d read, want the run as one", cb.rjoined, cb.rn)
	}
}

// One message carries datagrams to one address, all of the first's size
// but a shorter last one, within segmentBytesMax.
func TestSegmentRun(t *testing.T) {
	to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}
	other := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 10}
	dg := func(n int, addr net.Addr) datagram {
		b := make([]byte, n)
		return datagram{buf: &b, addr: addr}
	}
	c := &batchConn{segment: segmentControl}
	for _, tc := range []struct {
		name  string
		batch []datagram
		want  int
	}{
		{"equal sizes", []datagram{dg(100, to), dg(100, to), dg(100, to)}, 3},
		{"shorter last", []datagram{dg(100, to), dg(100, to), dg(40, to), dg(100, to)}, 3},
		{"longer breaks", []datagram{dg(100, to), dg(120, to)}, 1},
		{"other address", []datagram{dg(100, to), dg(100, other)}, 1},
		{"bytes bound", []datagram{dg(40000, to), dg(40000, to)}, 1},
	} {
		if got := c.segmentRun(tc.batch); got != tc.want {
			t.Errorf("%s: %d datagrams in one message, want %d", tc.name, got, tc.want)
		}
	}
	c.segment = nil
	if got := c.segmentRun([]datagram{dg(100, to), dg(100, to)}); got != 1 {
		t.Errorf("without GSO: %d datagrams in one message", got)
	}
}

// The control messages written and read are the kernel's layout.
func TestSegmentControl(t *testing.T) {
	b := segmentControl(nil, 1228)
	msgs, err := unix.ParseSocketControlMessage(b)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("%d messages, %v", len(msgs), err)
	}
	if h := msgs[0].Header; h.Level != unix.SOL_UDP || h.Type != unix.UDP_SEGMENT || binary.NativeEndian.Uint16(msgs[0].Data) != 1228 {
		t.Fatalf("control message %+v %x", h, msgs[0].Data)
	}
	gro := make([]byte, unix.CmsgSpace(4))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&gro[0]))
	h.Level, h.Type = unix.SOL_UDP, unix.UDP_GRO
	h.SetLen(unix.CmsgLen(4))
	binary.NativeEndian.PutUint32(gro[unix.CmsgLen(0):], 1265)
	if got := readSegmentSize(gro); got != 1265 {
		t.Fatalf("UDP_GRO size %d, want 1265", got)
	}
	if got := readSegmentSize(nil); got != 0 {
		t.Fatalf("no control message: size %d", got)
	}
}
