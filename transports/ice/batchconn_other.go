//go:build !linux

package ice

import (
	"log/slog"

	"github.com/pion/transport/v2"
)

// batchUDP returns c: batched writes are used on Linux only, where
// sendmmsg exists (elsewhere x/net would send one datagram per call
// anyway), so every write is the socket's own WriteTo.
func batchUDP(c transport.UDPConn, _ *slog.Logger) transport.UDPConn { return c }
