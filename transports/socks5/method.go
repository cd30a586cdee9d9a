package socks5

import (
	"context"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/jinglekit/jinglekit/jingle"
)

// Defaults of Settings.
const (
	DefaultConnectTimeout     = 10 * time.Second
	DefaultHandshakeTimeout   = 10 * time.Second
	DefaultNegotiationTimeout = 60 * time.Second
	DefaultDiscoveryTimeout   = 10 * time.Second
	DefaultStagger            = 200 * time.Millisecond
	DefaultProxyDelay         = 500 * time.Millisecond
	DefaultMaxParallelChecks  = 64
)

// Limits on what a peer can make a transport do.
const (
	// MaxCandidates is the number of a peer's candidates a transport
	// considers; further ones are ignored.
	MaxCandidates = 32
	// maxAccepted is the number of bytestreams a transport's streamhost
	// keeps for the peer to choose from; further ones are closed.
	maxAccepted = 8
	// discoveryRetry is how long a failed proxy discovery is remembered.
	discoveryRetry = time.Minute
)

// Settings configure a Method. The zero value works: direct candidates on
// the addresses of the non-loopback interfaces (ephemeral port), proxies
// discovered on the user's server, and the default timeouts.
type Settings struct {
	// AllowLoopback offers loopback addresses as direct candidates and lets
	// the transport connect to a peer's candidates on loopback addresses.
	// For tests and single-host setups; off by default (a peer must not
	// make us connect to our own host's services).
	AllowLoopback bool
	// Addresses are the hosts (IP addresses or names) offered as direct
	// candidates, in order of preference, used as given. Default: ListenHost
	// if it is an IP address, else the addresses of the interfaces that are
	// up (IPv4 first; no link-local; loopback only with AllowLoopback).
	Addresses []string
	// ListenHost is the address the local streamhost binds; "" means all.
	ListenHost string
	// PortMin and PortMax bound the port of the local streamhost (say, the
	// range a router forwards). Zero PortMin means an ephemeral port.
	PortMin, PortMax uint16
	// NoDirect offers no direct candidate and connects to none of the
	// peer's: no IP address is revealed to the peer and the data goes
	// through a proxy (if any).
	NoDirect bool
	// Proxies are SOCKS5 bytestreams proxies to offer, before any discovered
	// one.
	Proxies []Proxy
	// NoProxyDiscovery turns off the discovery of proxies on the user's
	// server (disco#items of the domain, disco#info of each item, then the
	// streamhost query; the result is cached by the Method).
	NoProxyDiscovery bool

	// ConnectTimeout bounds one attempt to connect to a candidate: TCP
	// connect and SOCKS5 handshake (default 10s). It also bounds proxy
	// activation.
	ConnectTimeout time.Duration
	// HandshakeTimeout bounds the SOCKS5 handshake of a connection to the
	// local streamhost (default 10s).
	HandshakeTimeout time.Duration
	// NegotiationTimeout bounds the whole negotiation from its start (the
	// peer's answer, or Dial on the side that received the offer) to a
	// usable bytestream (default 60s); then Dial fails with
	// jingle.ErrTransportFailed.
	NegotiationTimeout time.Duration
	// DiscoveryTimeout bounds proxy discovery (default 10s).
	DiscoveryTimeout time.Duration
	// Stagger is the delay between the starts of attempts to connect to the
	// peer's candidates, in order of priority (default 200ms); an attempt
	// also starts as soon as all the earlier ones have failed.
	Stagger time.Duration
	// ProxyDelay is the extra delay before attempting a proxy candidate
	// (default 500ms), to give direct candidates a chance.
	ProxyDelay time.Duration
	// MaxParallelChecks is the number of attempts to connect to peers'
	// candidates in progress at once, all the Method's transports
	// together (default 64); a due attempt waits for one to end, with no
	// goroutine of its own meanwhile. It keeps hundreds of sessions set up
	// at once from opening thousands of connections together: a goroutine
	// and a socket each, and a listen queue overflowing on the peer's
	// side, whose dropped SYNs then wait a second to be sent again.
	MaxParallelChecks int

	// Logger receives the transport's logs; nil means slog.Default().
	Logger *slog.Logger
}

func (s Settings) withDefaults() Settings {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&s.ConnectTimeout, DefaultConnectTimeout)
	def(&s.HandshakeTimeout, DefaultHandshakeTimeout)
	def(&s.NegotiationTimeout, DefaultNegotiationTimeout)
	def(&s.DiscoveryTimeout, DefaultDiscoveryTimeout)
	if s.Stagger == 0 {
		s.Stagger = DefaultStagger
	}
	if s.ProxyDelay == 0 {
		s.ProxyDelay = DefaultProxyDelay
	}
	if s.Stagger < 0 {
		s.Stagger = 0
	}
	if s.MaxParallelChecks <= 0 {
		s.MaxParallelChecks = DefaultMaxParallelChecks
	}
	if s.ProxyDelay < 0 {
		s.ProxyDelay = 0
	}
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	if s.PortMin != 0 && s.PortMax < s.PortMin {
		s.PortMax = s.PortMin
	}
	return s
}

