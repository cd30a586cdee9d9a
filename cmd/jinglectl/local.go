package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/cmd/jinglectl/internal/agent"
	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/linklocal"
)

// Serverless mode (XEP-0174 link-local messaging): send --local,
// receive --local and peers --local.

// unauthenticatedWarning is printed by every command in serverless mode.
const unauthenticatedWarning = "jinglectl: warning: serverless mode: the channel is unauthenticated and unencrypted (anyone on the network can claim a name and read the data)"

const localHelp = `
Serverless mode (--local): XEP-0174 link-local messaging, no server and
no account. Peers on the local network are found over multicast DNS, or
reached directly with --peer HOST:PORT (then mDNS is not used). One's own
name is --name (default user@host from the OS user and host name). The
channel is neither authenticated nor encrypted.
`

// hasLocalFlag reports whether args ask for serverless mode (--local
// before any "--").
func hasLocalFlag(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		switch a {
		case "-local", "--local", "-local=true", "--local=true", "-local=1", "--local=1":
			return true
		}
	}
	return false
}

// localFlags are the flags of serverless mode.
type localFlags struct {
	local      bool
	name       string
	listen     string
	peers      stringList
	noMDNS     bool
	ifaces     stringList
	allowLoop  bool
	logLevel   string
	jsonOut    bool
	transport  string
	resolveFor time.Duration
	out        outputFlags
}

func addLocalFlags(fs *pflag.FlagSet) *localFlags {
	l := &localFlags{}
	fs.BoolVar(&l.local, "local", false, "serverless mode (XEP-0174): no server, no account")
	fs.StringVar(&l.name, "name", "", "one's own link-local `NAME`, user@host (default: from the OS user and host name)")
	fs.StringVar(&l.listen, "listen", "", "accept streams on `HOST:PORT` (default: any free port)")
	fs.Var(&l.peers, "peer", "reach a peer at `HOST:PORT` or NAME=HOST:PORT without multicast (repeatable; turns mDNS off)")
	fs.BoolVar(&l.noMDNS, "no-mdns", false, "do not use multicast DNS (peers come with --peer, or connect to us)")
	fs.Var(&l.ifaces, "interface", "run mDNS on network interface `IFACE` only (repeatable)")
	fs.BoolVar(&l.allowLoop, "allow-loopback", false, "offer and use loopback SOCKS5 candidates (default: when a --peer or --listen is on loopback)")
	fs.StringVar(&l.logLevel, "log-level", "", "log `LEVEL`: debug, info, warn or error (default warn)")
	fs.BoolVar(&l.jsonOut, "json", false, "print one JSON event per line instead of text")
	l.out.register(fs)
	return l
}

// level is the log level of --log-level, -q and -v.
func (l *localFlags) level() string {
	if l.logLevel == "" {
		return l.out.level()
	}
	return l.logLevel
}

// defaultLocalName is user@host from the OS, made a valid link-local
// name.
func defaultLocalName(e env) string {
	u := e.getenv("USER")
	if u == "" {
		if cu, err := user.Current(); err == nil {
			u = cu.Username
		}
	}
	h, _ := os.Hostname()
	return sanitizeLocalName(u, h)
}

// sanitizeLocalName makes user@host acceptable to linklocal.ParseName:
// the user part loses '.', '\', '@', spaces and control characters; the
// host part is its first label in ASCII letters, digits and '-'.
func sanitizeLocalName(u, h string) string {
	var ub strings.Builder
	for _, r := range u {
		switch {
		case r < 0x20 || r == 0x7f || r == '.' || r == '\\' || r == '@' || r == ' ' || r == '/' ||
			r == '"' || r == '&' || r == '\'' || r == ':' || r == '<' || r == '>':
			ub.WriteByte('-')
		default:
			ub.WriteRune(r)
		}
	}
	us := strings.Trim(ub.String(), "-")
	if us == "" {
		us = "user"
	}
	h, _, _ = strings.Cut(h, ".")
	var hb strings.Builder
	for i := 0; i < len(h); i++ {
		c := h[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' {
			hb.WriteByte(c)
		} else {
			hb.WriteByte('-')
		}
	}
	hs := strings.Trim(hb.String(), "-")
	if hs == "" {
		hs = "localhost"
	}
	if len(hs) > 40 {
		hs = strings.Trim(hs[:40], "-")
	}
	if room := linklocal.MaxNameBytes - len(hs) - 1; len(us) > room {
		us = us[:room]
		for len(us) > 0 && !utf8ValidPrefix(us) {
			us = us[:len(us)-1]
		}
	}
	return us + "@" + hs
}

