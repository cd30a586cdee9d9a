package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jinglekit/jinglekit/cmd/jinglectl/internal/agent"
	"github.com/jinglekit/jinglekit/xmppclient"
)

// Exit statuses beyond exitOK, exitFailure and exitUsage. They are
// documented in docs/jinglectl.md; never renumber them.
const (
	exitAuth        = 3  // login refused: wrong JID or password
	exitConnect     = 4  // server unreachable, TLS failure, connection lost
	exitOffline     = 5  // recipient offline or not visible
	exitUnsupported = 6  // recipient without Jingle file transfer
	exitDeclined    = 7  // the receiver declined the file
	exitTransport   = 8  // no common transport, or the transport failed
	exitHash        = 9  // hash mismatch (the data did not verify)
	exitTimeout     = 10 // the peer did not answer in time
	exitCanceled    = 11 // cancelled (signal, jinglectl cancel, or by the peer)
	exitAgent       = 12 // no agent, or its control socket is unusable
)

// exitStatuses documents the exit statuses, for usage texts.
const exitStatuses = `Exit status:
   0  success (every file received and verified)
   1  other failure (local I/O, protocol error)
   2  bad usage (flags, arguments, missing file, unavailable transport)
   3  login refused (wrong JID or password)
   4  cannot connect (server unreachable, TLS failure, connection lost)
   5  recipient offline or not visible
   6  recipient does not support Jingle file transfer
   7  declined
   8  no common transport, or transport failure
   9  hash mismatch
  10  timeout
  11  cancelled
  12  agent unavailable or control socket unusable
`

// outcomeStatus maps an outcome (agent.Outcome…) to an exit status.
func outcomeStatus(outcome string) int {
	switch outcome {
	case agent.OutcomeOK:
		return exitOK
	case agent.OutcomeAuth:
		return exitAuth
	case agent.OutcomeConnect:
		return exitConnect
	case agent.OutcomeOffline:
		return exitOffline
	case agent.OutcomeUnsupported:
		return exitUnsupported
	case agent.OutcomeDeclined, agent.OutcomeTooLarge:
		return exitDeclined
	case agent.OutcomeTransport:
		return exitTransport
	case agent.OutcomeHashMismatch:
		return exitHash
	case agent.OutcomeTimeout:
		return exitTimeout
	case agent.OutcomeCanceled:
		return exitCanceled
	}
	return exitFailure
}

// errStatus maps an error to an exit status.
func errStatus(err error) int { return outcomeStatus(agent.Outcome(err)) }

// usageError is an error in the command line: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// fail prints "jinglectl: CMD: err" on one line and returns the status.
func fail(e env, cmd string, err error) int {
	msg := safeText(strings.ReplaceAll(err.Error(), "\n", "; "))
	fmt.Fprintf(e.stderr, "jinglectl: %s: %s\n", cmd, msg)
	var ue usageError
	var ce *agent.ConfigError
	switch {
	case errors.As(err, &ue), errors.As(err, &ce):
		return exitUsage
	case errors.Is(err, agent.ErrControl):
		return exitAgent
	case errors.Is(err, agent.ErrTransportNotAvailable):
		return exitUsage
	}
	return errStatus(err)
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }
func (l *stringList) Set(s string) error {
	*l = append(*l, s)
	return nil
}

// sizeFlag is a size flag (agent.ParseSize).
type sizeFlag struct{ n *int64 }

func (f sizeFlag) String() string {
	if f.n == nil || *f.n == 0 {
		return ""
	}
	return agent.FormatSize(*f.n)
}
func (f sizeFlag) Set(s string) error {
	n, err := agent.ParseSize(s)
	if err != nil {
		return err
	}
	*f.n = n
	return nil
}

// accountFlags are the flags every command that logs in takes.
type accountFlags struct {
	fs                 *flag.FlagSet
	config             string
	jid                string
	passwordFile       string
	servers            stringList
	caFile             string
	insecureSkipVerify bool
	logLevel           string
}

func addAccountFlags(fs *flag.FlagSet) *accountFlags {
	a := &accountFlags{fs: fs}
	fs.StringVar(&a.config, "config", "", "configuration `FILE` (default $XDG_CONFIG_HOME/jinglectl/config.toml)")
	fs.StringVar(&a.jid, "jid", "", "account `JID`; a full JID fixes the resource (default: config, $"+agent.EnvJID+")")
	fs.StringVar(&a.passwordFile, "password-file", "", "read the password from the first line of `FILE` (default: $"+agent.EnvPassword+")")
	fs.Var(&a.servers, "server", "connect to `HOST:PORT` instead of looking up SRV records (repeatable: tried in order, and in turn when the connection drops)")
	fs.StringVar(&a.caFile, "ca-file", "", "trust the CA certificates in `PEM` besides the system ones")
	fs.BoolVar(&a.insecureSkipVerify, "insecure-skip-verify", false, "do not verify the server certificate (local testing only)")
	fs.StringVar(&a.logLevel, "log-level", "", "log `LEVEL`: debug, info, warn or error (default warn; agent: info)")
	return a
}

