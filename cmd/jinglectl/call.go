package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/pion/webrtc/v3"
	"github.com/spf13/pflag"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/cmd/jinglectl/internal/agent"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jmi"
	"github.com/jinglekit/jinglekit/rtp"
	"github.com/jinglekit/jinglekit/xmppclient"
)

const callUsage = `Usage: jinglectl call [flags] JID

Call places a voice or video call (XEP-0167 Jingle RTP over ICE-UDP with
DTLS-SRTP) to JID and stays in it until either side hangs up.

To a bare JID the call is first proposed to every device of the contact
(XEP-0353 Jingle Message Initiation) and goes to the one that answers; to
a full JID the session-initiate goes directly. When no online device of a
contact whose presence is visible advertises XEP-0353 but one advertises
Jingle audio calls, the session-initiate goes directly to it; when none
does, call fails at once (exit status 5 when none is online, 6 when none
takes calls).

--audio plays an Ogg/Opus file into the call and --video an IVF/VP8
file; without --audio the call still offers audio, to receive only.
--record writes what the peer sends into DIR, one file per track
(SID-CONTENT.ogg for audio, SID-CONTENT.ivf for video; existing files are
never replaced). --seconds hangs up that many seconds after media started
flowing; otherwise the call lasts until the peer hangs up or jinglectl is
interrupted (which hangs up).

Events (ringing, accepted, connected, hold, unhold, mute, unmute,
content-added, ended, …) are printed one per line; with --json as JSON
objects (see docs/jinglectl.md, "Calls").

Example:
  JINGLECTL_PASSWORD=… jinglectl call --jid alice@example.org --audio hello.ogg --record calls --seconds 10 bob@example.org
`

// callEvent is one step of a call, as call and answer print it with --json.
type callEvent struct {
	Event   string    `json:"event"`
	Time    time.Time `json:"time"`
	Peer    string    `json:"peer,omitempty"`
	SID     string    `json:"sid,omitempty"`
	Content string    `json:"content,omitempty"` // the content an event is about
	Senders string    `json:"senders,omitempty"` // content-added, content-modified
	Reason  string    `json:"reason,omitempty"`  // ended, declined: the Jingle reason condition
	Text    string    `json:"text,omitempty"`    // ended: the reason's text
	Path    string    `json:"path,omitempty"`    // recorded: the file written
	Packets int       `json:"packets,omitempty"` // recorded: RTP packets written
	Bytes   int64     `json:"bytes,omitempty"`   // recorded: payload bytes written
	Outcome string    `json:"outcome,omitempty"` // ended, error: as for file transfers
	Error   string    `json:"error,omitempty"`
}

// callPrinter writes call events as text or JSON lines.
type callPrinter struct {
	mu   sync.Mutex
	out  io.Writer
	json bool
}

func (p *callPrinter) print(ev callEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	if p.json {
		_ = json.NewEncoder(p.out).Encode(ev)
		return
	}
	line := ev.Event
	if ev.Peer != "" {
		line += " " + safeText(ev.Peer)
	}
	if ev.Content != "" {
		line += " content=" + safeText(ev.Content)
	}
	if ev.Senders != "" {
		line += " senders=" + safeText(ev.Senders)
	}
	if ev.Reason != "" {
		line += " reason=" + safeText(ev.Reason)
	}
	if ev.Text != "" {
		line += fmt.Sprintf(" (%s)", safeText(oneLine(ev.Text)))
	}
	if ev.Path != "" {
		line += fmt.Sprintf(" %s: %d packets, %s", safeText(ev.Path), ev.Packets, agent.FormatSize(ev.Bytes))
	}
	if ev.Error != "" {
		line += ": " + safeText(oneLine(ev.Error))
	}
	fmt.Fprintln(p.out, line)
}

// reasonStatus maps the reason a call ended with to an exit status.
func reasonStatus(r *jingle.Reason) int {
	if r == nil {
		return exitOK
	}
	switch r.Condition {
	case jingle.ReasonSuccess:
		return exitOK
	case jingle.ReasonDecline, jingle.ReasonBusy:
		return exitDeclined
	case jingle.ReasonTimeout, jingle.ReasonExpired:
		return exitTimeout
	case jingle.ReasonFailedTransport, jingle.ReasonConnectivityError, jingle.ReasonUnsupportedTransports:
		return exitTransport
	case jingle.ReasonUnsupportedApplications:
		return exitUnsupported
	case jingle.ReasonCancel:
		return exitCanceled
	case jingle.ReasonGone:
		return exitOffline
	}
	return exitFailure
}

