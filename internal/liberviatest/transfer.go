package liberviatest

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jinglekit/jinglekit/internal/testproc"
)

// Lines libervia-cli 0.9 prints (with -vv), timed by Send and Receive.
const (
	// lineRequested: file send, once the backend has sent the offer.
	lineRequested = "File request sent to"
	// lineReceived: file receive, once the file is written.
	lineReceived = "File received successfully"
)

// DefaultTimeout bounds a Send or a Receive (the scripts' SEND_TIMEOUT and
// RECEIVE_TIMEOUT) when its options give none.
const DefaultTimeout = 150 * time.Second

// readyTimeout bounds the wait for a receiver to listen.
const readyTimeout = 90 * time.Second

// SendOptions configure Send.
type SendOptions struct {
	// Encrypt sends with XEP-0391 JET-OMEMO (libervia-cli --encrypt); OMEMO
	// must be on toward the peer (StartOMEMO).
	Encrypt bool
	// Timeout bounds the transfer (0: DefaultTimeout).
	Timeout time.Duration
}

// Sent is the outcome of Send.
type Sent struct {
	// Requested is when libervia-cli said that the offer was sent (its
	// "File request sent to" line); zero if it never said so.
	Requested time.Time
	// Done is when send-file said the file was sent (the sender's view:
	// Libervia does not wait for the receiver's verdict).
	Done time.Time
	// SHA256 is the hex digest of the file sent.
	SHA256 string
	// Output is what send-file printed.
	Output string
}

var sentRE = regexp.MustCompile(`send-file: OK .* sha256=([0-9a-f]+)`)

// Send sends the file at path from profile's backend to the full JID to
// with send-file (libervia-cli file send), and returns when it exits.
func (h *Harness) Send(ctx context.Context, profile, to, path string, o SendOptions) (Sent, error) {
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout+10*time.Second)
	defer cancel()
	env := []string{"SEND_TIMEOUT=" + strconv.Itoa(int(timeout.Seconds()))}
	if o.Encrypt {
		env = append(env, "SEND_ENCRYPT=1")
	}
	out := &lineLog{}
	cmd := h.command(ctx, env, "./send-file", profile, to, path)
	cmd.Stdout, cmd.Stderr = out, out
	err := testproc.Run(cmd)
	s := Sent{Done: time.Now(), Output: out.String()}
	s.Requested, _ = out.find(lineRequested)
	if err != nil {
		return s, fmt.Errorf("liberviatest: send-file %s → %s: %w\n%s", profile, to, err, tail(s.Output, 20))
	}
	m := sentRE.FindStringSubmatch(s.Output)
	if m == nil {
		return s, fmt.Errorf("liberviatest: send-file %s → %s said no OK:\n%s", profile, to, tail(s.Output, 20))
	}
	s.SHA256 = m[1]
	return s, nil
}

// ReceiveOptions configure Receive.
type ReceiveOptions struct {
	// Timeout bounds the wait for the offer and the transfer (0:
	// DefaultTimeout).
	Timeout time.Duration
	// Senders, if any, are the only JIDs accepted.
	Senders []string
}

// Receiver is a running receive-file, which accepts one file.
type Receiver struct {
	proc *testproc.Process
	out  *lineLog
	stop context.CancelFunc
}

// Received is what a Receiver got.
type Received struct {
	// Path, Size and SHA256 describe the file written.
	Path   string
	Size   int64
	SHA256 string
	// HashVerified says that Libervia compared the sender's checksum with
	// its own.
	HashVerified bool
	// At is when libervia-cli said the file was received (its "File
	// received successfully" line).
	At time.Time
}

