package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jinglekit/jinglekit/filetransfer"
)

// Environment variables read by the command line.
const (
	// EnvPassword holds the account's password.
	EnvPassword = "JINGLECTL_PASSWORD"
	// EnvJID holds the account's JID.
	EnvJID = "JINGLECTL_JID"
	// EnvServer holds the "host:port" to connect to, or several separated
	// by commas, tried in order.
	EnvServer = "JINGLECTL_SERVER"
	// EnvConfig names the configuration file.
	EnvConfig = "JINGLECTL_CONFIG"
)

// Transport modes of Config.Transport.
const (
	TransportAuto = "auto"
	TransportIBB  = "ibb"
	TransportS5B  = "s5b"
	TransportICE  = "ice"
)

// Defaults of Config.
const (
	DefaultPresenceWait = 5 * time.Second
	DefaultConcurrency  = 2
	DefaultMaxAttempts  = 20
	DefaultReconnectMin = time.Second
	DefaultReconnectMax = time.Minute
	// DefaultFilesPerSession is the number of files offered in one
	// session: the default limit of a jinglekit receiver
	// (filetransfer.Limits.MaxFiles).
	DefaultFilesPerSession = 16
	// DefaultShutdownTimeout bounds the agent's graceful stop.
	DefaultShutdownTimeout = 10 * time.Second
)

// Config is jinglectl's configuration: the account, how files travel, how
// they are received, and the agent's settings. It is read from a TOML file
// (Load), then overridden by the environment and by flags (the command line
// does that); the zero value plus WithDefaults is usable.
type Config struct {
	// Account.
	JID                string
	Password           string // from the file only if the file is private (mode 0600)
	PasswordFile       string
	Servers            []string // "host:port" endpoints tried in order; none: SRV
	CAFile             string
	InsecureSkipVerify bool

	// [transfer]
	Transport     string   // auto | ibb | s5b | ice
	Proxies       []string // SOCKS5 proxy JIDs to offer (besides discovered ones)
	NoProxy       bool     // offer no proxy candidate and discover none
	NoDirect      bool     // no address of this host to the peer, none of its own used: S5B via a proxy, ICE relayed, or IBB
	AllowLoopback bool     // offer and accept loopback candidates (single-host tests)
	ICEServers    []string // STUN/TURN servers for ICE (ParseICEServer); none: XEP-0215 discovery
	ICERelayOnly  bool     // ICE offers relayed candidates only (needs TURN)
	LimitRate     int64    // bytes per second per sent file; 0: no limit
	PresenceWait  time.Duration
	// ConnectTimeout bounds the time a file's transport takes to come up,
	// sending and receiving (default filetransfer.DefaultConnectTimeout).
	ConnectTimeout time.Duration
	// FilesPerSession is the number of files offered in one session; more
	// are sent in further sessions (default DefaultFilesPerSession).
	FilesPerSession int

	// [receive]
	Dir        string
	AcceptFrom []string
	MaxSize    int64

	// [agent]
	Socket       string
	Metrics      string // "host:port" of the /metrics endpoint; "" none
	Concurrency  int
	MaxAttempts  int
	ReconnectMin time.Duration
	ReconnectMax time.Duration
	StateFile    string
	// OMEMOStateFile is the account's OMEMO keys, sessions and trust
	// (mode 0600); "" is DefaultOMEMOStateFile.
	OMEMOStateFile  string
	LogLevel        string
	LogFormat       string // "json", "text" or "" (JSON unless stderr is a terminal)
	ShutdownTimeout time.Duration

	// Path is the file the configuration was read from ("" if none).
	Path string
}

// DefaultConfigPath is $XDG_CONFIG_HOME/jinglectl/config.toml, or
// ~/.config/jinglectl/config.toml.
func DefaultConfigPath() string {
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "jinglectl", "config.toml")
}

// DefaultSocketPath is $XDG_RUNTIME_DIR/jinglectl/agent.sock, or
// /tmp/jinglectl-UID/agent.sock.
func DefaultSocketPath() string {
	if dir := os.Getenv("XDG_RUNTIME_DIR"); dir != "" {
		return filepath.Join(dir, "jinglectl", "agent.sock")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("jinglectl-%d", os.Getuid()), "agent.sock")
}