// Method is the Jingle SOCKS5 Bytestreams transport method (XEP-0260):
// register it on a jingle.Manager. The zero value is ready to use; set
// Settings before the first transport and do not change them afterwards.
//
// The transports offer direct candidates on one streamhost shared by all
// the transports of the Method (a TCP listener open only while at least
// one of them negotiates, which tells their connections apart by the
// DST.ADDR of the SOCKS5 CONNECT request) and proxy candidates. Each
// transport tries the peer's candidates in order of priority, tells the
// peer which one worked (candidate-used) or that none did
// (candidate-error), and settles on the nominated candidate as XEP-0260
// §2.4 says, activating its own proxy when that is the one. Dial returns
// the bytestream: a TCP connection, to the peer or through the proxy, with
// CloseWrite. When nothing works, Dial fails with an error wrapping
// jingle.ErrTransportFailed, so that the session may fall back to another
// method.
type Method struct {
	Settings Settings

	mu    sync.Mutex
	sem   chan struct{} // serialises proxy discovery
	cache map[string]cacheEntry
	hub   hub       // the streamhost of the direct candidates
	addrs addrCache // the interface addresses offered
	// checks holds a token per attempt in progress (MaxParallelChecks).
	checks chan struct{}
}

// checkSlots returns the channel of the Method's attempt tokens: sending
// takes one, receiving gives one back.
func (m *Method) checkSlots() chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.checks == nil {
		m.checks = make(chan struct{}, m.Settings.withDefaults().MaxParallelChecks)
	}
	return m.checks
}

type cacheEntry struct {
	proxies []Proxy
	err     error
	at      time.Time
}

// NewMethod returns a Method with the given settings.
func NewMethod(s Settings) *Method { return &Method{Settings: s} }

// Namespace implements jingle.TransportMethod.
func (m *Method) Namespace() string { return NS }

// Kind implements jingle.TransportMethod: a byte stream.
func (m *Method) Kind() jingle.TransportKind { return jingle.Stream }

// Features implements jingle.FeatureAdvertiser: XEP-0065 bytestreams,
// whose <query/> the transport exchanges with peers and proxies.
func (m *Method) Features() []string { return []string{NSBytestreams} }

// NewTransport implements jingle.TransportMethod. It gathers this side's
// candidates: it opens the streamhost for the direct ones and, the first
// time, discovers the proxies of the user's server, bounded by ctx and
// Settings.DiscoveryTimeout.
func (m *Method) NewTransport(ctx context.Context, p jingle.TransportParams) (jingle.Transport, error) {
	t, err := newTransport(ctx, m, p)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// Proxies returns the proxies this Method offers to peers reached through
// s: the configured ones (asking those without an address for it), then
// those discovered on the server of s's account unless NoProxyDiscovery.
// Results are cached; a failed discovery is retried after a minute.
func (m *Method) Proxies(ctx context.Context, s jingle.IQSender) ([]Proxy, error) {
	set := m.Settings.withDefaults()
	m.mu.Lock()
	if m.sem == nil {
		m.sem = make(chan struct{}, 1)
		m.cache = map[string]cacheEntry{}
	}
	sem := m.sem
	m.mu.Unlock()
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-sem }()

	ctx, cancel := context.WithTimeout(ctx, set.DiscoveryTimeout)
	defer cancel()
	var out []Proxy
	var firstErr error
	add := func(ps []Proxy) {
		for _, p := range ps {
			if !slices.ContainsFunc(out, func(q Proxy) bool { return q.Addr == p.Addr && q.JID.Equal(p.JID) }) {
				out = append(out, p)
			}
		}
	}
	for _, p := range set.Proxies {
		if p.Addr != "" {
			add([]Proxy{p})
			continue
		}
		if s == nil {
			continue
		}
		ps, err := m.cached(ctx, "streamhost "+p.JID.String(), func(ctx context.Context) ([]Proxy, error) {
			sh, err := QueryStreamHost(ctx, s, p.JID)
			if err != nil {
				return nil, err
			}
			return []Proxy{sh}, nil
		})
		if err != nil && firstErr == nil {
			firstErr = err
		}
		add(ps)
	}
	if !set.NoProxyDiscovery && s != nil {
		domain := s.LocalAddr().Domain()
		ps, err := m.cached(ctx, "disco "+domain.String(), func(ctx context.Context) ([]Proxy, error) {
			return DiscoverProxies(ctx, s, domain)
		})
		if err != nil && firstErr == nil {
			firstErr = err
		}
		add(ps)
	}
	return out, firstErr
}

// cached returns the cached result for key, or runs f and caches it.
// m.sem is held.
func (m *Method) cached(ctx context.Context, key string, f func(context.Context) ([]Proxy, error)) ([]Proxy, error) {
	m.mu.Lock()
	e, ok := m.cache[key]
	m.mu.Unlock()
	if ok && (e.err == nil || time.Since(e.at) < discoveryRetry) {
		return e.proxies, e.err
	}
	ps, err := f(ctx)
	if ctx.Err() != nil && err != nil {
		// Our own deadline, not the server's answer: do not remember it.
		return ps, err
	}
	m.mu.Lock()
	m.cache[key] = cacheEntry{proxies: ps, err: err, at: time.Now()}
	m.mu.Unlock()
	return ps, err
}

// hostPort joins a candidate's host and port; it also identifies a
// streamhost, for the rule that the responder must not offer a host/port
// the initiator offered.
func hostPort(host string, port uint16) string {
	return net.JoinHostPort(host, strconv.Itoa(int(port)))
}