// utf8ValidPrefix reports whether s does not end inside a multi-byte rune.
func utf8ValidPrefix(s string) bool { return strings.ToValidUTF8(s, "\x00") == s }

// isLoopbackHost reports whether the host of hostport is a loopback
// address or "localhost".
func isLoopbackHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// localOptions checks the flags and turns them into agent.LocalOptions.
func (l *localFlags) options(e env) (agent.LocalOptions, error) {
	o := agent.LocalOptions{Name: l.name, Listen: l.listen, Interfaces: l.ifaces, AllowLoopback: l.allowLoop}
	if o.Name == "" {
		o.Name = defaultLocalName(e)
	}
	if _, err := linklocal.ParseName(o.Name); err != nil {
		return o, usagef("--name %q: %v", o.Name, strings.TrimPrefix(err.Error(), "linklocal: "))
	}
	if l.listen != "" {
		if _, p, err := net.SplitHostPort(l.listen); err != nil {
			return o, usagef("--listen %q: want HOST:PORT", l.listen)
		} else if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 65535 {
			return o, usagef("--listen %q: bad port", l.listen)
		}
		if isLoopbackHost(l.listen) {
			o.AllowLoopback = true
		}
	}
	for _, s := range l.peers {
		var p agent.LocalPeer
		p.Addr = s
		if name, addr, ok := strings.Cut(s, "="); ok {
			if _, err := linklocal.ParseName(name); err != nil {
				return o, usagef("--peer %q: %v", s, strings.TrimPrefix(err.Error(), "linklocal: "))
			}
			p.Name, p.Addr = name, addr
		}
		if _, port, err := net.SplitHostPort(p.Addr); err != nil {
			return o, usagef("--peer %q: want HOST:PORT or NAME=HOST:PORT", s)
		} else if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			return o, usagef("--peer %q: bad port", s)
		}
		if isLoopbackHost(p.Addr) {
			o.AllowLoopback = true
		}
		o.Peers = append(o.Peers, p)
	}
	o.NoMulticast = l.noMDNS || len(l.peers) > 0
	switch l.logLevel {
	case "", "debug", "info", "warn", "error":
	default:
		return o, usagef("--log-level %q: want debug, info, warn or error", l.logLevel)
	}
	return o, nil
}

// localConnectError explains in one line why serverless mode could not
// start or reach a --peer.
func localConnectError(err error) error {
	msg := strings.ReplaceAll(err.Error(), "xmppclient: ", "")
	msg = strings.ReplaceAll(msg, "linklocal: ", "")
	msg = strings.ReplaceAll(msg, "cannot connect: ", "")
	msg = strings.ReplaceAll(msg, "opening a stream to [] at ", "opening a stream at ")
	return explained{"serverless: " + msg, err}
}

const sendLocalUsage = `Usage: jinglectl send --local [flags] NAME FILE...

Send --local offers the files to the link-local peer NAME (user@host) in
one Jingle session, without a server (XEP-0174). NAME is found over
multicast DNS, or give --peer HOST:PORT (its address; NAME=HOST:PORT
checks the name too) to reach it without multicast.

The transports are direct SOCKS5 bytestreams, then in-band bytestreams
over the link-local stream; --transport forces one. Progress, --json
events, timeouts, FILE - (named by --stdin-name), directories and exit
statuses are those of server mode.
` + localHelp + `
Example:
  jinglectl send --local --peer 192.0.2.7:5298 bob@laptop report.pdf
`

