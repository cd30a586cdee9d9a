package xmppclient

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/xmppclient/deadline"
)

// Config configures Dial.
type Config struct {
	// JID is the account. A bare JID lets the server choose the resource; a
	// full JID requests its resourcepart.
	JID jid.JID
	// Password of the account.
	Password string

	// Server is the "host:port" to connect to. If empty and Servers is
	// empty too, the endpoints are found by DNS SRV lookup of the JID's
	// domain (RFC 6120 §3.2, XEP-0368), falling back to the domain on ports
	// 5222 (STARTTLS) and 5223 (direct TLS).
	Server string
	// Servers are more "host:port" endpoints of the same service (e.g. the
	// nodes of a cluster), tried in order after Server until a login
	// succeeds. A refused login (ErrAuth) or the end of ctx stops the
	// search; any other failure moves on to the next endpoint.
	Servers []string
	// Resolver is used for SRV and host lookups; nil uses the default.
	Resolver *net.Resolver

	// CAFile is a PEM file of root certificates trusted in addition to the
	// system roots (or instead of them, with CAFileOnly).
	CAFile string
	// CAFileOnly makes CAFile the only trusted roots.
	CAFileOnly bool
	// InsecureSkipVerify disables certificate verification. For local
	// testing only: Dial logs a warning when it is set.
	InsecureSkipVerify bool

	// Mechanisms are the SASL mechanisms to use, in order of preference,
	// among MechanismSCRAMSHA256, MechanismSCRAMSHA1 and MechanismPlain.
	// Default: SCRAM-SHA-256, SCRAM-SHA-1, PLAIN. All of them are only ever
	// used inside TLS. The SCRAM-*-PLUS variants are not supported.
	Mechanisms []string

	// Handler receives inbound stanzas; typically a *mux.ServeMux built with
	// HandleDisco(Caps) and Disco.HandlePresence. nil ignores everything
	// (mellium then answers IQs with service-unavailable).
	Handler xmpp.Handler
	// Caps are advertised by Client.SendPresence.
	Caps Caps

	// Logger receives the client's log messages. Default slog.Default().
	Logger *slog.Logger
	// CloseTimeout bounds Client.Close. Default DefaultCloseTimeout.
	CloseTimeout time.Duration

	// ReadFilter, if set, wraps the reader of the stream once STARTTLS has
	// secured it, before the XML decoder: for example
	// ibb.Payloads.Filter, which takes in-band bytestream data out of the
	// decoder's slow path. The filter must pass every other byte as it
	// comes. A connection with direct TLS (XEP-0368) is not filtered.
	ReadFilter func(io.Reader) io.Reader
	// WriteFilter, if set, wraps the writer of the stream once STARTTLS
	// has secured it, after the XML encoder: for example
	// ibb.Payloads.WriteFilter, which keeps in-band bytestream data out of
	// the encoder's escaping. The filter must pass every other byte in
	// order, and must have written all bytes of a write that ends with
	// '>' (the end of a stanza or tag) when it returns. A connection with
	// direct TLS (XEP-0368) is not filtered.
	WriteFilter func(io.Writer) io.Writer
}

// Dial connects, secures the connection with TLS (STARTTLS, or direct TLS
// when SRV says so), authenticates with SASL, binds a resource and returns a
// Client serving the session with cfg.Handler. TLS is mandatory: there is no
// way to log in over a plaintext stream.
//
// ctx bounds the whole login; once Dial has returned it no longer affects
// the session. Errors wrap ErrConnect (no TCP connection), ErrTLS (TLS
// failed, eg. certificate verification) or *SASLError (matching ErrAuth
// for wrong credentials), and ctx.Err() when ctx ended.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	endpoints := cfg.endpoints()
	switch len(endpoints) {
	case 0:
		return dialOne(ctx, cfg) // SRV
	case 1:
		cfg.Server, cfg.Servers = endpoints[0], nil
		return dialOne(ctx, cfg)
	}
	var errs []error
	for i, addr := range endpoints {
		one := cfg
		one.Server, one.Servers = addr, nil
		// An endpoint that accepts TCP but never answers must leave time
		// for the others: each attempt gets an equal share of what is
		// left, at least minAttempt.
		actx, cancel := ctx, context.CancelFunc(func() {})
		if dl, ok := ctx.Deadline(); ok {
			share := max(time.Until(dl)/time.Duration(len(endpoints)-i), minAttempt)
			actx, cancel = context.WithTimeout(ctx, share)
		}
		c, err := dialOne(actx, one)
		cancel()
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil || errors.Is(err, ErrAuth) {
			break
		}
		logger := cfg.Logger
		if logger == nil {
			logger = slog.Default()
		}
		logger.Info("xmppclient: login failed, trying the next server", "server", addr, "error", err)
	}
	if len(errs) == 1 {
		return nil, errs[0]
	}
	return nil, fmt.Errorf("xmppclient: no server of %v took the login: %w", endpoints, errors.Join(errs...))
}

