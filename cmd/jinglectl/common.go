package main

import (
	"context"
	"errors"
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
	"github.com/spf13/pflag"
	"mellium.im/xmpp/jid"
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
	var ue usageError
	if errors.As(err, &ue) {
		msg += fmt.Sprintf("; see `jinglectl %s --help`", cmd)
	}
	fmt.Fprintf(e.stderr, "jinglectl: %s: %s\n", cmd, msg)
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
func (l *stringList) Type() string   { return "strings" }
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
func (f sizeFlag) Type() string { return "size" }
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
	fs                 *pflag.FlagSet
	config             string
	jid                string
	passwordFile       string
	servers            stringList
	caFile             string
	insecureSkipVerify bool
	logLevel           string
	out                outputFlags
}

// outputFlags are -q and -v.
type outputFlags struct {
	quiet   bool
	verbose int
}

func addOutputFlags(fs *pflag.FlagSet) *outputFlags {
	o := &outputFlags{}
	o.register(fs)
	return o
}

func (o *outputFlags) register(fs *pflag.FlagSet) {
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "print only errors: no progress, no informational lines")
	fs.CountVarP(&o.verbose, "verbose", "v", "log more: -v info, -vv debug (as --log-level)")
}

// level is the log level -q or -v ask for, "" for neither.
func (o *outputFlags) level() string {
	switch {
	case o.verbose >= 2:
		return "debug"
	case o.verbose == 1:
		return "info"
	case o.quiet:
		return "error"
	}
	return ""
}

