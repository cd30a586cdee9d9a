package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/roster"

	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jmi"
	"github.com/jinglekit/jinglekit/rtp"
	"github.com/jinglekit/jinglekit/xmppclient"
)

const answerUsage = `Usage: jinglectl answer [flags]

Answer logs in and answers voice and video calls (XEP-0167 Jingle RTP over
ICE-UDP with DTLS-SRTP), announced with XEP-0353 Jingle Message
Initiation or not.

Only the JIDs given with --accept-from (a bare JID allows all its
resources) are answered, or, when none is given, the roster contacts with
a mutual subscription (read at log-in); every other caller is declined.

With --echo the caller's own audio and video are sent back (a test call);
otherwise nothing is sent. --record writes what callers send into DIR,
one file per track (SID-CONTENT.ogg, SID-CONTENT.ivf).

Answer runs until interrupted (exit status 0), or with --once until the
first call from an allowed caller is over: then the exit status is that
call's (0 when it ended normally).

Events are printed one per line; with --json as JSON objects (see
docs/jinglectl.md, "Calls").

Example:
  JINGLECTL_PASSWORD=… jinglectl answer --jid bob@example.org --accept-from alice@example.org --echo
`

// allowedJID reports whether from matches one of allow: a bare JID in
// allow matches all its resources, a full JID only itself.
func allowedJID(allow []jid.JID, from jid.JID) bool {
	for _, a := range allow {
		if a.Resourcepart() == "" {
			if a.Bare().Equal(from.Bare()) {
				return true
			}
		} else if a.Equal(from) {
			return true
		}
	}
	return false
}

