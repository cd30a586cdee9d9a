//go:build !linux && !windows && !darwin && !freebsd

package agent

import (
	"errors"
	"net"
)

// peerUID is not implemented on this system: the control socket's peer
// check fails closed, so the agent cannot be controlled here.
func peerUID(c *net.UnixConn) (int, error) {
	return 0, errors.New("reading a Unix socket peer's uid is not supported on this system")
}
