package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/cmd/jinglectl/internal/agent"
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
RECIPIENT without '@' is the name of a roster contact ("Bob"): exactly one
contact must have that name.

FILE - sends standard input, under the name --name (default "stdin"). A
directory sends each regular file under it, named by its path from the
directory's parent ("photos/2024/a.jpg"; symbolic links are skipped). Each
file is offered, hashed and verified on its own; receivers that keep flat
names (jinglectl does) store the last path element.

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

--timeout gives up when nothing moved for that long (a stall), --deadline
after that long in all, --connect-timeout when logging in and finding the
recipient take longer (exit 4). Interrupted (Ctrl-C), send exits 11: run
the same command again to resume where the receiver stopped.

With --local, send works without a server (XEP-0174 serverless mode):
see jinglectl send --local --help.

Examples:
  JINGLECTL_PASSWORD=… jinglectl send --jid alice@example.org bob@example.org report.pdf
  tar c photos | jinglectl send Bob - --name photos.tar
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

// sendFlags are send's flags in server mode.
type sendFlags struct {
	fs         *pflag.FlagSet
	acct       *accountFlags
	tf         *transferFlags
	times      *timeFlags
	jsonOut    bool
	agentSock  optionalString
	detach     bool
	stdinName  string
	encrypt    string
	checkLocal func() error
}

func newSendFlags() *sendFlags {
	f := &sendFlags{fs: newFlagSet("send")}
	fs := f.fs
	f.acct = addAccountFlags(fs)
	f.tf = addTransferFlags(fs, true)
	fs.BoolVar(&f.jsonOut, "json", false, "print one JSON event per line instead of text")
	fs.VarPF(&f.agentSock, "agent", "", "queue the files in the running agent (--agent, or --agent=SOCKET for another socket)").NoOptDefVal = "true"
	fs.BoolVar(&f.detach, "detach", false, "with --agent: queue the files and exit without waiting")
	f.times = addTimeFlags(fs)
	fs.StringVar(&f.encrypt, "encrypt", agent.EncryptAuto, "end-to-end encryption (XEP-0391 JET with OMEMO): `MODE` auto (when the recipient has OMEMO devices and JET), always (exit 6 when not possible) or never")
	fs.StringVar(&f.stdinName, "name", "", "the file `NAME` to offer standard input (FILE -) as (default \"stdin\")")
	f.checkLocal = addLocalOnlyFlags(fs, false)
	return f
}

func runSend(args []string, e env) int {
	if hasLocalFlag(args) {
		return runSendLocal(args, e)
	}
	f := newSendFlags()
	usage := func(w io.Writer) { commandUsage(w, sendUsage, f.fs, true) }
	if status, ok := parseFlags(f.fs, args, e, usage); !ok {
		return status
	}
	if err := f.check(); err != nil {
		return fail(e, "send", err)
	}
	items, cleanup, err := collectFiles(e, f.fs.Args()[1:], f.stdinName)
	defer cleanup()
	if err != nil {
		return fail(e, "send", err)
	}
	ctx, stop := signalContext()
	defer stop()
	if f.agentSock.set {
		return f.viaAgent(ctx, e, items)
	}
	return f.direct(ctx, e, items)
}

// check checks the flags and arguments before anything is read.
func (f *sendFlags) check() error {
	if err := f.checkLocal(); err != nil {
		return err
	}
	if f.fs.NArg() < 2 {
		return usagef("want RECIPIENT and at least one FILE")
	}
	if f.fs.Arg(0) == "" {
		return usagef("invalid recipient \"\": want user@domain, user@domain/resource or a roster name")
	}
	if strings.Contains(f.fs.Arg(0), "@") {
		if _, err := jid.Parse(f.fs.Arg(0)); err != nil {
			return usagef("invalid recipient %q: want user@domain or user@domain/resource", f.fs.Arg(0))
		}
	}
	switch f.encrypt {
	case agent.EncryptAuto, agent.EncryptAlways, agent.EncryptNever:
	default:
		return usagef("--encrypt %q: want auto, always or never", f.encrypt)
	}
	if f.detach && !f.agentSock.set {
		return usagef("--detach needs --agent")
	}
	return f.times.check()
}

