//go:build darwin || freebsd

package agent

import "golang.org/x/sys/unix"

// fdPeerUID returns the uid of the process at the other end of the Unix
// socket fd (LOCAL_PEERCRED).
func fdPeerUID(fd int) (int, error) {
	cred, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return 0, err
	}
	return int(cred.Uid), nil
}
