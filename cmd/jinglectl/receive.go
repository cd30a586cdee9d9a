package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"
	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/cmd/jinglectl/internal/agent"
	"github.com/jinglekit/jinglekit/xmppclient"
)

const receiveUsage = `Usage: jinglectl receive [flags]

Receive logs in and waits for Jingle file offers. Offers are taken only
from allowed senders: the JIDs given with --accept-from (a bare JID allows
all its resources), or, when none is given, the roster contacts with a
mutual presence subscription. Anyone else is declined.

Each file is written to DIR as NAME.part and renamed to NAME only once its
hash is verified; an existing file is never replaced ("NAME (1).ext" is
used instead). An interrupted transfer leaves NAME.part, which a new offer
of the same file by the same sender resumes.

DIR must be writable: receive checks it at start (exit 2). Declined offers
are reported on standard error with their sender and the reason.

Receive runs until interrupted (exit status 0), or with --once until the
first session from an allowed sender is over: then the exit status is that
session's (0 when every file arrived verified). --output PATH (or - for
standard output) receives one file, like --once, and writes it there once
verified.

With --local, receive works without a server (XEP-0174 serverless
mode): see jinglectl receive --local --help.

Example:
  JINGLECTL_PASSWORD=… jinglectl receive --jid bob@example.org --dir ~/Downloads --accept-from alice@example.org --once
  jinglectl receive --accept-from alice@example.org --output - | tar x
`

// receiveFlags are receive's flags in server mode.
type receiveFlags struct {
	fs         *pflag.FlagSet
	acct       *accountFlags
	tf         *transferFlags
	dir        string
	acceptFrom stringList
	once       bool
	maxSize    int64
	jsonOut    bool
	output     string
	checkLocal func() error
}

func newReceiveFlags() *receiveFlags {
	f := &receiveFlags{fs: newFlagSet("receive")}
	fs := f.fs
	f.acct = addAccountFlags(fs)
	f.tf = addTransferFlags(fs, false)
	fs.StringVar(&f.dir, "dir", "", "receive into `DIR` (default: the configuration's, else the current directory)")
	fs.Var(&f.acceptFrom, "accept-from", "accept files from `JID` only (repeatable; default: mutual roster contacts)")
	fs.BoolVar(&f.once, "once", false, "exit after one session, with its result")
	fs.Var(sizeFlag{&f.maxSize}, "max-size", "decline files larger than `SIZE` (eg. 100M; default 8G)")
	fs.BoolVar(&f.jsonOut, "json", false, "print one JSON event per line instead of text")
	fs.StringVarP(&f.output, "output", "o", "", "receive one file (implies --once) and write it to `PATH`, or to standard output for -, once verified")
	f.checkLocal = addLocalOnlyFlags(fs, true)
	return f
}

func runReceive(args []string, e env) int {
	if hasLocalFlag(args) {
		return runReceiveLocal(args, e)
	}
	f := newReceiveFlags()
	usage := func(w io.Writer) { commandUsage(w, receiveUsage, f.fs, true) }
	if status, ok := parseFlags(f.fs, args, e, usage); !ok {
		return status
	}
	if err := f.checkLocal(); err != nil {
		return fail(e, "receive", err)
	}
	if f.fs.NArg() != 0 {
		return usageLine(e, "receive", "no arguments expected")
	}
	cfg, log, err := accountSetup(e, f.acct, f.tf)
	if err != nil {
		return fail(e, "receive", err)
	}
	allow, cleanup, err := f.apply(&cfg)
	defer cleanup()
	if err != nil {
		return fail(e, "receive", err)
	}
	ctx, stop := signalContext()
	defer stop()
	r := &receiver{e: e, f: f, cfg: cfg, allow: allow, sessions: make(chan agent.SessionSummary, 16)}
	re := e
	if f.output == "-" {
		re.stdout = e.stderr // standard output carries the file
	}
	r.out = newRenderer(re, "receive", f.jsonOut, f.acct.out.quiet)
	r.out.declinedBecause(f.policyText(allow))
	conn, err := agent.Connect(ctx, agent.Options{
		Config:  cfg,
		Logger:  log,
		OnEvent: r.out.event,
		Receive: &agent.ReceiveOptions{Dir: cfg.Dir, AcceptFrom: allow, MaxSize: cfg.MaxSize, OnSession: r.onSession},
	})
	if err != nil {
		if ctx.Err() != nil {
			return exitCanceled
		}
		return fail(e, "receive", connectError(cfg, err))
	}
	r.conn = conn
	if !f.jsonOut && !f.acct.out.quiet {
		fmt.Fprintf(e.stderr, "jinglectl: receive: waiting for files as %s into %s (from %s)\n", conn.LocalAddr(), f.shownDir(cfg), f.policyText(allow))
	}
	return r.loop(ctx)
}

