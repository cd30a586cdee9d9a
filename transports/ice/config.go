package ice

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/pion/logging"
	"github.com/pion/stun"

	"github.com/jinglekit/jinglekit/jingle"
)

// Defaults of Config.
const (
	DefaultConnectTimeout      = 30 * time.Second
	DefaultGatherWait          = 500 * time.Millisecond
	DefaultMaxRemoteCandidates = 64
	DefaultMaxRestarts         = 8
	DefaultSocketBuffer        = 4 << 20
	DefaultReceiveWindow       = 768 << 10
	DefaultMessageSize         = 64 << 10
	DefaultMaxMessageSize      = 256 << 10
	DefaultWriteBuffer         = 2 << 20
	// DefaultSCTPPort is the SCTP port of WebRTC data channels.
	DefaultSCTPPort = 5000
	// peerDefaultMaxMessageSize is what a peer that does not say accepts
	// (RFC 8841 §6).
	peerDefaultMaxMessageSize = 64 << 10
)

// Server is a STUN or TURN server: from configuration or discovered with
// XEP-0215.
type Server struct {
	// URL is an RFC 7064/7065 URI: "stun:host:port",
	// "turn:host:port?transport=udp", "turn:host:port?transport=tcp" or
	// "turns:host:port?transport=tcp".
	URL string
	// Username and Password are the TURN credentials.
	Username, Password string
	// Expires is when the credentials expire; zero when unknown.
	Expires time.Time
}

func (s Server) uri() (*stun.URI, error) {
	u, err := stun.ParseURI(s.URL)
	if err != nil {
		return nil, fmt.Errorf("ice: server %q: %w", s.URL, err)
	}
	u.Username, u.Password = s.Username, s.Password
	return u, nil
}

// Config holds the settings of the ICE transport methods. The zero value
// works: host and server-reflexive candidates through the configured
// servers, tuned buffers, limits at their defaults.
type Config struct {
	// Servers are STUN and TURN servers known from configuration.
	Servers []Server
	// Discovery, when not nil, adds the STUN and TURN servers the user's
	// own server announces (XEP-0215, Prosody's mod_external_services /
	// mod_turn_external). Share one Discovery between methods.
	Discovery *Discovery
	// RelayOnly offers only relayed candidates: the peer never learns this
	// host's addresses, only the TURN server's (related addresses are
	// left out too). It needs a TURN server.
	RelayOnly bool
	// RelayTransports, when not empty, limits relayed candidates to TURN
	// servers reached over these transports ("udp", "tcp"), for networks
	// that block one of them.
	RelayTransports []string
	// IncludeLoopback gathers host candidates on loopback interfaces, for
	// tests and peers on the same host.
	IncludeLoopback bool
	// DisableIPv6 gathers IPv4 candidates only.
	DisableIPv6 bool
	// InterfaceFilter and IPFilter, when set, choose the interfaces and
	// addresses host candidates are gathered on.
	InterfaceFilter func(name string) bool
	IPFilter        func(net.IP) bool

	// ConnectTimeout bounds ICE, DTLS and SCTP set-up (default 30s).
	ConnectTimeout time.Duration
	// GatherWait is how long NewTransport waits for candidates to put in
	// its first <transport/> (default 500ms); later ones are trickled.
	GatherWait time.Duration
	// RelayAcceptanceWait is how long the controlling side waits before
	// nominating a relayed pair while others may still succeed (default 2s).
	RelayAcceptanceWait time.Duration

	// MaxRemoteCandidates bounds the candidates accepted from the peer
	// over the life of a transport (default 64); more are ignored.
	MaxRemoteCandidates int
	// MaxRestarts bounds the ICE restarts the peer may ask for (default 8).
	MaxRestarts int

	// SocketBuffer is the send and receive buffer size asked for on the ICE
	// UDP sockets (default 4 MiB; the kernel caps it at
	// net.core.rmem_max/wmem_max). Negative keeps the system default.
	SocketBuffer int
	// ReceiveWindow is the SCTP receive buffer (default 768 KiB). It stays
	// below pion/ice's 1 MB packet queue, so that a burst cannot overflow
	// it and cost a retransmission timeout.
	ReceiveWindow int
	// MessageSize is the size of the data channel messages Write sends
	// (default 64 KiB), never above what the peer accepts.
	MessageSize int
	// MaxMessageSize is the largest message accepted from the peer,
	// announced as max-message-size (default 256 KiB).
	MaxMessageSize int
	// WriteBuffer is how many bytes Write lets wait in the SCTP send queue
	// before it blocks (default 2 MiB).
	WriteBuffer int

	// Certificate is the DTLS identity; nil makes a new one per transport.
	Certificate *Certificate
	// Logger receives the transport's logs (pion's are passed through at
	// debug level); nil means slog.Default().
	Logger *slog.Logger
}