// WithDefaults fills the unset fields.
func (c Config) WithDefaults() Config {
	if c.Transport == "" {
		c.Transport = TransportAuto
	}
	if c.PresenceWait <= 0 {
		c.PresenceWait = DefaultPresenceWait
	}
	if c.FilesPerSession <= 0 {
		c.FilesPerSession = DefaultFilesPerSession
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = filetransfer.DefaultConnectTimeout
	}
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.ReconnectMin <= 0 {
		c.ReconnectMin = DefaultReconnectMin
	}
	if c.ReconnectMax <= 0 {
		c.ReconnectMax = DefaultReconnectMax
	}
	if c.ReconnectMax < c.ReconnectMin {
		c.ReconnectMax = c.ReconnectMin
	}
	if c.Socket == "" {
		c.Socket = DefaultSocketPath()
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	return c
}

// ConfigError is an error in the configuration file or in a setting.
type ConfigError struct {
	Path string
	Line int
	Err  error
}

func (e *ConfigError) Error() string {
	switch {
	case e.Path != "" && e.Line > 0:
		return fmt.Sprintf("%s:%d: %v", e.Path, e.Line, e.Err)
	case e.Path != "":
		return fmt.Sprintf("%s: %v", e.Path, e.Err)
	}
	return e.Err.Error()
}

func (e *ConfigError) Unwrap() error { return e.Err }

// Load reads the configuration file at path. When path is "" the default
// file is read if it exists; an explicit path must exist.
func Load(path string) (Config, error) {
	explicit := path != ""
	if !explicit {
		path = DefaultConfigPath()
		if path == "" {
			return Config{}, nil
		}
	}
	f, err := os.Open(path)
	if err != nil {
		if !explicit && errors.Is(err, fs.ErrNotExist) {
			return Config{}, nil
		}
		return Config{}, &ConfigError{Path: path, Err: unwrapPathError(err)}
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		return Config{}, &ConfigError{Path: path, Err: errors.New("is a directory")}
	}
	doc, err := parseTOML(f)
	if err != nil {
		var pe *tomlError
		if errors.As(err, &pe) {
			return Config{}, &ConfigError{Path: path, Line: pe.Line, Err: errors.New(pe.Msg)}
		}
		return Config{}, &ConfigError{Path: path, Err: err}
	}
	c, err := fromDocument(doc, path)
	if err != nil {
		return Config{}, err
	}
	if c.Password != "" {
		// A password in the file: the file must be private.
		if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o077 != 0 {
			return Config{}, &ConfigError{Path: path, Line: doc["password"].Line,
				Err: fmt.Errorf("holds a password but is readable by others (mode %04o): chmod 600 it, or use password_file", fi.Mode().Perm())}
		}
	}
	c.Path = path
	return c, nil
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// setting is one key of the configuration file.
type setting struct {
	key string
	set func(c *Config, v value) error
}

func str(f func(*Config) *string) func(*Config, value) error {
	return func(c *Config, v value) error {
		if v.Kind != kindString {
			return fmt.Errorf("want a string, not %s", v.Kind)
		}
		*f(c) = v.Str
		return nil
	}
}

func boolean(f func(*Config) *bool) func(*Config, value) error {
	return func(c *Config, v value) error {
		if v.Kind != kindBool {
			return fmt.Errorf("want true or false, not %s", v.Kind)
		}
		*f(c) = v.Bool
		return nil
	}
}

func integer(f func(*Config) *int) func(*Config, value) error {
	return func(c *Config, v value) error {
		if v.Kind != kindInteger || v.Int < 0 || v.Int > math.MaxInt32 {
			return fmt.Errorf("want a non-negative integer")
		}
		*f(c) = int(v.Int)
		return nil
	}
}

func size(f func(*Config) *int64) func(*Config, value) error {
	return func(c *Config, v value) error {
		switch v.Kind {
		case kindInteger:
			if v.Int < 0 {
				return errors.New("negative size")
			}
			*f(c) = v.Int
			return nil
		case kindString:
			n, err := ParseSize(v.Str)
			if err != nil {
				return err
			}
			*f(c) = n
			return nil
		}
		return fmt.Errorf("want a size such as \"10M\" or a number of bytes, not %s", v.Kind)
	}
}

func duration(f func(*Config) *time.Duration) func(*Config, value) error {
	return func(c *Config, v value) error {
		if v.Kind != kindString {
			return fmt.Errorf("want a duration such as \"30s\", not %s", v.Kind)
		}
		d, err := time.ParseDuration(v.Str)
		if err != nil || d < 0 {
			return fmt.Errorf("invalid duration %q", v.Str)
		}
		*f(c) = d
		return nil
	}
}

func strings_(f func(*Config) *[]string) func(*Config, value) error {
	return func(c *Config, v value) error {
		switch v.Kind {
		case kindStringArray:
			*f(c) = slices.Clone(v.Strings)
		case kindString:
			*f(c) = []string{v.Str}
		default:
			return fmt.Errorf("want an array of strings, not %s", v.Kind)
		}
		return nil
	}
}

func oneOf(f func(*Config) *string, allowed ...string) func(*Config, value) error {
	return func(c *Config, v value) error {
		if v.Kind != kindString || !slices.Contains(allowed, v.Str) {
			return fmt.Errorf("want one of %s", strings.Join(allowed, ", "))
		}
		*f(c) = v.Str
		return nil
	}
}

// iceServers reads transfer.ice_servers, checking each server.
func iceServers(c *Config, v value) error {
	var list []string
	if err := strings_(func(*Config) *[]string { return &list })(c, v); err != nil {
		return err
	}
	for _, s := range list {
		if _, err := ParseICEServer(s); err != nil {
			return err
		}
	}
	c.ICEServers = list
	return nil
}

// servers reads server: one "host:port" or a list of them (the nodes of a
// cluster, or several servers of one domain), tried in order.
func servers(c *Config, v value) error {
	var list []string
	if err := strings_(func(*Config) *[]string { return &list })(c, v); err != nil {
		return err
	}
	for _, s := range list {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return fmt.Errorf("server %q: want host:port", s)
		}
	}
	c.Servers = list
	return nil
}

// SplitServers splits a comma-separated list of "host:port" (the form of
// $JINGLECTL_SERVER), dropping empty entries.
func SplitServers(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// settings are the keys of the configuration file.
var settings = []setting{
	{"jid", str(func(c *Config) *string { return &c.JID })},
	{"password", str(func(c *Config) *string { return &c.Password })},
	{"password_file", str(func(c *Config) *string { return &c.PasswordFile })},
	{"server", servers},
	{"ca_file", str(func(c *Config) *string { return &c.CAFile })},
	{"insecure_skip_verify", boolean(func(c *Config) *bool { return &c.InsecureSkipVerify })},

	{"transfer.transport", oneOf(func(c *Config) *string { return &c.Transport }, TransportAuto, TransportIBB, TransportS5B, TransportICE)},
	{"transfer.proxy", strings_(func(c *Config) *[]string { return &c.Proxies })},
	{"transfer.no_proxy", boolean(func(c *Config) *bool { return &c.NoProxy })},
	{"transfer.no_direct", boolean(func(c *Config) *bool { return &c.NoDirect })},
	{"transfer.allow_loopback", boolean(func(c *Config) *bool { return &c.AllowLoopback })},
	{"transfer.ice_servers", iceServers},
	{"transfer.ice_relay_only", boolean(func(c *Config) *bool { return &c.ICERelayOnly })},
	{"transfer.limit_rate", size(func(c *Config) *int64 { return &c.LimitRate })},
	{"transfer.presence_wait", duration(func(c *Config) *time.Duration { return &c.PresenceWait })},
	{"transfer.files_per_session", integer(func(c *Config) *int { return &c.FilesPerSession })},
	{"transfer.connect_timeout", duration(func(c *Config) *time.Duration { return &c.ConnectTimeout })},

	{"receive.dir", str(func(c *Config) *string { return &c.Dir })},
	{"receive.accept_from", strings_(func(c *Config) *[]string { return &c.AcceptFrom })},
	{"receive.max_size", size(func(c *Config) *int64 { return &c.MaxSize })},

	{"agent.socket", str(func(c *Config) *string { return &c.Socket })},
	{"agent.metrics", str(func(c *Config) *string { return &c.Metrics })},
	{"agent.concurrency", integer(func(c *Config) *int { return &c.Concurrency })},
	{"agent.max_attempts", integer(func(c *Config) *int { return &c.MaxAttempts })},
	{"agent.reconnect_min", duration(func(c *Config) *time.Duration { return &c.ReconnectMin })},
	{"agent.reconnect_max", duration(func(c *Config) *time.Duration { return &c.ReconnectMax })},
	{"agent.state_file", str(func(c *Config) *string { return &c.StateFile })},
	{"omemo.state_file", str(func(c *Config) *string { return &c.OMEMOStateFile })},
	{"agent.log_level", oneOf(func(c *Config) *string { return &c.LogLevel }, "debug", "info", "warn", "error")},
	{"agent.log_format", oneOf(func(c *Config) *string { return &c.LogFormat }, "json", "text")},
	{"agent.shutdown_timeout", duration(func(c *Config) *time.Duration { return &c.ShutdownTimeout })},
}

// Keys returns the keys the configuration file accepts, as "section.key".
func Keys() []string {
	out := make([]string, len(settings))
	for i, s := range settings {
		out[i] = s.key
	}
	return out
}

func fromDocument(doc document, path string) (Config, error) {
	var c Config
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return doc[a].Line - doc[b].Line })
	for _, k := range keys {
		v := doc[k]
		i := slices.IndexFunc(settings, func(s setting) bool { return s.key == k })
		if i < 0 {
			return Config{}, &ConfigError{Path: path, Line: v.Line, Err: fmt.Errorf("unknown setting %q", k)}
		}
		if err := settings[i].set(&c, v); err != nil {
			return Config{}, &ConfigError{Path: path, Line: v.Line, Err: fmt.Errorf("%s: %w", k, err)}
		}
	}
	// Relative paths in the file are relative to the file.
	base := filepath.Dir(path)
	for _, p := range []*string{&c.PasswordFile, &c.CAFile, &c.Dir, &c.Socket, &c.StateFile, &c.OMEMOStateFile} {
		if *p != "" {
			*p = expandHome(*p)
			if !filepath.IsAbs(*p) {
				*p = filepath.Join(base, *p)
			}
		}
	}
	return c, nil
}

