package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/cmd/jinglectl/internal/agent"
	"github.com/jinglekit/jinglekit/filetransfer"
)

const sendUsage = `Usage: jinglectl send [flags] RECIPIENT FILE...

Send offers the files to RECIPIENT in one Jingle session (XEP-0234 file
transfer) and waits until the recipient has received and verified each of
them.

RECIPIENT is a full JID (user@domain/resource), or a bare JID: then the
online resource of highest priority that advertises Jingle file transfer
is picked, from the presence the server sends at login. The server sends it
only for contacts whose presence you are subscribed to (roster
subscription "to" or "both"); for anyone else give the full JID.

The transport is chosen among those the recipient advertises: SOCKS5
bytestreams first (direct, or through a proxy of your server), then
in-band bytestreams; when one fails the next is tried. --transport forces
one.

On a terminal a progress bar per file is drawn on standard error. With
--json each event is one JSON object per line on standard output (see
docs/jinglectl.md for the schema).

With --agent the files are queued in the running agent (jinglectl agent)
through its control socket instead of logging in: --agent uses the
socket of the configuration, --agent=PATH another one. Without --detach
send follows the files until each is finished.

With --local, send works without a server (XEP-0174 serverless mode):
see jinglectl send --local -help.

Example:
  JINGLECTL_PASSWORD=… jinglectl send --jid alice@example.org bob@example.org report.pdf
`

// optionalString is a flag that may be given alone (--agent) or with a
// value (--agent=PATH).
type optionalString struct {
	set   bool
	value string
}

func (o *optionalString) String() string { return o.value }
func (o *optionalString) Type() string   { return "string" }
func (o *optionalString) Set(s string) error {
	o.set = true
	if s != "true" {
		o.value = s
	}
	if s == "false" {
		o.set, o.value = false, ""
	}
	return nil
}