func runSendLocal(args []string, e env) int {
	fs := newFlagSet("send")
	l := addLocalFlags(fs)
	fs.StringVar(&l.transport, "transport", agent.TransportAuto, "`MODE`: auto, ibb, s5b or ice (auto: SOCKS5, then ICE with host candidates, then IBB, as the recipient supports)")
	var limitRate int64
	fs.Var(sizeFlag{&limitRate}, "limit-rate", "send each file at most `RATE` bytes per second (eg. 500K)")
	times := addTimeFlags(fs)
	fs.DurationVar(&l.resolveFor, "resolve-wait", 5*time.Second, "how long to wait for NAME's mDNS advertisement: `DURATION`")
	stdinName := fs.String("stdin-name", "", "the file `NAME` to offer standard input (FILE -) as (default \"stdin\")")
	usage := func(w io.Writer) { commandUsage(w, sendLocalUsage, fs, true) }
	if status, ok := parseFlags(fs, args, e, usage); !ok {
		return status
	}
	if fs.NArg() < 2 {
		return usageLine(e, "send", "want NAME and at least one FILE")
	}
	to, err := linklocal.ParseName(fs.Arg(0))
	if err != nil {
		return fail(e, "send", usagef("invalid link-local name %q: want user@host", fs.Arg(0)))
	}
	if err := errors.Join(times.check(), checkTransportMode(l.transport)); err != nil {
		return fail(e, "send", err)
	}
	o, err := l.options(e)
	if err != nil {
		return fail(e, "send", err)
	}
	if to.Equal(mustName(o.Name)) {
		return fail(e, "send", usagef("%s is one's own name (--name)", to))
	}
	items, cleanup, err := collectFiles(e, fs.Args()[1:], *stdinName)
	defer cleanup()
	if err != nil {
		return fail(e, "send", err)
	}
	log := newLogger(e, l.level(), "", "warn")
	o.Logger = log
	if !l.out.quiet {
		fmt.Fprintln(e.stderr, unauthenticatedWarning)
	}
	sig, stop := signalContext()
	defer stop()
	ctx := sig
	if times.deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, times.deadline)
		defer cancel()
	}
	t := &transfer{e: e, cmd: "send", jsonOut: l.jsonOut, sig: sig, peer: to, out: newRenderer(e, "send", l.jsonOut, l.out.quiet),
		hasStdin: slices.ContainsFunc(items, func(it sendItem) bool { return it.stdin })}
	cctx, ccancel := context.WithTimeout(ctx, times.login)
	defer ccancel()
	conn, err := agent.ConnectLocal(cctx, o)
	if err != nil {
		return t.connectFailed(ctx, cctx, times.login, err, localConnectError)
	}
	defer closeConn(conn)
	rctx, rcancel := context.WithTimeout(cctx, l.resolveFor)
	peer, info, err := conn.ResolveLocal(rctx, to)
	rcancel()
	if err != nil {
		if !o.NoMulticast || ctx.Err() == nil {
			// the peers given answered as someone else, or NAME was not
			// heard of: say who is around.
			if names := peerNames(conn.Node()); len(names) > 0 && errors.Is(err, agent.ErrRecipientOffline) {
				err = fmt.Errorf("%w (around: %s)", err, strings.Join(names, ", "))
			}
		}
		return t.failAll(err)
	}
	ccancel()
	log.Debug("jinglectl: sending", "peer", peer.String())
	ctx, t.watch = watchStall(ctx, times.stall)
	return t.send(ctx, conn, peer, info, l.transport, items, agent.SendOptions{LimitRate: limitRate})
}

// mustName parses a name already checked.
func mustName(s string) jid.JID {
	j, _ := linklocal.ParseName(s)
	return j
}

// peerNames lists the names of the known peers.
func peerNames(n *linklocal.Node) []string {
	if n == nil {
		return nil
	}
	var names []string
	for _, p := range n.Peers() {
		names = append(names, p.Name.String())
	}
	return names
}

const receiveLocalUsage = `Usage: jinglectl receive --local [flags]

Receive --local waits for Jingle file offers from link-local peers
(XEP-0174), without a server. Link-local names are not authenticated:
offers are declined unless the sender is named with --accept-from, or,
when standard input is a terminal, you answer yes to the question
"accept FILE (SIZE) from NAME? [y/N]".

Files are written as in server mode (NAME.part, renamed once verified;
never replacing a file). --once exits after the first session from a
sender that was allowed or asked, with its result.
` + localHelp + `
Example:
  jinglectl receive --local --listen :5298 --dir ~/Downloads --accept-from alice@laptop
`