// minAttempt is the least time Dial gives one endpoint of several.
const minAttempt = 5 * time.Second

// endpoints are Server then Servers, without empty or repeated entries.
func (cfg Config) endpoints() []string {
	var out []string
	for _, s := range append([]string{cfg.Server}, cfg.Servers...) {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// dialOne logs in through cfg.Server (or SRV when it is empty).
func dialOne(ctx context.Context, cfg Config) (*Client, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	account := cfg.JID
	if account.Localpart() == "" {
		return nil, fmt.Errorf("xmppclient: JID %q has no localpart", account)
	}
	if cfg.Password == "" {
		return nil, errors.New("xmppclient: empty password")
	}
	mechNames := cfg.Mechanisms
	if len(mechNames) == 0 {
		mechNames = defaultMechanisms()
	}
	var mechs []sasl.Mechanism
	for _, name := range mechNames {
		m, ok := lookupMechanism(name)
		if !ok {
			return nil, fmt.Errorf("xmppclient: unsupported SASL mechanism %q", name)
		}
		mechs = append(mechs, m)
	}
	tlsCfg, err := tlsConfig(cfg, logger)
	if err != nil {
		return nil, err
	}

	tcp, err := connect(ctx, cfg, tlsCfg)
	if err != nil {
		return nil, withCtx(ctx, err)
	}
	// After login, mellium's per-call context deadlines would race with
	// concurrent use of the stream; see package xmppclient/deadline.
	conn := deadline.Wrap(tcp)
	// Under TLS: the records of one write of the stream go out together.
	batch := &batchConn{Conn: conn}

	// mellium bounds negotiation by resetting the connection deadline when
	// its context ends, but it clears the deadline again right away, which
	// can leave a blocked read waiting forever. Enforce ctx on the
	// connection here instead and give mellium a context that never ends.
	// The deadline is set only once ctx is done, so that ctx.Err() is
	// already set when the I/O error surfaces.
	stopWatch := context.AfterFunc(ctx, func() {
		_ = conn.SetDeadline(time.Unix(1, 0)) // in the past: interrupts blocked I/O
	})

	var (
		mechanism  string
		failure    firstError
		tlsOffered atomic.Bool
	)
	features := []xmpp.StreamFeature{
		failure.watch(startTLS(tlsCfg, batch, cfg.ReadFilter, cfg.WriteFilter, &tlsOffered)),
		failure.watch(saslFeature(account.Localpart(), cfg.Password, mechs, &mechanism)),
		failure.watch(bindFeature(account.Resourcepart(), account)),
	}
	session, err := xmpp.NewSession(context.WithoutCancel(ctx), account.Domain(), account.Bare(), batch, 0,
		xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
			return xmpp.StreamConfig{Features: features}
		}))
	if ferr := failure.get(); ferr != nil {
		// mellium drops the error of an optional feature (eg. STARTTLS when
		// the server does not require it) and carries on negotiating.
		err = ferr
	}
	if err == nil {
		err = checkSecure(session)
	}
	if !stopWatch() && err == nil {
		err = ctx.Err() // ctx ended just after negotiation: the deadline is in the past
	}
	if err == nil {
		conn.Freeze() // also clears the deadline
	}
	if err != nil {
		// The negotiation error is what matters; the connection is gone.
		if session != nil {
			_ = session.Conn().Close() // the TLS connection, if any
		}
		_ = conn.Close()
		if notXMPP(err) {
			err = fmt.Errorf("%w: %w", ErrNotXMPP, err)
		}
		return nil, withCtx(ctx, fmt.Errorf("xmppclient: logging in as %s: %w", account, err))
	}
	logger.Debug("xmppclient: logged in", "jid", session.LocalAddr().String(), "mechanism", mechanism,
		"tls", tls.VersionName(session.ConnectionState().Version))

	c := New(session, cfg.Handler, WithCaps(cfg.Caps), WithLogger(logger), WithCloseTimeout(cfg.CloseTimeout))
	c.mechanism = mechanism
	c.raw = conn
	c.server = cfg.Server
	if c.server == "" {
		c.server = tcp.RemoteAddr().String() // the endpoint SRV led to
	}
	return c, nil
}