// statusOutcome names an exit status as an outcome of the JSON events.
func statusOutcome(status int) string {
	switch status {
	case exitOK:
		return agent.OutcomeOK
	case exitDeclined:
		return agent.OutcomeDeclined
	case exitTimeout:
		return agent.OutcomeTimeout
	case exitTransport:
		return agent.OutcomeTransport
	case exitUnsupported:
		return agent.OutcomeUnsupported
	case exitCanceled:
		return agent.OutcomeCanceled
	case exitOffline:
		return agent.OutcomeOffline
	case exitConnect:
		return agent.OutcomeConnect
	case exitAuth:
		return agent.OutcomeAuth
	}
	return agent.OutcomeFailed
}

// placeStatus maps an error of rtp.Handler.Place to an exit status.
func placeStatus(err error) int {
	var r *jingle.Reason
	switch {
	case errors.Is(err, jmi.ErrRejected):
		if errors.As(err, &r) && reasonStatus(r) != exitOK && reasonStatus(r) != exitFailure {
			return reasonStatus(r)
		}
		return exitDeclined
	case errors.As(err, &r):
		if s := reasonStatus(r); s != exitOK {
			return s
		}
	}
	return errStatus(err)
}

// callEventOf turns an rtp.Event into a callEvent.
func callEventOf(c *rtp.Call, ev rtp.Event) callEvent {
	out := callEvent{Event: ev.Kind.String(), Peer: c.Peer().String(), SID: c.SID(), Content: ev.Content}
	switch ev.Kind {
	case rtp.EventContentAdded, rtp.EventContentModified:
		out.Senders = string(ev.Senders)
	}
	if ev.Reason != nil {
		out.Reason = string(ev.Reason.Condition)
		out.Text = ev.Reason.Text
	}
	if ev.Kind == rtp.EventEnded {
		out.Outcome = statusOutcome(reasonStatus(ev.Reason))
	}
	return out
}

// callFlags are the flags call and answer share besides the account's.
type callFlags struct {
	allowLoopback bool
	stun          stringList
	jsonOut       bool
	record        string
}

func addCallFlags(fs *pflag.FlagSet) *callFlags {
	f := &callFlags{}
	fs.BoolVar(&f.allowLoopback, "allow-loopback", false, "gather ICE candidates on loopback interfaces too (single-host testing)")
	fs.Var(&f.stun, "stun", "use the STUN server `URL` (eg. stun:stun.example.org:3478; repeatable)")
	fs.BoolVar(&f.jsonOut, "json", false, "print one JSON event per line instead of text")
	fs.StringVar(&f.record, "record", "", "record what the peer sends into `DIR` (one .ogg or .ivf file per track)")
	return f
}

// rtpConfig returns the call settings of the flags.
func (f *callFlags) rtpConfig(log *slog.Logger) rtp.Config {
	cfg := rtp.Config{IncludeLoopback: f.allowLoopback, Logger: log}
	for _, u := range f.stun {
		cfg.Servers = append(cfg.Servers, webrtc.ICEServer{URLs: []string{u}})
	}
	return cfg
}

// checkRecordDir checks the --record directory.
func checkRecordDir(dir string) error {
	if dir == "" {
		return nil
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return usagef("--record %s: %v", dir, unwrapPath(err))
	}
	if !fi.IsDir() {
		return usagef("--record %s is not a directory", dir)
	}
	return nil
}

// callClient is a logged-in account that places and answers calls.
type callClient struct {
	cl  *xmppclient.Client
	mgr *jingle.Manager
	jmi *jmi.Manager
	h   *rtp.Handler
	log *slog.Logger
	// presences and disco tell which devices of a bare JID take calls.
	presences *agent.Presences
	disco     *xmppclient.Disco
}