// transferFlags are the flags that shape the transports.
type transferFlags struct {
	transport      string
	proxies        stringList
	noProxy        bool
	noDirect       bool
	allowLoopback  bool
	limitRate      int64
	presenceWait   time.Duration
	connectTimeout time.Duration
}

func addTransferFlags(fs *flag.FlagSet, sending bool) *transferFlags {
	t := &transferFlags{}
	if sending {
		fs.StringVar(&t.transport, "transport", "", "`MODE`: auto, ibb, s5b or ice (default auto: SOCKS5, then ICE, then IBB, as the recipient supports)")
		fs.Var(sizeFlag{&t.limitRate}, "limit-rate", "send each file at most `RATE` bytes per second (eg. 500K)")
	}
	fs.Var(&t.proxies, "proxy", "offer the SOCKS5 proxy `JID` (repeatable; default: discovered on the server)")
	fs.BoolVar(&t.noProxy, "no-proxy", false, "offer no SOCKS5 proxy")
	fs.BoolVar(&t.noDirect, "no-direct", false, "offer no direct SOCKS5 candidate: the proxy carries the data, no IP address is revealed")
	fs.BoolVar(&t.allowLoopback, "allow-loopback", false, "offer and use loopback SOCKS5 and ICE candidates (single-host testing)")
	fs.DurationVar(&t.presenceWait, "presence-wait", 0, "how long to wait for a bare JID's presence: `DURATION` (default 5s)")
	fs.DurationVar(&t.connectTimeout, "connect-timeout", 0, "end a file whose transport does not come up within `DURATION` (default 60s)")
	return t
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

// loadConfig reads the configuration file, then applies the environment,
// then the flags: flags beat the environment, which beats the file.
func loadConfig(e env, a *accountFlags, t *transferFlags) (agent.Config, error) {
	path := a.config
	if path == "" {
		path = e.getenv(agent.EnvConfig)
	}
	cfg, err := agent.Load(path)
	if err != nil {
		return agent.Config{}, err
	}
	if v := e.getenv(agent.EnvJID); v != "" {
		cfg.JID = v
	}
	if v := e.getenv(agent.EnvServer); v != "" {
		cfg.Servers = agent.SplitServers(v)
	}
	if v := e.getenv(agent.EnvPassword); v != "" {
		cfg.Password = v
		cfg.PasswordFile = ""
	}
	fs := a.fs
	if flagSet(fs, "jid") {
		cfg.JID = a.jid
	}
	if flagSet(fs, "server") {
		cfg.Servers = a.servers
	}
	if flagSet(fs, "ca-file") {
		cfg.CAFile = a.caFile
	}
	if flagSet(fs, "insecure-skip-verify") {
		cfg.InsecureSkipVerify = a.insecureSkipVerify
	}
	if flagSet(fs, "log-level") {
		switch a.logLevel {
		case "debug", "info", "warn", "error":
		default:
			return cfg, usagef("--log-level %q: want debug, info, warn or error", a.logLevel)
		}
		cfg.LogLevel = a.logLevel
	}
	if flagSet(fs, "password-file") {
		cfg.PasswordFile = a.passwordFile
		cfg.Password = ""
	}
	if cfg.Password == "" && cfg.PasswordFile != "" {
		pw, err := agent.ReadPasswordFile(cfg.PasswordFile)
		if err != nil {
			return cfg, usageError{err.Error()}
		}
		cfg.Password = pw
	}
	if t != nil {
		if flagSet(fs, "transport") {
			cfg.Transport = t.transport
		}
		if flagSet(fs, "proxy") {
			cfg.Proxies = t.proxies
		}
		if flagSet(fs, "no-proxy") {
			cfg.NoProxy = t.noProxy
		}
		if flagSet(fs, "no-direct") {
			cfg.NoDirect = t.noDirect
		}
		if flagSet(fs, "allow-loopback") {
			cfg.AllowLoopback = t.allowLoopback
		}
		if flagSet(fs, "limit-rate") {
			cfg.LimitRate = t.limitRate
		}
		if flagSet(fs, "presence-wait") {
			cfg.PresenceWait = t.presenceWait
		}
		if flagSet(fs, "connect-timeout") {
			cfg.ConnectTimeout = t.connectTimeout
		}
		if cfg.NoProxy && len(cfg.Proxies) > 0 {
			return cfg, usagef("--proxy and --no-proxy exclude each other")
		}
		switch cfg.Transport {
		case "", agent.TransportAuto, agent.TransportIBB, agent.TransportS5B, agent.TransportICE:
		default:
			return cfg, usagef("--transport %q: want auto, ibb, s5b or ice", cfg.Transport)
		}
	}
	if cfg.CAFile != "" {
		if fi, err := os.Stat(cfg.CAFile); err != nil {
			return cfg, usagef("CA file: %v", err)
		} else if fi.IsDir() {
			return cfg, usagef("CA file %s is a directory", cfg.CAFile)
		}
	}
	return cfg.WithDefaults(), nil
}

// checkAccount validates the account settings before any connection.
func checkAccount(cfg agent.Config) error {
	if _, err := agent.AccountJID(cfg.JID); err != nil {
		return usageError{err.Error()}
	}
	if cfg.Password == "" {
		return usagef("no password: set $%s or give --password-file", agent.EnvPassword)
	}
	return nil
}

// newLogger makes the command's logger: text on a terminal, JSON
// otherwise (or as format says), at level (default def).
func newLogger(e env, level, format, def string) *slog.Logger {
	if level == "" {
		level = def
	}
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: l}
	if format == "text" || (format == "" && e.isTerminal(e.stderr)) {
		return slog.New(slog.NewTextHandler(e.stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(e.stderr, opts))
}

// signalContext is cancelled on SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// explained is an error with a message of its own that still matches
// what it wraps.
type explained struct {
	msg string
	err error
}

func (e explained) Error() string { return e.msg }
func (e explained) Unwrap() error { return e.err }

// connectError explains a login failure in one line.
func connectError(cfg agent.Config, err error) error {
	who := cfg.JID
	detail := strings.ReplaceAll(err.Error(), "xmppclient: ", "")
	var se *xmppclient.SASLError
	switch {
	case errors.As(err, &se) && errors.Is(err, xmppclient.ErrAuth):
		return explained{fmt.Sprintf("login as %s refused: %s (check the JID and the password)", who, se.Condition), err}
	case errors.Is(err, xmppclient.ErrAuth):
		return explained{fmt.Sprintf("login as %s refused: %s (check the JID and the password)", who, detail), err}
	case errors.Is(err, xmppclient.ErrTLS):
		return explained{fmt.Sprintf("cannot log in as %s: %s (use --ca-file for a private CA)", who, detail), err}
	}
	return explained{fmt.Sprintf("cannot log in as %s: %s", who, detail), err}
}

// checkSendable checks that path is a regular file that can be read.
func checkSendable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return usagef("%s: %v", path, pe.Err)
		}
		return usageError{err.Error()}
	}
	if fi.IsDir() {
		return usagef("%s is a directory: give files (or archive the directory first)", path)
	}
	if !fi.Mode().IsRegular() {
		return usagef("%s is not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return usagef("%s: %v", path, pe.Err)
		}
		return usageError{err.Error()}
	}
	f.Close()
	return nil
}

// absPath returns path made absolute.
func absPath(path string) string {
	if p, err := filepath.Abs(path); err == nil {
		return p
	}
	return path
}

// commandUsage writes a command's usage: the synopsis and description,
// the flags and the exit statuses.
func commandUsage(w io.Writer, text string, fs *flag.FlagSet, statuses bool) {
	io.WriteString(w, text)
	io.WriteString(w, "\nFlags:\n")
	io.WriteString(w, flagDefaults(fs))
	if statuses {
		io.WriteString(w, "\n"+exitStatuses)
	}
}

// safeText makes text from peers (file names, reasons) harmless on a
// terminal: control characters, bidirectional overrides and other
// invisible characters are shown escaped (\x1b, \u202e) instead of being
// written out.
func safeText(s string) string {
	if !strings.ContainsFunc(s, unsafeRune) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == utf8.RuneError:
			b.WriteString(`\ufffd`)
		case unsafeRune(r):
			if r < 0x100 {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func unsafeRune(r rune) bool {
	if r == ' ' {
		return false
	}
	return r == utf8.RuneError || !unicode.IsPrint(r) || unicode.Is(unicode.Bidi_Control, r)
}