// tlsConfig builds the client TLS configuration: the server name is the
// XMPP domain (RFC 7590 §3.2: not the SRV target or Server host).
func tlsConfig(cfg Config, logger *slog.Logger) (*tls.Config, error) {
	c := &tls.Config{
		ServerName: cfg.JID.Domainpart(),
		MinVersion: tls.VersionTLS12,
	}
	if cfg.InsecureSkipVerify {
		logger.Warn("xmppclient: TLS certificate verification is disabled (InsecureSkipVerify); use this only for local testing",
			"jid", cfg.JID.String())
		c.InsecureSkipVerify = true // #nosec G402 -- explicit opt-in for local testing, logged above.
	}
	if cfg.CAFile == "" {
		if cfg.CAFileOnly {
			return nil, errors.New("xmppclient: CAFileOnly without CAFile")
		}
		return c, nil // nil RootCAs: the system pool
	}
	pem, err := os.ReadFile(cfg.CAFile)
	if err != nil {
		return nil, fmt.Errorf("xmppclient: reading CAFile: %w", err)
	}
	var pool *x509.CertPool
	if !cfg.CAFileOnly {
		pool, err = x509.SystemCertPool()
		if err != nil {
			return nil, fmt.Errorf("xmppclient: loading system roots (set CAFileOnly to use only CAFile): %w", err)
		}
	} else {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("xmppclient: no PEM certificate in CAFile %s", cfg.CAFile)
	}
	c.RootCAs = pool
	return c, nil
}

// connect opens the transport: TCP to cfg.Server, or the first address of
// the domain's SRV records that answers (already TLS for xmpps-client
// records).
func connect(ctx context.Context, cfg Config, tlsCfg *tls.Config) (net.Conn, error) {
	nd := net.Dialer{Resolver: cfg.Resolver}
	if cfg.Server != "" {
		conn, err := nd.DialContext(ctx, "tcp", cfg.Server)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrConnect, cfg.Server, err)
		}
		return conn, nil
	}
	direct := tlsCfg.Clone()
	direct.NextProtos = []string{"xmpp-client"} // XEP-0368
	return connectSRV(ctx, cfg.JID.Domainpart(), nd, direct)
}

// srvTarget is one address to try: host:port, with direct TLS or not.
type srvTarget struct {
	addr      string
	directTLS bool
}

// srvTargets looks up the XMPP client service of domain (RFC 6120 §3.2.1,
// XEP-0368): the xmpps-client and xmpp-client SRV records by priority
// (direct TLS first among equals), or else domain:5222 (RFC 6120 §3.2.2)
// and domain:5223 with direct TLS.
func srvTargets(ctx context.Context, r *net.Resolver, domain string) []srvTarget {
	type rec struct {
		srvTarget
		prio uint16
	}
	var recs []rec
	for _, service := range []string{"xmpps-client", "xmpp-client"} {
		_, srvs, err := r.LookupSRV(ctx, service, "tcp", domain)
		if err != nil {
			continue
		}
		for _, s := range srvs {
			if s.Target == "." {
				continue // the service is decidedly not available (RFC 2782)
			}
			host := strings.TrimSuffix(s.Target, ".")
			recs = append(recs, rec{srvTarget{net.JoinHostPort(host, strconv.Itoa(int(s.Port))), service == "xmpps-client"}, s.Priority})
		}
	}
	// LookupSRV sorts each service by priority and weight; merge them.
	slices.SortStableFunc(recs, func(a, b rec) int { return cmp.Compare(a.prio, b.prio) })
	targets := make([]srvTarget, len(recs))
	for i, r := range recs {
		targets[i] = r.srvTarget
	}
	if len(targets) == 0 {
		targets = []srvTarget{{addr: net.JoinHostPort(domain, "5222")}, {addr: net.JoinHostPort(domain, "5223"), directTLS: true}}
	}
	return targets
}