func runReceiveLocal(args []string, e env) int {
	fs := newFlagSet("receive")
	l := addLocalFlags(fs)
	dir := fs.String("dir", ".", "receive into `DIR`")
	var acceptFrom stringList
	fs.Var(&acceptFrom, "accept-from", "accept files from link-local `NAME` (repeatable; others are declined, or asked about on a terminal)")
	once := fs.Bool("once", false, "exit after one session, with its result")
	var maxSize int64
	fs.Var(sizeFlag{&maxSize}, "max-size", "decline files larger than `SIZE` (eg. 100M; default 8G)")
	usage := func(w io.Writer) { commandUsage(w, receiveLocalUsage, fs, true) }
	if status, ok := parseFlags(fs, args, e, usage); !ok {
		return status
	}
	if fs.NArg() != 0 {
		return usageLine(e, "receive", "no arguments expected")
	}
	if fi, err := os.Stat(*dir); err != nil {
		return fail(e, "receive", usagef("directory %s: %v", *dir, unwrapPath(err)))
	} else if !fi.IsDir() {
		return fail(e, "receive", usagef("%s is not a directory", *dir))
	}
	var allow []jid.JID
	for _, s := range acceptFrom {
		j, err := linklocal.ParseName(s)
		if err != nil {
			return fail(e, "receive", usagef("--accept-from %q: not a link-local name (user@host)", s))
		}
		allow = append(allow, j)
	}
	o, err := l.options(e)
	if err != nil {
		return fail(e, "receive", err)
	}
	log := newLogger(e, l.level(), "", "warn")
	o.Logger = log
	ctx, stop := signalContext()
	defer stop()

	out := newRenderer(e, "receive", l.jsonOut, l.out.quiet)
	sessions := make(chan agent.SessionSummary, 16)
	o.OnEvent = out.event
	o.Receive = &agent.ReceiveOptions{
		Dir:        absPath(*dir),
		AcceptFrom: allow,
		MaxSize:    maxSize,
		OnSession: func(s agent.SessionSummary) {
			select {
			case sessions <- s:
			default:
			}
		},
	}
	if f, ok := e.stdin.(*os.File); ok && isTerminalFile(f) {
		o.Ask = newAsker(ctx, e, f)
	}
	fmt.Fprintln(e.stderr, unauthenticatedWarning)
	conn, err := agent.ConnectLocal(ctx, o)
	if err != nil {
		if ctx.Err() != nil {
			return exitCanceled
		}
		return fail(e, "receive", localConnectError(err))
	}
	closeConn := func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = conn.Close(cctx)
		out.finish()
	}
	{
		// Printed with --json too (on stderr): the port may be a free one,
		// which the sender needs.
		who := "nobody"
		if len(allow) > 0 {
			who = strings.Join(acceptFrom, ", ")
		}
		if o.Ask != nil {
			who += "; asking about the others"
		}
		fmt.Fprintf(e.stderr, "jinglectl: receive: waiting for files as %s on %s into %s (from %s)\n",
			conn.LocalAddr(), conn.Node().Addr(), o.Receive.Dir, who)
	}
	for {
		select {
		case <-ctx.Done():
			closeConn()
			if *once {
				return exitCanceled
			}
			return exitOK
		case s := <-sessions:
			if !s.Allowed || !*once {
				continue
			}
			closeConn()
			return sessionStatus(s)
		}
	}
}

// newAsker returns the question asked on the terminal about each offer
// from a sender not listed: "accept FILE (SIZE) from NAME? [y/N]".
func newAsker(ctx context.Context, e env, in *os.File) func(filetransfer.Offer) bool {
	lines := make(chan string)
	// The reader goroutine lives as long as the process: a read from a
	// terminal cannot be interrupted portably; it only ever blocks on
	// stdin and sends when asked.
	r := bufio.NewReader(in)
	want := make(chan struct{})
	go func() {
		for range want {
			s, err := r.ReadString('\n')
			if err != nil && s == "" {
				close(lines)
				return
			}
			lines <- s
		}
	}()
	return func(o filetransfer.Offer) bool {
		fmt.Fprintf(e.stderr, "jinglectl: accept %s (%s) from %s? [y/N] ", safeText(o.Name), agent.FormatSize(o.Size), safeText(o.From.String()))
		select {
		case want <- struct{}{}:
		case <-ctx.Done():
			return false
		}
		select {
		case s, ok := <-lines:
			if !ok {
				return false
			}
			s = strings.ToLower(strings.TrimSpace(s))
			return s == "y" || s == "yes"
		case <-ctx.Done():
			return false
		}
	}
}

// localOnlyFlags are the serverless flags as server mode's send and
// receive list them (for -help and completion): given without --local
// they are a usage error. (send's --name, in server mode, names standard
// input.)
var localOnlyFlags = []string{"local", "name", "listen", "peer", "no-mdns", "interface"}

// addLocalOnlyFlags registers localOnlyFlags on a server-mode flag set and
// returns the check to run after parsing. withName registers --name too.
func addLocalOnlyFlags(fs *pflag.FlagSet, withName bool) func() error {
	var l localFlags
	fs.BoolVar(&l.local, "local", false, "serverless mode (XEP-0174), no server and no account: see --local --help")
	if withName {
		fs.StringVar(&l.name, "name", "", "with --local: one's own link-local `NAME`")
	}
	fs.StringVar(&l.listen, "listen", "", "with --local: accept streams on `HOST:PORT`")
	fs.Var(&l.peers, "peer", "with --local: reach a peer at `HOST:PORT` or NAME=HOST:PORT without multicast")
	fs.BoolVar(&l.noMDNS, "no-mdns", false, "with --local: do not use multicast DNS")
	fs.Var(&l.ifaces, "interface", "with --local: run mDNS on `IFACE` only")
	return func() error {
		for _, name := range localOnlyFlags[1:] {
			if withName && flagSet(fs, name) || name != "name" && flagSet(fs, name) {
				return usagef("--%s needs --local (serverless mode)", name)
			}
		}
		return nil
	}
}