// viaAgent queues the files in the running agent.
func (f *sendFlags) viaAgent(ctx context.Context, e env, items []sendItem) int {
	for _, name := range []string{"proxy", "no-proxy", "no-direct", "allow-loopback", "limit-rate", "presence-wait", "jid", "password-file", "server", "ca-file", "insecure-skip-verify", "connect-timeout", "timeout", "login-timeout"} {
		if flagSet(f.fs, name) {
			return fail(e, "send", usagef("--%s does not apply with --agent: the agent's configuration decides", name))
		}
	}
	to, err := jid.Parse(f.fs.Arg(0))
	if err != nil || !strings.Contains(f.fs.Arg(0), "@") {
		return fail(e, "send", usagef("invalid recipient %q: with --agent, want user@domain or user@domain/resource", f.fs.Arg(0)))
	}
	cfg, err := agent.Load(configPath(e, f.acct.config))
	if err != nil {
		return fail(e, "send", err)
	}
	path := f.agentSock.value
	if path == "" {
		path = cfg.WithDefaults().Socket
	}
	mode := ""
	if flagSet(f.fs, "transport") {
		mode = f.tf.transport
		if err := checkTransportMode(mode); err != nil {
			return fail(e, "send", err)
		}
	}
	paths := make([]string, len(items))
	for i, it := range items {
		if it.stdin || it.src.Name != filepath.Base(it.path) {
			return fail(e, "send", usagef("--agent sends files by path: give files, not - or a directory"))
		}
		paths[i] = it.path
	}
	if f.times.deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.times.deadline)
		defer cancel()
	}
	return sendViaAgent(ctx, e, path, agent.Request{Op: agent.OpSend, Peer: to.String(), Files: paths, Transport: mode, Encrypt: f.encryptForAgent(), Wait: !f.detach}, f.jsonOut)
}

// direct logs in and sends the files itself.
func (f *sendFlags) direct(sig context.Context, e env, items []sendItem) int {
	cfg, log, err := accountSetup(e, f.acct, f.tf)
	if err != nil {
		return fail(e, "send", err)
	}
	ctx := sig
	if f.times.deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.times.deadline)
		defer cancel()
	}
	t := &transfer{e: e, cmd: "send", jsonOut: f.jsonOut, sig: sig, out: newRenderer(e, "send", f.jsonOut, f.acct.out.quiet),
		hasStdin: slices.ContainsFunc(items, func(it sendItem) bool { return it.stdin })}
	t.peer, _ = jid.Parse(f.fs.Arg(0))
	cctx, ccancel := context.WithTimeout(ctx, f.times.login)
	defer ccancel()
	conn, err := agent.Connect(cctx, agent.Options{Config: cfg, Logger: log, Priority: -1})
	if err != nil {
		return t.connectFailed(ctx, cctx, f.times.login, err, func(err error) error { return connectError(cfg, err) })
	}
	defer closeConn(conn)
	to, err := recipient(conn, f.fs.Arg(0))
	if err != nil {
		return t.failAll(err)
	}
	t.peer = to
	peer, info, err := conn.Resolve(cctx, to, cfg.PresenceWait)
	if err != nil {
		if ctx.Err() != nil || cctx.Err() != nil {
			return t.connectFailed(ctx, cctx, f.times.login, err, nil)
		}
		return t.failAll(err)
	}
	ccancel()
	log.Debug("jinglectl: sending", "peer", peer.String())
	ctx, t.watch = watchStall(ctx, f.times.stall)
	return t.send(ctx, conn, peer, info, cfg.Transport, items, agent.SendOptions{LimitRate: cfg.LimitRate, Encrypt: f.encrypt})
}

// recipient turns the RECIPIENT argument into a JID: a JID (with '@') as
// it is, otherwise the roster contact of that exact name.
func recipient(conn *agent.Conn, arg string) (jid.JID, error) {
	if strings.Contains(arg, "@") {
		return jid.Parse(arg)
	}
	switch named := conn.ContactsNamed(arg); len(named) {
	case 0:
		return jid.JID{}, usagef("%q is neither a JID (user@domain) nor the name of a roster contact", arg)
	case 1:
		return named[0], nil
	default:
		list := make([]string, len(named))
		for i, j := range named {
			list[i] = j.String()
		}
		return jid.JID{}, usagef("the roster name %q is ambiguous: %s; give the JID", arg, strings.Join(list, ", "))
	}
}

// closeConn logs out, waiting at most 10 seconds.
func closeConn(conn *agent.Conn) {
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = conn.Close(cctx)
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
	out := newRenderer(e, "send", jsonOut, false)
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

// encryptForAgent is the --encrypt mode to pass to the agent: empty (the
// agent's default, auto) unless the flag was given.
func (f *sendFlags) encryptForAgent() string {
	if flagSet(f.fs, "encrypt") {
		return f.encrypt
	}
	return ""
}
