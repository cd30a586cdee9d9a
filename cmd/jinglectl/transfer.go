package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/spf13/pflag"
	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/cmd/jinglectl/internal/agent"
	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/xmppclient"
)

// What send and send --local share: the time limits, the files given on
// the command line (standard input and directories included), and the
// transfer itself once the recipient is found.

// timeFlags are the time limits of a transfer.
type timeFlags struct {
	stall    time.Duration // --timeout: no progress for that long
	deadline time.Duration // --deadline: the whole command
	login    time.Duration // --login-timeout: logging in and finding the recipient
}

// defaultLoginTimeout bounds the login and the recipient's look-up.
const defaultLoginTimeout = 30 * time.Second

func addTimeFlags(fs *pflag.FlagSet) *timeFlags {
	t := &timeFlags{}
	fs.DurationVar(&t.stall, "timeout", 0, "give up when nothing moved for `DURATION` (a stall; default: no limit)")
	fs.DurationVar(&t.deadline, "deadline", 0, "give up after `DURATION` in all, moving or not (default: no limit)")
	fs.DurationVar(&t.login, "login-timeout", defaultLoginTimeout, "give up when logging in and finding the recipient take longer than `DURATION`")
	return t
}

func (t *timeFlags) check() error {
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"timeout", t.stall}, {"deadline", t.deadline}, {"login-timeout", t.login}} {
		if f.d < 0 {
			return usagef("--%s %v: want a positive duration", f.name, f.d)
		}
	}
	return nil
}

// errStalled is the cause of a transfer stopped by --timeout.
var errStalled = errors.New("no progress")

// stallWatch cancels a context when touch has not been called for d.
type stallWatch struct {
	d      time.Duration
	mu     sync.Mutex
	timer  *time.Timer
	fired  bool
	cancel context.CancelCauseFunc
}

// watchStall returns ctx with a stall limit of d (none when d is 0).
func watchStall(ctx context.Context, d time.Duration) (context.Context, *stallWatch) {
	w := &stallWatch{d: d}
	if d <= 0 {
		return ctx, w
	}
	ctx, w.cancel = context.WithCancelCause(ctx)
	w.timer = time.AfterFunc(d, func() {
		w.mu.Lock()
		w.fired = true
		w.mu.Unlock()
		w.cancel(fmt.Errorf("%w for %v (--timeout)", errStalled, d))
	})
	return ctx, w
}

// touch records progress.
func (w *stallWatch) touch() {
	if w.timer == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.fired {
		w.timer.Reset(w.d)
	}
}

// stop ends the watch and reports whether it fired.
func (w *stallWatch) stop() bool {
	if w.timer == nil {
		return false
	}
	w.timer.Stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cancel(nil)
	return w.fired
}

// sendItem is one file to send: its path to show and its source.
type sendItem struct {
	path  string
	src   filetransfer.Source
	stdin bool
}

// maxDirFiles bounds the files one directory may expand to.
const maxDirFiles = 10000

// collectFiles turns the FILE arguments into what to send: "-" is
// standard input (named stdinName), a directory is each regular file
// under it, offered with its path relative to the directory's parent
// ("photos/2024/a.jpg"). The cleanup removes the copy of standard input.
func collectFiles(e env, args []string, stdinName string) (items []sendItem, cleanup func(), err error) {
	cleanup = func() {}
	stdinSeen := false
	for _, a := range args {
		switch fi, serr := os.Stat(a); {
		case a == "-":
			if stdinSeen {
				return nil, cleanup, usagef("- (standard input) given twice")
			}
			stdinSeen = true
			it, done, err := stdinItem(e, stdinName)
			if err != nil {
				return nil, cleanup, err
			}
			cleanup = done
			items = append(items, it)
		case serr == nil && fi.IsDir():
			dir, err := dirItems(e, a, maxDirFiles-len(items))
			if err != nil {
				return nil, cleanup, err
			}
			items = append(items, dir...)
		default:
			if err := checkSendable(a); err != nil {
				return nil, cleanup, err
			}
			src, err := filetransfer.FileSource(a)
			if err != nil {
				return nil, cleanup, usageError{err.Error()}
			}
			items = append(items, sendItem{path: absPath(a), src: src})
		}
	}
	if stdinName != "" && !stdinSeen {
		return nil, cleanup, usagef("--name names standard input: give - as a FILE")
	}
	return items, cleanup, nil
}