func runSend(args []string, e env) int {
	if hasLocalFlag(args) {
		return runSendLocal(args, e)
	}
	fs := newFlagSet("send")
	acct := addAccountFlags(fs)
	tf := addTransferFlags(fs, true)
	jsonOut := fs.Bool("json", false, "print one JSON event per line instead of text")
	var agentSock optionalString
	fs.VarPF(&agentSock, "agent", "", "queue the files in the running agent (--agent, or --agent=SOCKET for another socket)").NoOptDefVal = "true"
	detach := fs.Bool("detach", false, "with --agent: queue the files and exit without waiting")
	timeout := fs.Duration("timeout", 0, "give up after `DURATION` (default: no limit)")
	encrypt := fs.String("encrypt", agent.EncryptAuto, "end-to-end encryption (XEP-0391 JET with OMEMO): `MODE` auto (when the recipient has OMEMO devices and JET), always (exit 6 when not possible) or never")
	checkLocal := addLocalOnlyFlags(fs)
	usage := func(w io.Writer) { commandUsage(w, sendUsage, fs, true) }
	if status, ok := parseFlags(fs, args, e, usage); !ok {
		return status
	}
	if err := checkLocal(); err != nil {
		return fail(e, "send", err)
	}
	if fs.NArg() < 2 {
		return usageLine(e, "send", "want RECIPIENT and at least one FILE")
	}
	to, err := jid.Parse(fs.Arg(0))
	if err != nil || fs.Arg(0) == "" {
		return fail(e, "send", usagef("invalid recipient %q: want user@domain or user@domain/resource", fs.Arg(0)))
	}
	files := fs.Args()[1:]
	for _, f := range files {
		if err := checkSendable(f); err != nil {
			return fail(e, "send", err)
		}
	}
	switch *encrypt {
	case agent.EncryptAuto, agent.EncryptAlways, agent.EncryptNever:
	default:
		return fail(e, "send", usagef("--encrypt %q: want auto, always or never", *encrypt))
	}
	if agentSock.set && flagSet(fs, "encrypt") {
		return fail(e, "send", usagef("--encrypt does not apply with --agent: the agent encrypts when it can (auto)"))
	}
	if *detach && !agentSock.set {
		return fail(e, "send", usagef("--detach needs --agent"))
	}
	ctx, stop := signalContext()
	defer stop()
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	if agentSock.set {
		for _, name := range []string{"proxy", "no-proxy", "no-direct", "allow-loopback", "limit-rate", "presence-wait", "connect-timeout", "jid", "password-file", "server", "ca-file", "insecure-skip-verify"} {
			if flagSet(fs, name) {
				return fail(e, "send", usagef("--%s does not apply with --agent: the agent's configuration decides", name))
			}
		}
		cfg, err := agent.Load(configPath(e, acct.config))
		if err != nil {
			return fail(e, "send", err)
		}
		path := agentSock.value
		if path == "" {
			path = cfg.WithDefaults().Socket
		}
		mode := ""
		if flagSet(fs, "transport") {
			mode = tf.transport
			if err := checkTransportMode(mode); err != nil {
				return fail(e, "send", err)
			}
		}
		paths := make([]string, len(files))
		for i, f := range files {
			paths[i] = absPath(f)
		}
		return sendViaAgent(ctx, e, path, agent.Request{Op: agent.OpSend, Peer: to.String(), Files: paths, Transport: mode, Wait: !*detach}, *jsonOut)
	}

	cfg, err := loadConfig(e, acct, tf)
	if err != nil {
		return fail(e, "send", err)
	}
	if err := checkAccount(cfg); err != nil {
		return fail(e, "send", err)
	}
	log := newLogger(e, cfg.LogLevel, "", "warn")
	if cfg.InsecureSkipVerify {
		fmt.Fprintln(e.stderr, "jinglectl: warning: --insecure-skip-verify: the server certificate is not verified (local testing only)")
	}
	out := newRenderer(e, "send", *jsonOut)
	failAll := func(err error) int {
		if *jsonOut {
			out.event(agent.Event{Event: agent.EventError, Time: time.Now().UTC(), Peer: to.String(), Outcome: agent.Outcome(err), Error: err.Error()})
		}
		return fail(e, "send", err)
	}
	conn, err := agent.Connect(ctx, agent.Options{Config: cfg, Logger: log, Priority: -1})
	if err != nil {
		if ctx.Err() != nil {
			return failAll(fmt.Errorf("%w: while logging in", context.Cause(ctx)))
		}
		return failAll(connectError(cfg, err))
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	peer, info, err := conn.Resolve(ctx, to, cfg.PresenceWait)
	if err != nil {
		return failAll(err)
	}
	transports, err := agent.ChooseTransports(cfg.Transport, info)
	if err != nil {
		return failAll(err)
	}
	log.Debug("jinglectl: sending", "peer", peer.String(), "transports", transports)
	outgoing := make([]agent.Outgoing, len(files))
	for i, f := range files {
		src, err := filetransfer.FileSource(f)
		if err != nil {
			return failAll(usageError{err.Error()})
		}
		outgoing[i] = agent.Outgoing{ID: strconv.Itoa(i + 1), Path: absPath(f), Source: src}
	}
	status := exitOK
	var firstErr error
	_, err = conn.Send(ctx, peer, outgoing, agent.SendOptions{Transports: transports, LimitRate: cfg.LimitRate, Encrypt: *encrypt}, func(ev agent.Event) {
		out.event(ev)
		if ev.Event == agent.EventError && status == exitOK {
			status = outcomeStatus(ev.Outcome)
			firstErr = errors.New(ev.Error)
		}
	})
	out.finish()
	if status == exitOK && err != nil {
		// No file event reported it (should not happen).
		return fail(e, "send", err)
	}
	_ = firstErr
	return status
}

// configPath is the configuration file named by --config or $JINGLECTL_CONFIG.
func configPath(e env, flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	return e.getenv(agent.EnvConfig)
}

func checkTransportMode(mode string) error {
	switch mode {
	case agent.TransportAuto, agent.TransportIBB, agent.TransportS5B, agent.TransportICE:
		return nil
	}
	return usagef("--transport %q: want auto, ibb, s5b or ice", mode)
}

// sendViaAgent queues files in the agent and follows them.
func sendViaAgent(ctx context.Context, e env, sock string, req agent.Request, jsonOut bool) int {
	c, err := agent.DialControl(ctx, sock)
	if err != nil {
		return fail(e, "send", err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := c.Send(req); err != nil {
		return fail(e, "send", err)
	}
	first, err := c.Next()
	if err != nil {
		return fail(e, "send", err)
	}
	if first.Event.Event == agent.EventError {
		return fail(e, "send", fmt.Errorf("the agent refused: %s", first.Error))
	}
	if !req.Wait {
		for _, id := range first.IDs {
			fmt.Fprintln(e.stdout, id)
		}
		return exitOK
	}
	out := newRenderer(e, "send", jsonOut)
	status := exitOK
	pending := len(first.IDs)
	for pending > 0 {
		r, err := c.Next()
		if err != nil {
			out.finish()
			if ctx.Err() != nil {
				fmt.Fprintln(e.stderr, "jinglectl: send: stopped following; the agent keeps the files queued (jinglectl status)")
				return exitCanceled
			}
			return fail(e, "send", err)
		}
		if r.Event.Event == agent.ReplyEnd {
			break
		}
		out.event(r.Event)
		if r.Terminal() {
			pending--
			if r.Event.Event == agent.EventError && status == exitOK {
				status = outcomeStatus(r.Outcome)
			}
		}
	}
	out.finish()
	if pending > 0 && status == exitOK {
		return fail(e, "send", fmt.Errorf("%w: the agent stopped before the files were finished", agent.ErrControl))
	}
	return status
}
