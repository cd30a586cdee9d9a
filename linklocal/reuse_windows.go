//go:build windows

package linklocal

import (
	"syscall"

	"golang.org/x/sys/windows"
)

// reuseControl lets several sockets (this node, another in the same
// process, an mDNS daemon) share port 5353. Windows has no SO_REUSEPORT;
// SO_REUSEADDR lets UDP sockets share the port.
func reuseControl(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = windows.SetsockoptInt(windows.Handle(fd), windows.SOL_SOCKET, windows.SO_REUSEADDR, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