// dialCall logs in with h and jm plugged in and sends presence. The
// caller sets h's and jm's fields before.
func dialCall(ctx context.Context, cfg agent.Config, log *slog.Logger, h *rtp.Handler, jm *jmi.Manager) (*callClient, error) {
	account, err := agent.AccountJID(cfg.JID)
	if err != nil {
		return nil, usageError{err.Error()}
	}
	mgr := &jingle.Manager{}
	h.JMI = jm
	if err := h.Register(mgr); err != nil {
		return nil, err
	}
	caps := xmppclient.Caps{
		Identities: []xmppclient.Identity{{Category: "client", Type: "pc", Name: "jinglectl"}},
		Features:   mgr.Features(),
	}
	disco := xmppclient.NewDisco(xmppclient.DiscoConfig{Logger: log})
	presences := agent.NewPresences(disco)
	cl, err := xmppclient.Dial(ctx, xmppclient.Config{
		JID:                account,
		Password:           cfg.Password,
		Servers:            cfg.Servers,
		CAFile:             cfg.CAFile,
		InsecureSkipVerify: cfg.InsecureSkipVerify,
		Caps:               caps,
		Logger:             log,
		Handler:            mux.New(stanza.NSClient, mgr.Handler(), jm.Handler(), xmppclient.HandleDisco(caps), presences.Handler()),
	})
	if err != nil {
		return nil, err
	}
	mgr.SetStream(cl.Session())
	jm.SetStream(cl.Session())
	presences.SetSelf(cl.LocalAddr())
	c := &callClient{cl: cl, mgr: mgr, jmi: jm, h: h, log: log, presences: presences, disco: disco}
	if err := cl.SendPresence(ctx); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// callCmd is what call and answer start with: the configuration, the
// logger and the event printer.
type callCmd struct {
	e   env
	cmd string
	cfg agent.Config
	log *slog.Logger
	out *callPrinter
}

func newCallCmd(e env, cmd string, acct *accountFlags, cf *callFlags) (*callCmd, error) {
	if err := checkRecordDir(cf.record); err != nil {
		return nil, err
	}
	cfg, log, err := accountSetup(e, acct, nil)
	if err != nil {
		return nil, err
	}
	return &callCmd{e: e, cmd: cmd, cfg: cfg, log: log, out: &callPrinter{out: e.stdout, json: cf.jsonOut}}, nil
}

// dial logs in with h and jmi within callSetup. Its error is a
// usageError, the cause of ctx's end, or the login failure explained.
func (c *callCmd) dial(ctx context.Context, h *rtp.Handler, jm *jmi.Manager) (*callClient, error) {
	lctx, lcancel := context.WithTimeout(ctx, callSetup)
	defer lcancel()
	cc, err := dialCall(lctx, c.cfg, c.log, h, jm)
	var ue usageError
	switch {
	case err == nil:
		return cc, nil
	case errors.As(err, &ue):
		return nil, err
	case ctx.Err() != nil:
		return nil, fmt.Errorf("%w: while logging in", context.Cause(ctx))
	}
	return nil, connectError(c.cfg, err)
}

// close hangs up every call and logs out.
func (c *callClient) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = c.h.Close(ctx)
	_ = c.mgr.Close(ctx)
	_ = c.jmi.Close(ctx)
	_ = c.cl.Close()
}

// callSetup is how long a call may take to be set up (proposal, answer of
// the device, session-initiate).
const callSetup = 60 * time.Second

func runCall(args []string, e env) int {
	fs := newFlagSet("call")
	acct := addAccountFlags(fs)
	cf := addCallFlags(fs)
	audio := fs.String("audio", "", "send the Ogg/Opus `FILE` as audio (default: receive audio only)")
	video := fs.String("video", "", "send the IVF/VP8 `FILE` as video")
	seconds := fs.Float64("seconds", 0, "hang up `N` seconds after media started flowing (default: when the peer does, or on interrupt)")
	usage := func(w io.Writer) { commandUsage(w, callUsage, fs, true) }
	if status, ok := parseFlags(fs, args, e, usage); !ok {
		return status
	}
	if fs.NArg() != 1 {
		return usageLine(e, "call", "want one JID")
	}
	peer, err := jid.Parse(fs.Arg(0))
	if err != nil || fs.Arg(0) == "" || peer.Localpart() == "" {
		return fail(e, "call", usagef("invalid JID %q: want user@domain or user@domain/resource", fs.Arg(0)))
	}
	if *seconds < 0 {
		return fail(e, "call", usagef("--seconds %v: want a positive number", *seconds))
	}
	opts, closeMedia, err := callMedia(*audio, *video)
	defer closeMedia()
	if err != nil {
		return fail(e, "call", err)
	}
	var rec *rtp.Recorder
	if cf.record != "" {
		rec = rtp.NewRecorder(cf.record)
		opts.OnTrack = rec.OnTrack
	}
	c, err := newCallCmd(e, "call", acct, cf)
	if err != nil {
		return fail(e, "call", err)
	}
	failEv := func(status int, err error) int {
		if cf.jsonOut {
			c.out.print(callEvent{Event: "error", Peer: peer.String(), Outcome: statusOutcome(status), Error: err.Error()})
		}
		fail(e, "call", err)
		return status
	}
	ctx, stop := signalContext()
	defer stop()
	h := &rtp.Handler{Config: cf.rtpConfig(c.log)} // OnCall nil: incoming calls are declined (busy)
	cc, err := c.dial(ctx, h, &jmi.Manager{Logger: c.log})
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			return fail(e, "call", err)
		}
		return failEv(errStatus(err), err)
	}
	defer cc.close()
	if !cf.jsonOut && !acct.out.quiet {
		fmt.Fprintf(e.stderr, "jinglectl: call: calling %s as %s\n", safeText(peer.String()), cc.cl.LocalAddr())
	}
	pctx, pcancel := context.WithTimeout(ctx, callSetup)
	defer pcancel()
	wait := c.cfg.PresenceWait
	if wait <= 0 {
		wait = agent.DefaultPresenceWait
	}
	to, err := cc.resolveCallee(pctx, peer, wait)
	if err != nil {
		status := calleeStatus(err)
		if ctx.Err() != nil {
			status = exitCanceled
		}
		return failEv(status, fmt.Errorf("calling %s: %w", peer, err))
	}
	if !to.Equal(peer) {
		c.log.Info("call: calling a resource of the callee directly: none advertises XEP-0353", "peer", to.String())
	}
	call, err := h.Place(pctx, to, opts)
	pcancel()
	if err != nil {
		status := placeStatus(err)
		if ctx.Err() != nil {
			status = exitCanceled
		}
		return failEv(status, fmt.Errorf("calling %s: %w", peer, err))
	}
	status := followCall(ctx, call, c.out, *seconds)
	if rec != nil {
		status = reportRecording(rec, c.out, status)
	}
	if status != exitOK && !cf.jsonOut {
		fmt.Fprintf(e.stderr, "jinglectl: call: call with %s ended: %s\n", safeText(call.Peer().String()), reasonText(call.Reason()))
	}
	return status
}

