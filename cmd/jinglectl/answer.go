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
	a := &answerer{results: make(chan int, 1)}
	fs.Var(&a.acceptFrom, "accept-from", "answer calls from `JID` only (repeatable; default: mutual roster contacts)")
	fs.BoolVar(&a.echo, "echo", false, "send the caller's audio and video back (with --record, recorded too)")
	once := fs.Bool("once", false, "exit after the first call from an allowed caller, with its result")
	usage := func(w io.Writer) { commandUsage(w, answerUsage, fs, true) }
	if status, ok := parseFlags(fs, args, e, usage); !ok {
		return status
	}
	if fs.NArg() != 0 {
		return usageLine(e, "answer", "no arguments expected")
	}
	for _, s := range a.acceptFrom {
		j, err := jid.Parse(s)
		if err != nil || s == "" {
			return fail(e, "answer", usagef("--accept-from %q: not a valid JID", s))
		}
		a.allow = append(a.allow, j)
	}
	c, err := newCallCmd(e, "answer", acct, cf)
	if err != nil {
		return fail(e, "answer", err)
	}
	a.out = c.out
	if cf.record != "" {
		a.rec = rtp.NewRecorder(cf.record)
	}
	ctx, stop := signalContext()
	defer stop()
	h := &rtp.Handler{Config: cf.rtpConfig(c.log), OnCall: a.onCall}
	cc, err := c.dial(ctx, h, &jmi.Manager{Logger: c.log, OnPropose: a.onPropose})
	if err != nil {
		if ctx.Err() != nil {
			return exitCanceled
		}
		return fail(e, "answer", err)
	}
	a.cc = cc
	defer a.closeAll()
	if len(a.acceptFrom) == 0 {
		if err := a.allowContacts(ctx); err != nil {
			return fail(e, "answer", err)
		}
	}
	if cf.jsonOut {
		a.out.print(callEvent{Event: "ready", Peer: cc.cl.LocalAddr().String()})
	} else if !acct.out.quiet {
		fmt.Fprintf(e.stderr, "jinglectl: answer: waiting for calls as %s (from %v)\n", cc.cl.LocalAddr(), a.acceptFrom)
	}
	return a.loop(ctx, e, *once)
}

// answerer answers the calls of allowed callers.
type answerer struct {
	acceptFrom stringList
	echo       bool
	out        *callPrinter
	rec        *rtp.Recorder
	cc         *callClient
	closed     bool
	// results receives the exit status of each answered call.
	results chan int

	// With no --accept-from, the mutual roster contacts are allowed once
	// the roster is read after log-in; until then nobody is.
	mu    sync.RWMutex
	allow []jid.JID
}

func (a *answerer) allowed(from jid.JID) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return allowedJID(a.allow, from)
}

// allowContacts allows the mutual roster contacts.
func (a *answerer) allowContacts(ctx context.Context) error {
	contacts, err := mutualContacts(ctx, a.cc.cl.Session())
	if err != nil {
		return fmt.Errorf("reading the roster: %w", err)
	}
	a.mu.Lock()
	a.allow = contacts
	a.mu.Unlock()
	a.acceptFrom = make(stringList, len(contacts))
	for i, c := range contacts {
		a.acceptFrom[i] = c.String()
	}
	return nil
}

func (a *answerer) onPropose(ctx context.Context, in *jmi.Incoming) {
	if !a.allowed(in.From) {
		a.out.print(callEvent{Event: "declined", Peer: in.From.String(), SID: in.ID, Reason: string(jingle.ReasonDecline)})
		_ = in.Reject(ctx, &jingle.Reason{Condition: jingle.ReasonDecline})
		return
	}
	a.out.print(callEvent{Event: "proposed", Peer: in.From.String(), SID: in.ID})
	_ = in.Proceed(ctx)
}

func (a *answerer) onCall(ctx context.Context, c *rtp.Call) {
	if !a.allowed(c.Peer()) {
		a.out.print(callEvent{Event: "declined", Peer: c.Peer().String(), SID: c.SID(), Reason: string(jingle.ReasonDecline)})
		_ = c.Reject(ctx, nil)
		return
	}
	a.out.print(callEvent{Event: "incoming", Peer: c.Peer().String(), SID: c.SID()})
	opts := rtp.Options{ReceiveAudio: true, ReceiveVideo: true}
	switch {
	case a.echo:
		// The echo reads the caller's tracks; it hands the packets to the
		// recorder too.
		echo := rtp.NewEcho()
		if a.rec != nil {
			echo.Record(a.rec)
		}
		opts = echo.Options()
	case a.rec != nil:
		opts.OnTrack = a.rec.OnTrack
	}
	status := exitFailure
	if err := c.Accept(ctx, opts); err != nil {
		a.out.print(callEvent{Event: "error", Peer: c.Peer().String(), SID: c.SID(), Outcome: statusOutcome(exitFailure), Error: err.Error()})
	} else {
		// The call's goroutine follows it; an interrupt hangs up through
		// Handler.Close.
		status = followCall(context.WithoutCancel(ctx), c, a.out, 0)
	}
	select {
	case a.results <- status:
	default:
	}
}

func (a *answerer) closeAll() {
	if !a.closed {
		a.closed = true
		a.cc.close()
	}
}

// finish hangs up, logs out and reports the recordings.
func (a *answerer) finish(status int) int {
	a.closeAll()
	if a.rec != nil {
		status = reportRecording(a.rec, a.out, status)
	}
	return status
}

// loop answers until interrupted, or the first call with once.
func (a *answerer) loop(ctx context.Context, e env, once bool) int {
	for {
		select {
		case <-ctx.Done():
			status := exitOK
			if once {
				status = exitCanceled
			}
			return a.finish(status)
		case <-a.cc.cl.Done():
			err := a.cc.cl.Err()
			a.finish(exitConnect)
			if err == nil || errors.Is(err, xmppclient.ErrDisconnected) {
				return fail(e, "answer", fmt.Errorf("connection lost: %w", xmppclient.ErrDisconnected))
			}
			return fail(e, "answer", fmt.Errorf("connection lost (%v): %w", err, xmppclient.ErrDisconnected))
		case status := <-a.results:
			if once {
				return a.finish(status)
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
