package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

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

Receive runs until interrupted (exit status 0), or with --once until the
first session from an allowed sender is over: then the exit status is that
session's (0 when every file arrived verified).

With --local, receive works without a server (XEP-0174 serverless
mode): see jinglectl receive --local -help.

Example:
  JINGLECTL_PASSWORD=… jinglectl receive --jid bob@example.org --dir ~/Downloads --accept-from alice@example.org --once
`

func runReceive(args []string, e env) int {
	if hasLocalFlag(args) {
		return runReceiveLocal(args, e)
	}
	fs := newFlagSet("receive")
	acct := addAccountFlags(fs)
	tf := addTransferFlags(fs, false)
	dir := fs.String("dir", "", "receive into `DIR` (default: the configuration's, else the current directory)")
	var acceptFrom stringList
	fs.Var(&acceptFrom, "accept-from", "accept files from `JID` only (repeatable; default: mutual roster contacts)")
	once := fs.Bool("once", false, "exit after one session, with its result")
	var maxSize int64
	fs.Var(sizeFlag{&maxSize}, "max-size", "decline files larger than `SIZE` (eg. 100M; default 8G)")
	jsonOut := fs.Bool("json", false, "print one JSON event per line instead of text")
	checkLocal := addLocalOnlyFlags(fs)
	usage := func(w io.Writer) { commandUsage(w, receiveUsage, fs, true) }
	if status, ok := parseFlags(fs, args, e, usage); !ok {
		return status
	}
	if err := checkLocal(); err != nil {
		return fail(e, "receive", err)
	}
	if fs.NArg() != 0 {
		return usageLine(e, "receive", "no arguments expected")
	}
	cfg, err := loadConfig(e, acct, tf)
	if err != nil {
		return fail(e, "receive", err)
	}
	if err := checkAccount(cfg); err != nil {
		return fail(e, "receive", err)
	}
	if flagSet(fs, "dir") {
		cfg.Dir = *dir
	}
	if cfg.Dir == "" {
		cfg.Dir = "."
	}
	if fi, err := os.Stat(cfg.Dir); err != nil {
		return fail(e, "receive", usagef("directory %s: %v", cfg.Dir, unwrapPath(err)))
	} else if !fi.IsDir() {
		return fail(e, "receive", usagef("%s is not a directory", cfg.Dir))
	}
	cfg.Dir = absPath(cfg.Dir)
	if flagSet(fs, "accept-from") {
		cfg.AcceptFrom = acceptFrom
	}
	if flagSet(fs, "max-size") {
		cfg.MaxSize = maxSize
	}
	var allow []jid.JID
	for _, s := range cfg.AcceptFrom {
		j, err := jid.Parse(s)
		if err != nil || s == "" {
			return fail(e, "receive", usagef("--accept-from %q: not a valid JID", s))
		}
		allow = append(allow, j)
	}
	log := newLogger(e, cfg.LogLevel, "", "warn")
	if cfg.InsecureSkipVerify {
		fmt.Fprintln(e.stderr, "jinglectl: warning: --insecure-skip-verify: the server certificate is not verified (local testing only)")
	}
	ctx, stop := signalContext()
	defer stop()

	out := newRenderer(e, "receive", *jsonOut)
	sessions := make(chan agent.SessionSummary, 16)
	conn, err := agent.Connect(ctx, agent.Options{
		Config:  cfg,
		Logger:  log,
		OnEvent: out.event,
		Receive: &agent.ReceiveOptions{
			Dir:        cfg.Dir,
			AcceptFrom: allow,
			MaxSize:    cfg.MaxSize,
			OnSession: func(s agent.SessionSummary) {
				select {
				case sessions <- s:
				default:
				}
			},
		},
	})
	if err != nil {
		if ctx.Err() != nil {
			return exitCanceled
		}
		return fail(e, "receive", connectError(cfg, err))
	}
	closeConn := func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = conn.Close(cctx)
		out.finish()
	}
	who := "mutual roster contacts"
	if len(allow) > 0 {
		who = fmt.Sprint(cfg.AcceptFrom)
	}
	if !*jsonOut {
		fmt.Fprintf(e.stderr, "jinglectl: receive: waiting for files as %s into %s (from %s)\n", conn.LocalAddr(), cfg.Dir, who)
	}
	for {
		select {
		case <-ctx.Done():
			closeConn()
			if *once {
				return exitCanceled
			}
			return exitOK
		case <-conn.Done():
			err := conn.Err()
			closeConn()
			if err == nil || errors.Is(err, xmppclient.ErrDisconnected) {
				return fail(e, "receive", fmt.Errorf("connection lost: %w", xmppclient.ErrDisconnected))
			}
			return fail(e, "receive", fmt.Errorf("connection lost (%v): %w", err, xmppclient.ErrDisconnected))
		case s := <-sessions:
			if !s.Allowed || !*once {
				continue
			}
			closeConn()
			status := exitOK
			for _, r := range s.Results {
				if r.Err != nil || !r.Verified {
					status = outcomeStatus(agent.Outcome(r.Err))
					if r.Err == nil {
						status = exitFailure
					}
					break
				}
			}
			if len(s.Results) == 0 {
				status = exitFailure
			}
			return status
		}
	}
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