func addAccountFlags(fs *pflag.FlagSet) *accountFlags {
	a := &accountFlags{fs: fs}
	fs.StringVar(&a.config, "config", "", "configuration `FILE` (default $XDG_CONFIG_HOME/jinglectl/config.toml)")
	fs.StringVar(&a.jid, "jid", "", "account `JID`; a full JID fixes the resource (default: config, $"+agent.EnvJID+")")
	fs.StringVar(&a.passwordFile, "password-file", "", "read the password from the first line of `FILE` (default: $"+agent.EnvPassword+")")
	fs.Var(&a.servers, "server", "connect to `HOST:PORT` instead of looking up SRV records (repeatable: tried in order, and in turn when the connection drops)")
	fs.StringVar(&a.caFile, "ca-file", "", "trust the CA certificates in `PEM` besides the system ones")
	fs.BoolVar(&a.insecureSkipVerify, "insecure-skip-verify", false, "do not verify the server certificate (local testing only)")
	fs.StringVar(&a.logLevel, "log-level", "", "log `LEVEL`: debug, info, warn or error (default warn; agent: info)")
	a.out.register(fs)
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

func addTransferFlags(fs *pflag.FlagSet, sending bool) *transferFlags {
	t := &transferFlags{}
	if sending {
		fs.StringVar(&t.transport, "transport", "", "`MODE`: auto, ibb, s5b or ice (default auto: SOCKS5, then ICE, then IBB, as the recipient supports)")
		fs.Var(sizeFlag{&t.limitRate}, "limit-rate", "send each file at most `RATE` bytes per second (eg. 500K)")
	}
	fs.Var(&t.proxies, "proxy", "offer the SOCKS5 proxy `JID` (repeatable; default: discovered on the server)")
	fs.BoolVar(&t.noProxy, "no-proxy", false, "offer no SOCKS5 proxy")
	fs.BoolVar(&t.noDirect, "no-direct", false, "reveal no address of this host to the peer and connect to none it names: SOCKS5 only through a proxy, ICE only relayed by TURN (XEP-0215), else IBB")
	fs.BoolVar(&t.allowLoopback, "allow-loopback", false, "offer and use loopback SOCKS5 and ICE candidates (single-host testing)")
	fs.DurationVar(&t.presenceWait, "presence-wait", 0, "how long to wait for a bare JID's presence: `DURATION` (default 5s)")
	fs.DurationVar(&t.connectTimeout, "connect-timeout", 0, "end a file whose transport does not come up within `DURATION` (default 60s)")
	return t
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *pflag.FlagSet, name string) bool { return fs.Changed(name) }

// override is a flag that, when given, replaces a configuration setting.
type override struct {
	flag  string
	apply func(*agent.Config)
}

// accountOverrides are the account flags over the configuration.
func (a *accountFlags) overrides() []override {
	return []override{
		{"jid", func(c *agent.Config) { c.JID = a.jid }},
		{"server", func(c *agent.Config) { c.Servers = a.servers }},
		{"ca-file", func(c *agent.Config) { c.CAFile = a.caFile }},
		{"insecure-skip-verify", func(c *agent.Config) { c.InsecureSkipVerify = a.insecureSkipVerify }},
		{"log-level", func(c *agent.Config) { c.LogLevel = a.logLevel }},
		{"password-file", func(c *agent.Config) { c.PasswordFile, c.Password = a.passwordFile, "" }},
	}
}

// overrides are the transfer flags over the configuration.
func (t *transferFlags) overrides() []override {
	return []override{
		{"transport", func(c *agent.Config) { c.Transport = t.transport }},
		{"proxy", func(c *agent.Config) { c.Proxies = t.proxies }},
		{"no-proxy", func(c *agent.Config) { c.NoProxy = t.noProxy }},
		{"no-direct", func(c *agent.Config) { c.NoDirect = t.noDirect }},
		{"allow-loopback", func(c *agent.Config) { c.AllowLoopback = t.allowLoopback }},
		{"limit-rate", func(c *agent.Config) { c.LimitRate = t.limitRate }},
		{"presence-wait", func(c *agent.Config) { c.PresenceWait = t.presenceWait }},
		{"connect-timeout", func(c *agent.Config) { c.ConnectTimeout = t.connectTimeout }},
	}
}

// applyOverrides applies the overrides whose flag was given.
func applyOverrides(fs *pflag.FlagSet, cfg *agent.Config, table []override) {
	for _, o := range table {
		if fs.Changed(o.flag) {
			o.apply(cfg)
		}
	}
}

// checkLogLevel checks a --log-level value.
func checkLogLevel(level string) error {
	switch level {
	case "", "debug", "info", "warn", "error":
		return nil
	}
	return usagef("--log-level %q: want debug, info, warn or error", level)
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
	if err := checkLogLevel(a.logLevel); err != nil {
		return cfg, err
	}
	applyOverrides(fs, &cfg, a.overrides())
	if l := a.out.level(); l != "" && !fs.Changed("log-level") {
		cfg.LogLevel = l
	}
	if cfg.Password == "" && cfg.PasswordFile != "" {
		pw, err := agent.ReadPasswordFile(cfg.PasswordFile)
		if err != nil {
			return cfg, usageError{err.Error()}
		}
		cfg.Password = pw
	}
	if t != nil {
		applyOverrides(fs, &cfg, t.overrides())
		if cfg.NoProxy && len(cfg.Proxies) > 0 {
			return cfg, usagef("--proxy and --no-proxy exclude each other")
		}
		if cfg.Transport != "" {
			if err := checkTransportMode(cfg.Transport); err != nil {
				return cfg, err
			}
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

// accountSetup is what every command that logs in starts with: the
// configuration (file, environment, flags), checked, the warning of
// --insecure-skip-verify, and the logger.
func accountSetup(e env, a *accountFlags, t *transferFlags) (agent.Config, *slog.Logger, error) {
	cfg, err := loadConfig(e, a, t)
	if err != nil {
		return cfg, nil, err
	}
	if err := checkAccount(cfg); err != nil {
		return cfg, nil, err
	}
	if cfg.InsecureSkipVerify && !a.out.quiet {
		fmt.Fprintln(e.stderr, "jinglectl: warning: --insecure-skip-verify: the server certificate is not verified (local testing only)")
	}
	return cfg, newLogger(e, cfg.LogLevel, "", "warn"), nil
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
	opts := &slog.HandlerOptions{Level: l, ReplaceAttr: jidsAsStrings}
	if format == "text" || (format == "" && e.isTerminal(e.stderr)) {
		return slog.New(slog.NewTextHandler(e.stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(e.stderr, opts))
}

// jidsAsStrings writes JIDs as their string: a jid.JID has no exported
// field, so a JSON log would show it as {}.
func jidsAsStrings(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() != slog.KindAny {
		return a
	}
	switch v := a.Value.Any().(type) {
	case jid.JID:
		a.Value = slog.StringValue(v.String())
	case *jid.JID:
		if v != nil {
			a.Value = slog.StringValue(v.String())
		}
	}
	return a
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
	where := strings.Join(cfg.Servers, ", ")
	if where == "" {
		if j, jerr := agent.AccountJID(cfg.JID); jerr == nil {
			where = j.Domainpart()
		}
	}
	var se *xmppclient.SASLError
	switch {
	case errors.As(err, &se) && errors.Is(err, xmppclient.ErrAuth):
		return explained{fmt.Sprintf("login as %s refused: %s (check the JID and the password)", who, se.Condition), err}
	case errors.Is(err, xmppclient.ErrAuth):
		return explained{fmt.Sprintf("login as %s refused: %s (check the JID and the password)", who, detail), err}
	case errors.Is(err, xmppclient.ErrNoTLS):
		return explained{fmt.Sprintf("cannot log in as %s: the server at %s offers no TLS, and jinglectl never logs in without it (no flag allows that: enable TLS on the server)", who, where), err}
	case errors.Is(err, xmppclient.ErrNotXMPP):
		_, answered, _ := strings.Cut(detail, "not an XMPP server: ")
		return explained{fmt.Sprintf("cannot log in as %s: %s is not an XMPP server (it answered: %s); check --server: give the client port, usually 5222", who, where, answered), err}
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
func commandUsage(w io.Writer, text string, fs *pflag.FlagSet, statuses bool) {
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
