//go:build !linux

package ice

import (
	"errors"
	"syscall"
)

// socketBuffers is only implemented on Linux.
func socketBuffers(syscall.Conn) (rcv, snd int, err error) {
	return 0, 0, errors.ErrUnsupported
}
