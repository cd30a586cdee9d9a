//go:build linux || darwin || freebsd

package agent

import "net"

// peerUID returns the uid of the process at the other end of c, read by
// the platform's peer-credential socket option (fdPeerUID).
func peerUID(c *net.UnixConn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var uid int
	var uerr error
	if err := raw.Control(func(fd uintptr) {
		uid, uerr = fdPeerUID(int(fd))
	}); err != nil {
		return 0, err
	}
	if uerr != nil {
		return 0, uerr
	}
	return uid, nil
}
