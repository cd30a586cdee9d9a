//go:build linux

package ice

import (
	"encoding/binary"
	"log/slog"
	"net"
	"unsafe"

	"github.com/pion/transport/v2"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// batchUDP gives a UDP socket batched writes (sendmmsg); other conns are
// returned as they are.
func batchUDP(c transport.UDPConn, log *slog.Logger) transport.UDPConn {
	uc, ok := c.(*net.UDPConn)
	if !ok {
		return c
	}
	la, ok := uc.LocalAddr().(*net.UDPAddr)
	if !ok {
		return c
	}
	var bc *batchConn
	if la.IP.To4() != nil {
		bc = newBatchConn(uc, ipv4.NewPacketConn(uc), false, log)
	} else {
		bc = newBatchConn(uc, ipv6.NewPacketConn(uc), true, log)
	}
	bc.segment = udpSegmenter(uc)
	bc.coalesce, bc.readSegment = udpCoalescer(uc)
	return bc
}

// udpSegmenter returns batchConn.segment for a socket whose kernel cuts
// messages into datagrams (UDP_SEGMENT, Linux 4.18), else nil.
func udpSegmenter(uc *net.UDPConn) func(b []byte, size int) []byte {
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil
	}
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		_, gerr = unix.GetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_SEGMENT)
	}); err != nil || gerr != nil {
		return nil
	}
	return segmentControl
}

// segmentControl appends to b a UDP_SEGMENT control message for
// datagrams of size bytes.
func segmentControl(b []byte, size int) []byte {
	n := unix.CmsgSpace(2)
	b = append(b[:0], make([]byte, n)...)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = unix.SOL_UDP, unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(b[unix.CmsgLen(0):], uint16(size))
	return b
}

// udpCoalescer returns batchConn.coalesce and readSegment for a socket:
// coalesce turns UDP_GRO on (Linux 5.0).
func udpCoalescer(uc *net.UDPConn) (func() bool, func([]byte) int) {
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil, nil
	}
	coalesce := func() bool {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_GRO, 1)
		}); err != nil || serr != nil {
			return false
		}
		return true
	}
	return coalesce, readSegmentSize
}

// readSegmentSize is the datagram size of a UDP_GRO control message in
// oob, 0 if there is none.
func readSegmentSize(oob []byte) int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_UDP && m.Header.Type == unix.UDP_GRO && len(m.Data) >= 2 {
			return int(binary.NativeEndian.Uint16(m.Data))
		}
	}
	return 0
}