// Receive starts receive-file on profile's backend, accepting one file
// into dir, and returns once it listens (at most 90 s). Wait collects the
// file; Stop ends it early.
func (h *Harness) Receive(ctx context.Context, profile, dir string, o ReceiveOptions) (*Receiver, error) {
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	// The receiver outlives this call: its own context, ended by Stop or
	// at the timeout.
	pctx, stop := context.WithTimeout(context.WithoutCancel(ctx), timeout+readyTimeout+10*time.Second)
	args := append([]string{profile, dir}, o.Senders...)
	cmd := h.command(pctx, []string{"RECEIVE_TIMEOUT=" + strconv.Itoa(int(timeout.Seconds()))}, "./receive-file", args...)
	r := &Receiver{out: &lineLog{}, stop: stop}
	cmd.Stdout, cmd.Stderr = r.out, r.out
	proc, err := testproc.Start(cmd)
	if err != nil {
		stop()
		return nil, fmt.Errorf("liberviatest: receive-file: %w", err)
	}
	r.proc = proc
	rctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if _, err := r.out.wait(rctx, "receive-file: ready", proc.Done()); err != nil {
		r.Stop()
		return nil, fmt.Errorf("liberviatest: receive-file %s never got ready: %w\n%s", profile, err, tail(r.out.String(), 20))
	}
	return r, nil
}

// Output returns what receive-file printed so far.
func (r *Receiver) Output() string { return r.out.String() }

// Stop ends the receiver if it still runs.
func (r *Receiver) Stop() {
	r.stop()
	<-r.proc.Done()
}

var receivedRE = regexp.MustCompile(`receive-file: OK (\S+) size=(\d+) sha256=([0-9a-f]+) hash_verified=(\w+)`)

// Wait waits for receive-file to exit (when ctx ends first it is stopped)
// and returns the file it got.
func (r *Receiver) Wait(ctx context.Context) (Received, error) {
	select {
	case <-r.proc.Done():
	case <-ctx.Done():
		r.Stop()
		return Received{}, fmt.Errorf("liberviatest: receive-file: %w\n%s", ctx.Err(), tail(r.out.String(), 20))
	}
	r.stop()
	out := r.out.String()
	if err := r.proc.Wait(); err != nil {
		return Received{}, fmt.Errorf("liberviatest: receive-file: %w\n%s", err, tail(out, 20))
	}
	m := receivedRE.FindStringSubmatch(out)
	if m == nil {
		return Received{}, fmt.Errorf("liberviatest: receive-file reported no file:\n%s", tail(out, 20))
	}
	size, _ := strconv.ParseInt(m[2], 10, 64) // \d+ of a file size
	rec := Received{Path: m[1], Size: size, SHA256: m[3], HashVerified: m[4] == "yes"}
	rec.At, _ = r.out.find(lineReceived)
	return rec, nil
}

// lineLog collects a command's output and the time each line arrived.
type lineLog struct {
	mu      sync.Mutex
	buf     strings.Builder
	partial []byte
	lines   []timedLine
	changed chan struct{} // closed and replaced at each new line
}

type timedLine struct {
	at   time.Time
	text string
}

func (l *lineLog) Write(p []byte) (int, error) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	l.partial = append(l.partial, p...)
	added := false
	for {
		i := strings.IndexByte(string(l.partial), '\n')
		if i < 0 {
			break
		}
		l.lines = append(l.lines, timedLine{now, string(l.partial[:i])})
		l.partial = l.partial[i+1:]
		added = true
	}
	if added && l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
	return len(p), nil
}

func (l *lineLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// find returns when the first line containing s arrived.
func (l *lineLog) find(s string) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok, _ := l.findLocked(s)
	return t, ok
}

func (l *lineLog) findLocked(s string) (time.Time, bool, chan struct{}) {
	for _, ln := range l.lines {
		if strings.Contains(ln.text, s) {
			return ln.at, true, nil
		}
	}
	if l.changed == nil {
		l.changed = make(chan struct{})
	}
	return time.Time{}, false, l.changed
}

// errExited says that the command ended before printing the line waited for.
var errExited = errors.New("exited")

// wait waits for a line containing s; exited ends the wait early.
func (l *lineLog) wait(ctx context.Context, s string, exited <-chan struct{}) (time.Time, error) {
	for {
		l.mu.Lock()
		t, ok, changed := l.findLocked(s)
		l.mu.Unlock()
		if ok {
			return t, nil
		}
		select {
		case <-changed:
		case <-exited:
			if t, ok := l.find(s); ok {
				return t, nil
			}
			return time.Time{}, errExited
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}