// connectSRV tries each address of domain's XMPP service in turn. When
// none answers, the error names every address tried with its error.
func connectSRV(ctx context.Context, domain string, nd net.Dialer, direct *tls.Config) (net.Conn, error) {
	r := nd.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	var errs []error
	tlsFailed := false
	for _, t := range srvTargets(ctx, r, domain) {
		var conn net.Conn
		var err error
		if t.directTLS {
			td := tls.Dialer{NetDialer: &nd, Config: direct}
			conn, err = td.DialContext(ctx, "tcp", t.addr)
		} else {
			conn, err = nd.DialContext(ctx, "tcp", t.addr)
		}
		if err == nil {
			return conn, nil
		}
		kind := ""
		if t.directTLS {
			kind = " (direct TLS)"
		}
		tlsFailed = tlsFailed || isTLSError(err)
		errs = append(errs, fmt.Errorf("%s%s: %w", t.addr, kind, err))
		if ctx.Err() != nil {
			break
		}
	}
	sentinel := ErrConnect
	if tlsFailed {
		sentinel = ErrTLS
	}
	if len(errs) == 1 {
		return nil, fmt.Errorf("%w: %s: %w", sentinel, domain, errs[0])
	}
	return nil, fmt.Errorf("%w: %s: %d addresses tried: %w", sentinel, domain, len(errs), errors.Join(errs...))
}

// startTLS wraps mellium's STARTTLS feature so that the TLS handshake
// happens inside the feature, bounded by ctx, with every failure wrapped in
// ErrTLS. mellium only wraps the connection in tls.Client and leaves the
// handshake to the next write. rfilter and wfilter, if not nil, wrap the
// reader and the writer of the secured stream (Config.ReadFilter,
// Config.WriteFilter). batch is the connection under TLS: each write of
// the secured stream sends its records with one system call.
//
// offered records whether the server listed STARTTLS: mellium negotiates a
// required feature the server did not offer (Prosody 0.12 without mod_tls
// then answers <starttls/> with unsupported-stanza-type). It is still tried
// (liberal in what we accept), but its failure is then ErrNoTLS.
func startTLS(cfg *tls.Config, batch *batchConn, rfilter func(io.Reader) io.Reader, wfilter func(io.Writer) io.Writer, offered *atomic.Bool) xmpp.StreamFeature {
	f := xmpp.StartTLS(cfg)
	parse := f.Parse
	f.Parse = func(ctx context.Context, d *xml.Decoder, start *xml.StartElement) (bool, any, error) {
		offered.Store(true)
		return parse(ctx, d, start)
	}
	negotiate := f.Negotiate
	f.Negotiate = func(ctx context.Context, s *xmpp.Session, data any) (xmpp.SessionState, io.ReadWriter, error) {
		mask, rw, err := negotiate(ctx, s, data)
		if err != nil && !offered.Load() {
			return mask, rw, fmt.Errorf("%w (STARTTLS not listed; trying it anyway: %w)", ErrNoTLS, err)
		}
		if err != nil {
			return mask, rw, fmt.Errorf("%w: STARTTLS: %w", ErrTLS, err)
		}
		tc, ok := rw.(*tls.Conn)
		if !ok {
			return 0, nil, fmt.Errorf("%w: STARTTLS produced %T", ErrTLS, rw)
		}
		if err := tc.HandshakeContext(ctx); err != nil {
			return 0, nil, fmt.Errorf("%w: handshake: %w", ErrTLS, err)
		}
		fc := &filteredConn{Conn: tc, r: io.Reader(tc), w: io.Writer(tc), batch: batch}
		if rfilter != nil {
			fc.r = rfilter(tc)
		}
		if wfilter != nil {
			fc.w = wfilter(tc)
		}
		return mask, fc, nil
	}
	return f
}

