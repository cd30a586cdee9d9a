//go:build windows

package agent

import (
	"errors"
	"io/fs"
	"net"
)

// listenPrivate listens on the unix socket path. Windows has no umask: the
// socket lives in the user's own runtime directory.
func listenPrivate(path string) (*net.UnixListener, error) {
	return net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
}

// fileOwner is not known on Windows.
func fileOwner(fs.FileInfo) (int, bool) { return 0, false }

// peerUID is not known on Windows: the control socket's checks fail
// closed, so the agent cannot be controlled there.
func peerUID(*net.UnixConn) (int, error) {
	return 0, errors.New("reading a Unix socket peer's uid is not supported on Windows")
}
