package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"
)

// ErrControl is wrapped by the errors of the control socket: no agent,
// a socket owned by someone else, a broken exchange.
var ErrControl = errors.New("control socket")

// Control protocol limits.
const (
	// MaxRequestBytes bounds one request line.
	MaxRequestBytes = 1 << 20
	// MaxRequestFiles bounds the files of one send request.
	MaxRequestFiles = 10000
	// maxReplyBytes bounds one reply line read by a client.
	maxReplyBytes = 16 << 20
)

// Control operations.
const (
	OpSend   = "send"
	OpStatus = "status"
	OpCancel = "cancel"
	OpWatch  = "watch"
)

// Reply events of the control protocol besides the transfer events.
const (
	ReplyStatus   = "status"   // Status is set
	ReplyCanceled = "canceled" // the transfer ID was cancelled
	ReplyEnd      = "end"      // the stream of replies is over
)

// Request is one line a client writes to the control socket.
type Request struct {
	Op string `json:"op"`
	// send: the recipient, the files (absolute paths) and the transport
	// mode; Wait streams the files' events until each is finished.
	Peer      string   `json:"peer,omitempty"`
	Files     []string `json:"files,omitempty"`
	Transport string   `json:"transport,omitempty"`
	// Encrypt is the end-to-end encryption mode: EncryptAuto (when
	// empty), EncryptAlways or EncryptNever.
	Encrypt string `json:"encrypt,omitempty"`
	Wait    bool   `json:"wait,omitempty"`
	// cancel: the transfers to cancel.
	IDs []string `json:"ids,omitempty"`
}

// Reply is one line the agent writes back: a transfer Event, or a reply
// of its own (status, canceled, end; error for a refused request).
type Reply struct {
	Event
	Status *Status  `json:"status,omitempty"`
	IDs    []string `json:"ids,omitempty"`
}

// Status describes the agent.
type Status struct {
	JID        string     `json:"jid"`
	Connected  bool       `json:"connected"`
	Since      time.Time  `json:"since,omitzero"`
	Server     string     `json:"server,omitempty"` // "host:port" the connection goes through
	Reconnects int        `json:"reconnects"`
	Sessions   int        `json:"sessions"`
	Queued     int        `json:"queued"`
	Transfers  []Transfer `json:"transfers"`
}

// Transfer states.
const (
	StateQueued   = "queued"
	StateActive   = "active"
	StateRetrying = "retrying"
	StateDone     = "done"
	StateFailed   = "failed"
	StateCanceled = "canceled"
)

// Transfer is one file the agent sends or receives, as status shows it.
type Transfer struct {
	ID        string    `json:"id"`
	Direction string    `json:"direction"`
	Peer      string    `json:"peer"`
	File      string    `json:"file"`
	Path      string    `json:"path,omitempty"`
	State     string    `json:"state"`
	Size      int64     `json:"size"`
	Bytes     int64     `json:"bytes"`
	Offset    int64     `json:"offset,omitempty"`
	Rate      float64   `json:"rate,omitempty"`
	Transport string    `json:"transport,omitempty"`
	Route     string    `json:"route,omitempty"`
	Attempts  int       `json:"attempts,omitempty"`
	Outcome   string    `json:"outcome,omitempty"`
	Error     string    `json:"error,omitempty"`
	Updated   time.Time `json:"updated"`
}

// ListenControl creates the control socket at path: a Unix socket of
// mode 0600 in a directory created with mode 0700 if missing. It refuses
// a directory that is a symbolic link, is owned by another user or that
// others can write to (checkSocketDir), a path that exists and is not a
// socket, a socket owned by another user, and a socket an agent still
// listens on; a stale socket of ours is replaced. Nothing is ever chmod-ed
// through a path: the directory and the socket get their modes when they
// are created (mkdir mode, umask).
func ListenControl(path string) (*net.UnixListener, error) {
	dir := filepath.Dir(path)
	dirInfo, err := prepareSocketDir(dir)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Lstat(path); err == nil {
		if err := checkSocketOwner(path, fi); err != nil {
			return nil, err
		}
		c, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			c.Close()
			return nil, fmt.Errorf("%w: an agent is already listening on %s", ErrControl, path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("%w: removing the stale socket: %v", ErrControl, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %v", ErrControl, err)
	}
	ln, err := listenPrivate(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrControl, err)
	}
	// The directory is ours and nobody else can write to it, so what is
	// at path now is the socket just bound; check it anyway, and that the
	// directory was not swapped meanwhile.
	if err := checkBoundSocket(path, dir, dirInfo); err != nil {
		ln.SetUnlinkOnClose(false)
		ln.Close()
		return nil, err
	}
	ln.SetUnlinkOnClose(true)
	return ln, nil
}

// prepareSocketDir creates the socket's directory with mode 0700 if it is
// missing (its parents too), then checks it with checkSocketDir.
func prepareSocketDir(dir string) (fs.FileInfo, error) {
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrControl, err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("%w: %v", ErrControl, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrControl, err)
	}
	return fi, checkSocketDir(dir, fi)
}

