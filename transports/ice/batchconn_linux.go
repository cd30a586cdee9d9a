//go:build linux

package ice

import (
	"log/slog"
	"net"

	"github.com/pion/transport/v2"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
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
	if la.IP.To4() != nil {
		return newBatchConn(uc, ipv4.NewPacketConn(uc), false, log)
	}
	return newBatchConn(uc, ipv6.NewPacketConn(uc), true, log)
}