// filteredConn is a TLS connection whose reads and writes go through
// filters, and whose writes send their records together (batch, under
// the TLS connection).
type filteredConn struct {
	*tls.Conn
	r     io.Reader
	w     io.Writer
	batch *batchConn
}

func (c *filteredConn) Read(b []byte) (int, error) { return c.r.Read(b) }

func (c *filteredConn) Write(b []byte) (int, error) {
	c.batch.hold()
	n, err := c.w.Write(b)
	if ferr := c.batch.release(); ferr != nil {
		return 0, ferr
	}
	return n, err
}

// batchConn is the connection under TLS. crypto/tls writes each record
// of at most 16 KiB with a system call of its own: six for an IBB <data/>
// of 65535 bytes, each also waking the server. While a write of the
// secured stream is in progress (hold … release), batchConn collects the
// records and then sends them with one system call. Any other write
// (before TLS, or an alert from crypto/tls) goes out at once, or after
// the records held, in order.
type batchConn struct {
	net.Conn

	mu      sync.Mutex
	holding int
	buf     []byte
}

// maxBatchKeep is the largest batch buffer kept between writes: enough
// for a stanza with an IBB block of 65535 bytes.
const maxBatchKeep = 128 << 10

func (c *batchConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	if c.holding > 0 {
		c.buf = append(c.buf, b...)
		c.mu.Unlock()
		return len(b), nil
	}
	c.mu.Unlock()
	return c.Conn.Write(b)
}

func (c *batchConn) hold() {
	c.mu.Lock()
	c.holding++
	c.mu.Unlock()
}

// release ends a hold and, after the last one, sends what was held.
func (c *batchConn) release() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.holding--
	if c.holding > 0 || len(c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.buf)
	if cap(c.buf) > maxBatchKeep {
		c.buf = nil
	} else {
		c.buf = c.buf[:0]
	}
	return err
}

// notXMPP reports whether a negotiation error says the peer did not speak
// XMPP at all: malformed XML, or text where the stream header belongs.
func notXMPP(err error) bool {
	var se *xml.SyntaxError
	return errors.As(err, &se) || strings.Contains(err.Error(), "unexpected stream-level chardata")
}

// firstError remembers the first error returned by a stream feature.
// Negotiation runs on one goroutine, but the mutex keeps it obviously safe.
type firstError struct {
	mu  sync.Mutex
	err error
}

// watch wraps f's Negotiate to record its error.
func (fe *firstError) watch(f xmpp.StreamFeature) xmpp.StreamFeature {
	negotiate := f.Negotiate
	f.Negotiate = func(ctx context.Context, s *xmpp.Session, data any) (xmpp.SessionState, io.ReadWriter, error) {
		mask, rw, err := negotiate(ctx, s, data)
		if err != nil {
			fe.mu.Lock()
			if fe.err == nil {
				fe.err = err
			}
			fe.mu.Unlock()
		}
		return mask, rw, err
	}
	return f
}

func (fe *firstError) get() error {
	fe.mu.Lock()
	defer fe.mu.Unlock()
	return fe.err
}

// checkSecure makes sure a negotiated session really is encrypted,
// authenticated and bound.
func checkSecure(s *xmpp.Session) error {
	want := xmpp.Secure | xmpp.Authn | xmpp.Ready
	if s.State()&want != want || !s.ConnectionState().HandshakeComplete {
		return fmt.Errorf("%w: session negotiated without TLS (state %v)", ErrTLS, s.State())
	}
	return nil
}

// isTLSError reports whether err comes from a failed TLS handshake.
func isTLSError(err error) bool {
	var (
		verr  *tls.CertificateVerificationError
		uaerr x509.UnknownAuthorityError
		herr  x509.HostnameError
		cierr x509.CertificateInvalidError
		rherr tls.RecordHeaderError
		aerr  tls.AlertError
	)
	return errors.As(err, &verr) || errors.As(err, &uaerr) || errors.As(err, &herr) ||
		errors.As(err, &cierr) || errors.As(err, &rherr) || errors.As(err, &aerr)
}

// withCtx adds ctx's error to err's chain when ctx has ended, so that
// errors.Is(err, context.DeadlineExceeded) holds for timeouts.
func withCtx(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w (%w)", err, cerr)
	}
	return err
}