func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[1:])
		}
	}
	return p
}

// ReadPasswordFile reads a password file: its first line, without the line
// ending. An empty password is an error.
func ReadPasswordFile(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("password file: %w", unwrapPathErrorWith(path, err))
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("password file %s is not a regular file", path)
	}
	if fi.Size() > 4096 {
		return "", fmt.Errorf("password file %s is larger than 4 KiB", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("password file: %w", unwrapPathErrorWith(path, err))
	}
	pw, _, _ := strings.Cut(string(b), "\n")
	pw = strings.TrimSuffix(pw, "\r")
	if pw == "" {
		return "", fmt.Errorf("password file %s is empty", path)
	}
	return pw, nil
}

func unwrapPathErrorWith(path string, err error) error {
	return fmt.Errorf("%s: %w", path, unwrapPathError(err))
}

// ParseSize parses a size: a number of bytes with an optional binary
// multiple suffix K, M, G or T (KiB, MiB…, KB, MB… and k are the same
// multiples of 1024), eg. "512", "64K", "1.5G".
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, errors.New("empty size")
	}
	upper := strings.ToUpper(t)
	upper = strings.TrimSuffix(upper, "IB")
	upper = strings.TrimSuffix(upper, "B")
	mult := int64(1)
	if n := len(upper); n > 0 {
		switch upper[n-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult > 1 {
			upper = upper[:n-1]
		}
	}
	upper = strings.TrimSpace(upper)
	if upper == "" {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	if i, err := strconv.ParseInt(upper, 10, 64); err == nil {
		if i < 0 || i > math.MaxInt64/mult {
			return 0, fmt.Errorf("invalid size %q", s)
		}
		return i * mult, nil
	}
	f, err := strconv.ParseFloat(upper, 64)
	if err != nil || f < 0 || math.IsNaN(f) || f*float64(mult) >= math.MaxInt64 {
		return 0, fmt.Errorf("invalid size %q (use eg. 512, 64K, 10M, 1.5G)", s)
	}
	return int64(f * float64(mult)), nil
}

// FormatSize writes n bytes with a binary multiple: "512 B", "1.5 MiB".
func FormatSize(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB"}
	f := float64(n)
	i := -1
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if f >= 100 {
		return fmt.Sprintf("%.0f %s", f, units[i])
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}