func orDefault[T int | time.Duration](v, d T) T {
	if v <= 0 {
		return d
	}
	return v
}

func (c *Config) connectTimeout() time.Duration {
	return orDefault(c.ConnectTimeout, DefaultConnectTimeout)
}
func (c *Config) gatherWait() time.Duration { return orDefault(c.GatherWait, DefaultGatherWait) }
func (c *Config) relayWait() time.Duration {
	return orDefault(c.RelayAcceptanceWait, relayWaitDefault)
}
func (c *Config) maxRemoteCandidates() int {
	return orDefault(c.MaxRemoteCandidates, DefaultMaxRemoteCandidates)
}
func (c *Config) maxRestarts() int    { return orDefault(c.MaxRestarts, DefaultMaxRestarts) }
func (c *Config) receiveWindow() int  { return orDefault(c.ReceiveWindow, DefaultReceiveWindow) }
func (c *Config) messageSize() int    { return orDefault(c.MessageSize, DefaultMessageSize) }
func (c *Config) maxMessageSize() int { return orDefault(c.MaxMessageSize, DefaultMaxMessageSize) }
func (c *Config) writeBuffer() int    { return orDefault(c.WriteBuffer, DefaultWriteBuffer) }
func (c *Config) socketBuffer() int {
	if c.SocketBuffer < 0 {
		return 0
	}
	return orDefault(c.SocketBuffer, DefaultSocketBuffer)
}

func (c *Config) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}

// servers returns the configured and discovered servers.
func (c *Config) servers(ctx context.Context, s jingle.IQSender) []Server {
	out := append([]Server(nil), c.Servers...)
	if c.Discovery != nil && s != nil {
		ds, err := c.Discovery.Servers(ctx, s)
		if err != nil {
			c.logger().Info("ice: external service discovery failed", "err", err)
		}
		out = append(out, ds...)
	}
	return out
}

// PionLoggers returns a pion LoggerFactory that passes pion's logs to
// log: errors at errorLevel, warnings at debug level, the rest dropped.
// pion reports many benign conditions (a closed socket during shutdown, a
// STUN server not answering) as errors. This package logs them at info
// level; rtp, whose PeerConnections report more of them, at debug level.
func PionLoggers(log *slog.Logger, errorLevel slog.Level) logging.LoggerFactory {
	return pionLoggers{log: log, errLevel: errorLevel}
}

// pionLoggers is PionLoggers' factory; the zero errLevel is info.
type pionLoggers struct {
	log      *slog.Logger
	errLevel slog.Level
}

func (f pionLoggers) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{f.log.With("pion", scope), f.errLevel}
}

type pionLogger struct {
	log      *slog.Logger
	errLevel slog.Level
}

func (l pionLogger) Trace(string)          {}
func (l pionLogger) Tracef(string, ...any) {}
func (l pionLogger) Debug(string)          {}
func (l pionLogger) Debugf(string, ...any) {}
func (l pionLogger) Info(string)           {}
func (l pionLogger) Infof(string, ...any)  {}
func (l pionLogger) Warn(msg string)       { l.log.Debug(strings.TrimSpace(msg)) }
func (l pionLogger) Warnf(format string, args ...any) {
	l.log.Debug(strings.TrimSpace(fmt.Sprintf(format, args...)))
}
func (l pionLogger) Error(msg string) {
	l.log.Log(context.Background(), l.errLevel, strings.TrimSpace(msg))
}
func (l pionLogger) Errorf(format string, args ...any) {
	l.log.Log(context.Background(), l.errLevel, strings.TrimSpace(fmt.Sprintf(format, args...)))
}