// stdinItem copies standard input to a temporary file: a Jingle offer
// states the size of the file, which a pipe does not know in advance.
func stdinItem(e env, name string) (sendItem, func(), error) {
	if name == "" {
		name = "stdin"
	}
	if filetransfer.SanitizeName(name, 0) != name {
		return sendItem{}, nil, usagef("--name %q: want a plain file name", name)
	}
	f, err := os.CreateTemp("", "jinglectl-stdin-*")
	if err != nil {
		return sendItem{}, nil, fmt.Errorf("copying standard input: %w", err)
	}
	done := func() { f.Close(); os.Remove(f.Name()) }
	if _, err := io.Copy(f, e.stdin); err != nil {
		done()
		return sendItem{}, nil, fmt.Errorf("copying standard input: %w", err)
	}
	src, err := filetransfer.FileSource(f.Name())
	if err != nil {
		done()
		return sendItem{}, nil, err
	}
	src.Name, src.MediaType = name, "application/octet-stream"
	return sendItem{path: "-", src: src, stdin: true}, done, nil
}

// dirItems lists the regular files under dir. Symbolic links and special
// files are skipped (said on standard error): following links could send
// what is outside the directory.
func dirItems(e env, dir string, room int) ([]sendItem, error) {
	base := filepath.Dir(filepath.Clean(dir))
	var items []sendItem
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return usagef("%s: %v", p, unwrapPath(err))
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			fmt.Fprintf(e.stderr, "jinglectl: send: skipping %s: not a regular file\n", safeText(p))
			return nil
		}
		if len(items) >= room {
			return usagef("%s: more than %d files (the limit of one send)", dir, maxDirFiles)
		}
		src, err := filetransfer.FileSource(p)
		if err != nil {
			return usageError{err.Error()}
		}
		rel, err := filepath.Rel(base, p)
		if err != nil {
			return usageError{err.Error()}
		}
		src.Name = filepath.ToSlash(rel)
		items = append(items, sendItem{path: absPath(p), src: src})
		return nil
	})
	if err == nil && len(items) == 0 {
		err = usagef("%s: no regular file to send", dir)
	}
	return items, err
}

// transfer is a send once the recipient is known: what send and send
// --local share.
type transfer struct {
	e        env
	cmd      string
	jsonOut  bool
	quiet    bool
	out      renderer
	peer     jid.JID // who the files go to (for error events)
	sig      context.Context
	watch    *stallWatch
	hasStdin bool
}

// failAll reports an error of the whole command (as a JSON event too with
// --json) and returns its status.
func (t *transfer) failAll(err error) int {
	if t.jsonOut {
		t.out.event(agent.Event{Event: agent.EventError, Time: time.Now().UTC(), Peer: t.peer.String(), Outcome: agent.Outcome(err), Error: err.Error()})
	}
	return fail(t.e, t.cmd, err)
}

// connectFailed explains an error of logging in or of finding the
// recipient under the connect timeout cctx.
func (t *transfer) connectFailed(ctx, cctx context.Context, d time.Duration, err error, explain func(error) error) int {
	switch {
	case ctx.Err() != nil:
		return t.failAll(fmt.Errorf("%w: while connecting", context.Cause(ctx)))
	case cctx.Err() != nil:
		return t.failAll(fmt.Errorf("%w: not logged in within %v (--login-timeout)", xmppclient.ErrConnect, d))
	}
	return t.failAll(explain(err))
}

// send offers items to peer over the transports mode allows among those
// info advertises, and returns the exit status.
func (t *transfer) send(ctx context.Context, conn *agent.Conn, peer jid.JID, info xmppclient.Info, mode string, items []sendItem, o agent.SendOptions) int {
	transports, err := agent.ChooseTransports(mode, info)
	if err != nil {
		return t.failAll(err)
	}
	outgoing := make([]agent.Outgoing, len(items))
	for i, it := range items {
		outgoing[i] = agent.Outgoing{ID: strconv.Itoa(i + 1), Path: it.path, Source: it.src}
	}
	status := exitOK
	o.Transports = transports
	_, err = conn.Send(ctx, peer, outgoing, o, func(ev agent.Event) {
		t.watch.touch()
		t.out.event(ev)
		if ev.Event == agent.EventError && status == exitOK {
			status = outcomeStatus(ev.Outcome)
		}
	})
	t.out.finish()
	stalled := t.watch.stop()
	switch {
	case stalled:
		if status == exitOK {
			// no file event said it
			fmt.Fprintf(t.e.stderr, "jinglectl: %s: %v\n", t.cmd, context.Cause(ctx))
		}
		return exitTimeout
	case t.sig.Err() != nil && status != exitOK:
		if !t.hasStdin {
			fmt.Fprintf(t.e.stderr, "jinglectl: %s: interrupted: run the same command again to resume\n", t.cmd)
		}
		return exitCanceled
	case status == exitOK && err != nil:
		// No file event reported it (should not happen).
		return fail(t.e, t.cmd, err)
	}
	return status
}
