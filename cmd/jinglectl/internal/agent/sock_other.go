//go:build !linux

package agent

import (
	"io/fs"
	"net"
	"syscall"
)

func fileOwner(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}

// peerUID is not implemented outside Linux: the socket's mode (0600) and
// owner check protect it.
func peerUID(c *net.UnixConn) (int, bool) { return 0, false }
