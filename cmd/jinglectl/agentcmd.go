package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jinglekit/jinglekit/cmd/jinglectl/internal/agent"
)

const agentUsage = `Usage: jinglectl agent [flags]

Agent runs the headless transfer agent. It stays logged in — logging in
again with exponential backoff when the server restarts or the network
goes away, and announcing its presence again — receives files per policy
(receive.dir, receive.accept_from or the mutual roster contacts) and sends
the files queued with 'jinglectl send --agent', retrying those whose
attempt failed for a reason that may pass (recipient offline, transport
failure, lost connection) up to agent.max_attempts; an interrupted file is
resumed where it stopped (XEP-0234 ranges).

It serves a control socket (agent.socket, mode 0600) for send --agent,
status and cancel, and optionally Prometheus metrics on
http://agent.metrics/metrics. Logs are structured (log/slog): JSON unless
standard error is a terminal.

On SIGTERM or SIGINT, in-flight transfers are ended with session-terminate;
received data stays in NAME.part for a resume, no file gets its final name
unless verified, and unfinished sends stay queued in agent.state_file.

Everything is configured in the configuration file (see docs/jinglectl.md);
the account flags override it.

Example:
  jinglectl agent --config /etc/jinglectl/agent.toml
`

func runAgent(args []string, e env) int {
	fs := newFlagSet("agent")
	acct := addAccountFlags(fs)
	tf := addTransferFlags(fs, false)
	socket := fs.String("socket", "", "control socket `PATH` (default: agent.socket, else $XDG_RUNTIME_DIR/jinglectl/agent.sock)")
	metrics := fs.String("metrics", "", "serve Prometheus metrics on `HOST:PORT`/metrics")
	dir := fs.String("dir", "", "receive into `DIR` (default: receive.dir; none: decline every offer)")
	usage := func(w io.Writer) { commandUsage(w, agentUsage, fs, false) }
	if status, ok := parseFlags(fs, args, e, usage); !ok {
		return status
	}
	if fs.NArg() != 0 {
		return usageLine(e, "agent", "no arguments expected")
	}
	cfg, err := loadConfig(e, acct, tf)
	if err != nil {
		return fail(e, "agent", err)
	}
	if flagSet(fs, "socket") {
		cfg.Socket = *socket
	}
	if flagSet(fs, "metrics") {
		cfg.Metrics = *metrics
	}
	if flagSet(fs, "dir") {
		cfg.Dir = *dir
	}
	if cfg.Dir != "" {
		cfg.Dir = absPath(cfg.Dir)
	}
	if err := checkAccount(cfg); err != nil {
		return fail(e, "agent", err)
	}
	log := newLogger(e, cfg.LogLevel, cfg.LogFormat, "info")
	if cfg.InsecureSkipVerify {
		log.Warn("jinglectl agent: insecure_skip_verify is set: the server certificate is not verified (local testing only)")
	}
	ctx, stop := signalContext()
	defer stop()
	a := agent.New(cfg, log)
	if err := a.Run(ctx); err != nil {
		var ce *agent.ConfigError
		if !errors.As(err, &ce) && !errors.Is(err, agent.ErrControl) && !errors.Is(err, agent.ErrMetricsListen) {
			err = connectError(cfg, err)
		}
		return fail(e, "agent", err)
	}
	return exitOK
}

const statusUsage = `Usage: jinglectl status [flags]

Status asks the running agent (through its control socket) whether it is
logged in and lists its transfers: queued, active and recent ones.

Example:
  jinglectl status
`

func controlSocket(e env, config, socket string) (string, error) {
	if socket != "" {
		return socket, nil
	}
	cfg, err := agent.Load(configPath(e, config))
	if err != nil {
		return "", err
	}
	return cfg.WithDefaults().Socket, nil
}