// callMedia opens the --audio and --video files as the call's sources.
func callMedia(audio, video string) (rtp.Options, func(), error) {
	opts := rtp.Options{ReceiveAudio: true}
	var files []*os.File
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	open := func(path string, mk func(io.Reader) (*rtp.FileSource, error)) (*rtp.FileSource, error) {
		if err := checkSendable(path); err != nil {
			return nil, err
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, usageError{err.Error()}
		}
		files = append(files, f)
		src, err := mk(f)
		if err != nil {
			return nil, usagef("%s: %v", path, err)
		}
		return src, nil
	}
	if audio != "" {
		src, err := open(audio, rtp.NewOggSource)
		if err != nil {
			return opts, closeAll, err
		}
		opts.Audio = src
	}
	if video != "" {
		src, err := open(video, rtp.NewIVFSource)
		if err != nil {
			return opts, closeAll, err
		}
		opts.Video = src
	}
	return opts, closeAll, nil
}

// followCall prints the events of a call until it ends, hanging up after
// seconds (0: never) of media or when ctx is done. It returns the exit
// status.
func followCall(ctx context.Context, call *rtp.Call, out *callPrinter, seconds float64) int {
	evctx, evcancel := context.WithCancel(context.Background())
	defer evcancel()
	events := make(chan rtp.Event)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(events)
		for {
			ev, err := call.NextEvent(evctx)
			if err != nil {
				return
			}
			select {
			case events <- ev:
			case <-evctx.Done():
				return
			}
		}
	}()
	defer wg.Wait()
	defer evcancel()

	hangUp := func() {
		hctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = call.HangUp(hctx)
	}
	var timer <-chan time.Time
	interrupted, ended, connected := false, false, false
	sigc := ctx.Done()
	for !ended {
		select {
		case ev, ok := <-events:
			if !ok {
				ended = true
				break
			}
			out.print(callEventOf(call, ev))
			switch ev.Kind {
			case rtp.EventConnected:
				connected = true
				if seconds > 0 && timer == nil {
					timer = time.After(time.Duration(seconds * float64(time.Second)))
				}
			case rtp.EventEnded:
				ended = true
			}
		case <-timer:
			timer = nil
			hangUp()
		case <-sigc:
			sigc = nil
			interrupted = true
			hangUp()
		}
	}
	select {
	case <-call.Done():
	case <-time.After(15 * time.Second):
	}
	status := reasonStatus(call.Reason())
	if interrupted && !connected && status == exitOK {
		// Interrupted before media flowed: the call was abandoned.
		status = exitCanceled
	}
	return status
}

// reportRecording waits for the recorder and prints a recorded event per
// file. A recording that failed makes a successful status 1.
func reportRecording(rec *rtp.Recorder, out *callPrinter, status int) int {
	stats, err := rec.Wait()
	for _, s := range stats {
		out.print(callEvent{Event: "recorded", Content: s.Content, Path: s.Path, Packets: s.Packets, Bytes: s.Bytes})
	}
	if err != nil {
		out.print(callEvent{Event: "error", Outcome: agent.OutcomeIO, Error: "recording: " + err.Error()})
		if status == exitOK {
			status = exitFailure
		}
	}
	return status
}

// reasonText describes why a call ended.
func reasonText(r *jingle.Reason) string {
	if r == nil {
		return "no reason"
	}
	s := string(r.Condition)
	if r.Text != "" {
		s += " (" + safeText(oneLine(r.Text)) + ")"
	}
	return s
}