// apply puts the flags in the configuration and checks them; with
// --output the files go to a temporary directory that cleanup removes.
func (f *receiveFlags) apply(cfg *agent.Config) (allow []jid.JID, cleanup func(), err error) {
	cleanup = func() {}
	applyOverrides(f.fs, cfg, []override{
		{"dir", func(c *agent.Config) { c.Dir = f.dir }},
		{"accept-from", func(c *agent.Config) { c.AcceptFrom = f.acceptFrom }},
		{"max-size", func(c *agent.Config) { c.MaxSize = f.maxSize }},
	})
	for _, s := range cfg.AcceptFrom {
		j, err := jid.Parse(s)
		if err != nil || s == "" {
			return nil, cleanup, usagef("--accept-from %q: not a valid JID", s)
		}
		allow = append(allow, j)
	}
	if f.output != "" {
		if f.fs.Changed("dir") {
			return nil, cleanup, usagef("--output and --dir exclude each other")
		}
		if f.output != "-" {
			if _, err := os.Lstat(f.output); err == nil {
				return nil, cleanup, usagef("--output %s exists: it is never replaced", f.output)
			}
			if err := checkWritableDir(filepath.Dir(f.output)); err != nil {
				return nil, cleanup, err
			}
		}
		tmp, err := os.MkdirTemp("", "jinglectl-receive-*")
		if err != nil {
			return nil, cleanup, err
		}
		f.once = true
		cfg.Dir = tmp
		return allow, func() { os.RemoveAll(tmp) }, nil
	}
	if cfg.Dir == "" {
		cfg.Dir = "."
	}
	if err := checkWritableDir(cfg.Dir); err != nil {
		return nil, cleanup, err
	}
	cfg.Dir = absPath(cfg.Dir)
	return allow, cleanup, nil
}

// shownDir is where files go, as the waiting line says.
func (f *receiveFlags) shownDir(cfg agent.Config) string {
	switch f.output {
	case "":
		return cfg.Dir
	case "-":
		return "standard output"
	}
	return f.output
}

// policyText says who is allowed to send.
func (f *receiveFlags) policyText(allow []jid.JID) string {
	if len(allow) == 0 {
		return "mutual roster contacts"
	}
	return fmt.Sprint(allow)
}

// checkWritableDir checks that dir is a directory where files can be
// created, by creating one.
func checkWritableDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return usagef("directory %s: %v", dir, unwrapPath(err))
	}
	if !fi.IsDir() {
		return usagef("%s is not a directory", dir)
	}
	f, err := os.CreateTemp(dir, ".jinglectl-probe-*")
	if err != nil {
		return usagef("directory %s is not writable: %v", dir, unwrapPath(err))
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

// receiver is a running receive in server mode.
type receiver struct {
	e        env
	f        *receiveFlags
	cfg      agent.Config
	allow    []jid.JID
	out      renderer
	conn     *agent.Conn
	sessions chan agent.SessionSummary
}

func (r *receiver) onSession(s agent.SessionSummary) {
	select {
	case r.sessions <- s:
	default:
	}
}

func (r *receiver) close() {
	closeConn(r.conn)
	r.out.finish()
}

// loop waits for sessions until interrupted, or the first one with --once.
func (r *receiver) loop(ctx context.Context) int {
	for {
		select {
		case <-ctx.Done():
			r.close()
			if r.f.once {
				return exitCanceled
			}
			return exitOK
		case <-r.conn.Done():
			err := r.conn.Err()
			r.close()
			if err == nil || errors.Is(err, xmppclient.ErrDisconnected) {
				return fail(r.e, "receive", fmt.Errorf("connection lost: %w", xmppclient.ErrDisconnected))
			}
			return fail(r.e, "receive", fmt.Errorf("connection lost (%v): %w", err, xmppclient.ErrDisconnected))
		case s := <-r.sessions:
			if !s.Allowed || !r.f.once {
				continue
			}
			r.close()
			status := sessionStatus(s)
			if status == exitOK && r.f.output != "" {
				return r.deliver(s)
			}
			return status
		}
	}
}

// sessionStatus is the exit status of a received session: 0 when every
// file arrived verified.
func sessionStatus(s agent.SessionSummary) int {
	if len(s.Results) == 0 {
		return exitFailure
	}
	for _, res := range s.Results {
		if res.Err != nil || !res.Verified {
			if res.Err == nil {
				return exitFailure
			}
			return outcomeStatus(agent.Outcome(res.Err))
		}
	}
	return exitOK
}

// deliver writes the one verified file of s to --output.
func (r *receiver) deliver(s agent.SessionSummary) int {
	if len(s.Results) != 1 {
		return fail(r.e, "receive", fmt.Errorf("--output takes one file; the sender sent %d (they are lost: use --dir)", len(s.Results)))
	}
	path := s.Results[0].Path
	if r.f.output != "-" {
		if err := os.Link(path, r.f.output); err != nil {
			// another file system, or it appeared since: copy, never replace
			if err := copyNew(path, r.f.output); err != nil {
				return fail(r.e, "receive", err)
			}
		}
		return exitOK
	}
	in, err := os.Open(path)
	if err != nil {
		return fail(r.e, "receive", err)
	}
	defer in.Close()
	if _, err := io.Copy(r.e.stdout, in); err != nil {
		return fail(r.e, "receive", fmt.Errorf("writing to standard output: %w", err))
	}
	return exitOK
}

// copyNew copies src to the new file dst (which must not exist).
func copyNew(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(dst)
		return err
	}
	return out.Close()
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