func runStatus(args []string, e env) int {
	fs := newFlagSet("status")
	config := fs.String("config", "", "configuration `FILE` (for agent.socket)")
	socket := fs.String("socket", "", "control socket `PATH` of the agent")
	jsonOut := fs.Bool("json", false, "print the status as one JSON object")
	usage := func(w io.Writer) { commandUsage(w, statusUsage, fs, false) }
	if status, ok := parseFlags(fs, args, e, usage); !ok {
		return status
	}
	if fs.NArg() != 0 {
		return usageLine(e, "status", "no arguments expected")
	}
	path, err := controlSocket(e, *config, *socket)
	if err != nil {
		return fail(e, "status", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := agent.DialControl(ctx, path)
	if err != nil {
		return fail(e, "status", err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := c.Send(agent.Request{Op: agent.OpStatus}); err != nil {
		return fail(e, "status", err)
	}
	r, err := c.Next()
	if err != nil {
		return fail(e, "status", err)
	}
	if r.Status == nil {
		return fail(e, "status", fmt.Errorf("%w: unexpected reply %q: %s", agent.ErrControl, r.Event.Event, r.Error))
	}
	if *jsonOut {
		b, _ := json.Marshal(r.Status)
		fmt.Fprintf(e.stdout, "%s\n", b)
		return exitOK
	}
	st := r.Status
	state := "disconnected (logging in again)"
	if st.Connected {
		state = "connected since " + st.Since.Local().Format(time.DateTime)
		if st.Server != "" {
			state += " through " + safeText(st.Server)
		}
	}
	fmt.Fprintf(e.stdout, "agent %s: %s, %d reconnects, %d Jingle sessions, %d queued\n", safeText(st.JID), state, st.Reconnects, st.Sessions, st.Queued)
	if len(st.Transfers) == 0 {
		fmt.Fprintln(e.stdout, "no transfers")
		return exitOK
	}
	tw := tabwriter.NewWriter(e.stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tDIR\tPEER\tFILE\tSTATE\tPROGRESS\tTRANSPORT\tNOTE")
	for _, t := range st.Transfers {
		progress := agent.FormatSize(t.Bytes)
		if t.Size > 0 {
			progress = fmt.Sprintf("%s/%s", agent.FormatSize(t.Bytes), agent.FormatSize(t.Size))
		}
		note := t.Error
		if t.Attempts > 1 {
			note = strings.TrimSpace(fmt.Sprintf("attempt %d %s", t.Attempts, note))
		}
		if t.Offset > 0 {
			note = strings.TrimSpace(fmt.Sprintf("resumed at %s %s", agent.FormatSize(t.Offset), note))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", safeText(t.ID), t.Direction, safeText(t.Peer), truncate(safeText(t.File), 40),
			safeText(t.State), progress, safeText(cmp.Or(t.Route, t.Transport)), truncate(safeText(oneLine(note)), 60))
	}
	tw.Flush()
	return exitOK
}

const cancelUsage = `Usage: jinglectl cancel [flags] ID...

Cancel stops transfers of the running agent: a queued file leaves the
queue, a file being sent or received is ended (session-terminate or
content-remove). IDs are those of jinglectl status.

Example:
  jinglectl cancel s12
`

func runCancel(args []string, e env) int {
	fs := newFlagSet("cancel")
	config := fs.String("config", "", "configuration `FILE` (for agent.socket)")
	socket := fs.String("socket", "", "control socket `PATH` of the agent")
	usage := func(w io.Writer) { commandUsage(w, cancelUsage, fs, false) }
	if status, ok := parseFlags(fs, args, e, usage); !ok {
		return status
	}
	if fs.NArg() == 0 {
		return usageLine(e, "cancel", "want at least one transfer ID")
	}
	path, err := controlSocket(e, *config, *socket)
	if err != nil {
		return fail(e, "cancel", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := agent.DialControl(ctx, path)
	if err != nil {
		return fail(e, "cancel", err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := c.Send(agent.Request{Op: agent.OpCancel, IDs: fs.Args()}); err != nil {
		return fail(e, "cancel", err)
	}
	status := exitOK
	for range fs.NArg() {
		r, err := c.Next()
		if err != nil {
			return fail(e, "cancel", err)
		}
		switch r.Event.Event {
		case agent.ReplyCanceled:
			fmt.Fprintf(e.stdout, "cancelled %s\n", safeText(r.ID))
		default:
			fmt.Fprintf(e.stderr, "jinglectl: cancel: %s\n", safeText(r.Error))
			status = exitFailure
		}
	}
	return status
}