func runAnswer(args []string, e env) int {
	fs := newFlagSet("answer")
	acct := addAccountFlags(fs)
	cf := addCallFlags(fs)
	var acceptFrom stringList
	fs.Var(&acceptFrom, "accept-from", "answer calls from `JID` only (repeatable; default: mutual roster contacts)")
	echo := fs.Bool("echo", false, "send the caller's audio and video back")
	once := fs.Bool("once", false, "exit after the first call from an allowed caller, with its result")
	usage := func(w io.Writer) { commandUsage(w, answerUsage, fs, true) }
	if status, ok := parseFlags(fs, args, e, usage); !ok {
		return status
	}
	if fs.NArg() != 0 {
		return usageLine(e, "answer", "no arguments expected")
	}
	var allow []jid.JID
	for _, s := range acceptFrom {
		j, err := jid.Parse(s)
		if err != nil || s == "" {
			return fail(e, "answer", usagef("--accept-from %q: not a valid JID", s))
		}
		allow = append(allow, j)
	}
	if err := checkRecordDir(cf.record); err != nil {
		return fail(e, "answer", err)
	}
	cfg, err := loadConfig(e, acct, nil)
	if err != nil {
		return fail(e, "answer", err)
	}
	if err := checkAccount(cfg); err != nil {
		return fail(e, "answer", err)
	}
	if cfg.InsecureSkipVerify {
		fmt.Fprintln(e.stderr, "jinglectl: warning: --insecure-skip-verify: the server certificate is not verified (local testing only)")
	}
	log := newLogger(e, cfg.LogLevel, "", "warn")
	out := &callPrinter{out: e.stdout, json: cf.jsonOut}
	ctx, stop := signalContext()
	defer stop()

	var rec *rtp.Recorder
	if cf.record != "" {
		rec = rtp.NewRecorder(cf.record)
	}
	// results receives the exit status of each answered call.
	results := make(chan int, 1)
	// With no --accept-from, the mutual roster contacts are allowed once
	// the roster is read after log-in; until then nobody is.
	var allowMu sync.RWMutex
	allowed := func(from jid.JID) bool {
		allowMu.RLock()
		defer allowMu.RUnlock()
		return allowedJID(allow, from)
	}
	jmi := &jmi.Manager{Logger: log, OnPropose: func(ctx context.Context, in *jmi.Incoming) {
		if !allowed(in.From) {
			out.print(callEvent{Event: "declined", Peer: in.From.String(), SID: in.ID, Reason: string(jingle.ReasonDecline)})
			_ = in.Reject(ctx, &jingle.Reason{Condition: jingle.ReasonDecline})
			return
		}
		out.print(callEvent{Event: "proposed", Peer: in.From.String(), SID: in.ID})
		_ = in.Proceed(ctx)
	}}
	h := &rtp.Handler{Config: cf.rtpConfig(log)}
	h.OnCall = func(ctx context.Context, c *rtp.Call) {
		if !allowed(c.Peer()) {
			out.print(callEvent{Event: "declined", Peer: c.Peer().String(), SID: c.SID(), Reason: string(jingle.ReasonDecline)})
			_ = c.Reject(ctx, nil)
			return
		}
		out.print(callEvent{Event: "incoming", Peer: c.Peer().String(), SID: c.SID()})
		var opts rtp.Options
		if *echo {
			opts = rtp.NewEcho().Options()
		} else {
			opts = rtp.Options{ReceiveAudio: true, ReceiveVideo: true}
		}
		if rec != nil {
			opts.OnTrack = rec.OnTrack
		}
		if err := c.Accept(ctx, opts); err != nil {
			out.print(callEvent{Event: "error", Peer: c.Peer().String(), SID: c.SID(), Outcome: statusOutcome(exitFailure), Error: err.Error()})
			select {
			case results <- exitFailure:
			default:
			}
			return
		}
		// The call's goroutine follows it; an interrupt hangs up through
		// Handler.Close.
		status := followCall(context.WithoutCancel(ctx), c, out, 0)
		select {
		case results <- status:
		default:
		}
	}
	lctx, lcancel := context.WithTimeout(ctx, callSetup)
	cc, err := dialCall(lctx, cfg, log, h, jmi)
	lcancel()
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			return fail(e, "answer", err)
		}
		if ctx.Err() != nil {
			return exitCanceled
		}
		return fail(e, "answer", connectError(cfg, err))
	}
	closed := false
	closeAll := func() {
		if closed {
			return
		}
		closed = true
		cc.close()
	}
	defer closeAll()
	if len(acceptFrom) == 0 {
		contacts, err := mutualContacts(ctx, cc.cl.Session())
		if err != nil {
			return fail(e, "answer", fmt.Errorf("reading the roster: %w", err))
		}
		allowMu.Lock()
		allow = contacts
		allowMu.Unlock()
		acceptFrom = make(stringList, len(contacts))
		for i, c := range contacts {
			acceptFrom[i] = c.String()
		}
	}
	if cf.jsonOut {
		out.print(callEvent{Event: "ready", Peer: cc.cl.LocalAddr().String()})
	} else {
		fmt.Fprintf(e.stderr, "jinglectl: answer: waiting for calls as %s (from %v)\n", cc.cl.LocalAddr(), acceptFrom)
	}
	finish := func(status int) int {
		closeAll()
		if rec != nil {
			status = reportRecording(rec, out, status)
		}
		return status
	}
	for {
		select {
		case <-ctx.Done():
			status := exitOK
			if *once {
				status = exitCanceled
			}
			return finish(status)
		case <-cc.cl.Done():
			err := cc.cl.Err()
			finish(exitConnect)
			if err == nil || errors.Is(err, xmppclient.ErrDisconnected) {
				return fail(e, "answer", fmt.Errorf("connection lost: %w", xmppclient.ErrDisconnected))
			}
			return fail(e, "answer", fmt.Errorf("connection lost (%v): %w", err, xmppclient.ErrDisconnected))
		case status := <-results:
			if *once {
				return finish(status)
			}
		}
	}
}

// mutualContacts returns the bare JIDs of the roster items with a mutual
// ("both") subscription.
func mutualContacts(ctx context.Context, s *xmpp.Session) ([]jid.JID, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	iter := roster.Fetch(ctx, s)
	defer iter.Close()
	var out []jid.JID
	for iter.Next() {
		if it := iter.Item(); it.Subscription == "both" {
			out = append(out, it.JID.Bare())
		}
	}
	return out, iter.Err()
}
