//go:build linux

package ice

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// socketBuffers reads back the receive and send buffer sizes of a socket
// (SO_RCVBUF, SO_SNDBUF) as the kernel reports them: twice the size that
// was set (socket(7): the kernel doubles it for its bookkeeping), and the
// size set is capped at net.core.rmem_max/wmem_max without an error.
func socketBuffers(c syscall.Conn) (rcv, snd int, err error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, 0, err
	}
	var gerr error
	err = rc.Control(func(fd uintptr) {
		rcv, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
		if gerr == nil {
			snd, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF)
		}
	})
	if err == nil {
		err = gerr
	}
	return rcv, snd, err
}