// checkSocketDir accepts the socket's directory only if it is a real
// directory (lstat: a symbolic link is refused, never followed), owned by
// this process's user, that neither its group nor others can write to.
// Someone else's directory, or one others can write to, would let them
// replace or delete the socket, or plant a link there.
func checkSocketDir(dir string, fi fs.FileInfo) error {
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("%w: the socket directory %s is a symbolic link: refusing to use it", ErrControl, dir)
	case !fi.IsDir():
		return fmt.Errorf("%w: the socket directory %s is not a directory", ErrControl, dir)
	}
	uid, ok := fileOwner(fi)
	if !ok {
		return fmt.Errorf("%w: cannot tell who owns the socket directory %s: refusing to use it", ErrControl, dir)
	}
	if uid != os.Getuid() {
		return fmt.Errorf("%w: the socket directory %s is owned by uid %d, not by you (uid %d): refusing to use it", ErrControl, dir, uid, os.Getuid())
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("%w: others can write to the socket directory %s (mode %04o): refusing to use it; remove it or use a private directory", ErrControl, dir, perm)
	}
	return nil
}

// checkBoundSocket checks the socket ListenControl just bound: a socket of
// ours that only we can use, in the directory checked before.
func checkBoundSocket(path, dir string, dirInfo fs.FileInfo) error {
	di, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrControl, err)
	}
	if !os.SameFile(di, dirInfo) {
		return fmt.Errorf("%w: the socket directory %s was replaced while the socket was created", ErrControl, dir)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrControl, err)
	}
	if err := checkSocketOwner(path, fi); err != nil {
		return err
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%w: the socket %s was created with mode %04o, not 0600", ErrControl, path, perm)
	}
	return nil
}

// checkSocketOwner accepts only a socket owned by this process's user.
func checkSocketOwner(path string, fi fs.FileInfo) error {
	if fi.Mode()&fs.ModeSocket == 0 {
		return fmt.Errorf("%w: %s exists and is not a socket", ErrControl, path)
	}
	uid, ok := fileOwner(fi)
	if !ok {
		return fmt.Errorf("%w: cannot tell who owns %s: refusing to use it", ErrControl, path)
	}
	if uid != os.Getuid() {
		return fmt.Errorf("%w: %s is owned by uid %d, not by you (uid %d): refusing to use it", ErrControl, path, uid, os.Getuid())
	}
	return nil
}

// checkPeer accepts a control connection only when the uid of the process
// at the other end can be read and is this process's user (or, for
// allowRoot, root). It fails closed: a uid that cannot be read refuses
// the connection.
func checkPeer(c *net.UnixConn, allowRoot bool) error {
	uid, err := peerUID(c)
	if err != nil {
		return fmt.Errorf("%w: cannot read the uid of the process on the other end: %v", ErrControl, err)
	}
	if uid == os.Getuid() || (allowRoot && uid == 0) {
		return nil
	}
	return fmt.Errorf("%w: the process on the other end runs as uid %d, not as you (uid %d)", ErrControl, uid, os.Getuid())
}

// DialControl connects to the agent's control socket, after checking
// that the socket belongs to this user and that the process listening on
// it runs as this user.
func DialControl(ctx context.Context, path string) (*ControlClient, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: no agent at %s (start one with 'jinglectl agent')", ErrControl, path)
		}
		return nil, fmt.Errorf("%w: %v", ErrControl, err)
	}
	if err := checkSocketOwner(path, fi); err != nil {
		return nil, err
	}
	if di, err := os.Lstat(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrControl, err)
	} else if err := checkSocketDir(filepath.Dir(path), di); err != nil {
		return nil, err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("%w: no agent answers at %s: %v", ErrControl, path, unwrapSyscall(err))
	}
	uc := c.(*net.UnixConn)
	if err := checkPeer(uc, false); err != nil {
		uc.Close()
		return nil, fmt.Errorf("%w; refusing to use %s", err, path)
	}
	sc := bufio.NewScanner(uc)
	sc.Buffer(make([]byte, 64<<10), maxReplyBytes)
	return &ControlClient{c: uc, sc: sc}, nil
}

func unwrapSyscall(err error) error {
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se.Err
	}
	return err
}

// ControlClient is a connection to the agent.
type ControlClient struct {
	c  *net.UnixConn
	sc *bufio.Scanner
}

// Send writes a request.
func (c *ControlClient) Send(r Request) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if _, err := c.c.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("%w: %v", ErrControl, err)
	}
	return nil
}

// Next reads the next reply.
func (c *ControlClient) Next() (Reply, error) {
	if !c.sc.Scan() {
		if err := c.sc.Err(); err != nil {
			return Reply{}, fmt.Errorf("%w: %v", ErrControl, err)
		}
		return Reply{}, fmt.Errorf("%w: the agent closed the connection", ErrControl)
	}
	var r Reply
	if err := json.Unmarshal(c.sc.Bytes(), &r); err != nil {
		return Reply{}, fmt.Errorf("%w: malformed reply: %v", ErrControl, err)
	}
	return r, nil
}

// Close closes the connection.
func (c *ControlClient) Close() error { return c.c.Close() }
