package ice

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/pion/dtls/v2"
	pionice "github.com/pion/ice/v2"

	"github.com/jinglekit/jinglekit/jingle"
)

// signalTimeout bounds one transport-info exchange.
const signalTimeout = 30 * time.Second

// localCandidate is a local candidate and whether the peer was told.
type localCandidate struct {
	c         Candidate
	announced bool
}

// Link is one side of the ICE transport of one content: an ICE agent, a
// DTLS association checked against the XEP-0320 fingerprints, and an SCTP
// association carrying the content's byte stream over data channels. It
// implements jingle.StreamTransport.
//
// The offerer (the side whose <transport/> is the offer) is the
// controlling ICE agent and offers setup='actpass'; the answerer answers
// 'active' and is the DTLS client. Candidates go into the offer and answer
// as far as they are gathered; later ones are trickled in transport-info,
// by the offerer once the peer has answered, by the answerer once the
// application calls Dial (so that nothing about this host leaves before
// the session is accepted).
type Link struct {
	m       *Method
	cfg     *Config
	dialect Dialect
	ns      string
	p       jingle.TransportParams
	log     *slog.Logger
	cert    *Certificate
	offerer bool
	agent   *iceAgent
	n       counters

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{}

	mu            sync.Mutex
	local         []localCandidate
	localGen      int
	gathered      bool
	gatherDone    chan struct{} // closed when the first generation is gathered
	credsSent     int           // generation whose credentials the peer has
	gcSent        bool          // gathering-complete sent for localGen
	trickle       bool
	remoteFP      []Fingerprint
	ourSetup      Setup
	role          dtlsRole
	roleReady     chan struct{}
	roleSet       bool
	peerMaxMsg    int
	remoteErr     error
	dtlsStarted   bool
	connecting    bool
	connDone      chan struct{}
	connCancel    context.CancelFunc
	conn          *Conn
	dtlsConn      *dtls.Conn
	connErr       error
	iceState      pionice.ConnectionState
	everConnected bool
	closed        bool
}

var _ jingle.StreamTransport = (*Link)(nil)

func newLink(ctx context.Context, m *Method, p jingle.TransportParams) (*Link, error) {
	cfg := &m.Config
	l := &Link{
		m: m, cfg: cfg, dialect: m.Dialect, ns: m.Namespace(), p: p,
		log:        cfg.logger().With("transport", m.Namespace(), "sid", p.SID, "content", p.Content.Name),
		offerer:    p.Offer == nil,
		kick:       make(chan struct{}, 1),
		gatherDone: make(chan struct{}),
		roleReady:  make(chan struct{}),
		connDone:   make(chan struct{}),
		peerMaxMsg: peerDefaultMaxMessageSize,
		credsSent:  -1,
	}
	var offer *remoteTransport
	if p.Offer != nil {
		var err error
		if offer, err = l.decode(*p.Offer); err != nil {
			return nil, err
		}
		if l.dialect == DialectXEP0343 && offer.ice.SCTPMap == nil {
			return nil, fmt.Errorf("ice: offer without <sctpmap/>: not a data channel transport: %w", jingle.ErrTransportFailed)
		}
		if len(offer.ice.Fingerprints) == 0 {
			return nil, fmt.Errorf("ice: offer without DTLS fingerprint: %w", jingle.ErrTransportFailed)
		}
	}
	l.cert = cfg.Certificate
	if l.cert == nil {
		var err error
		if l.cert, err = NewCertificate(); err != nil {
			return nil, err
		}
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	servers := cfg.servers(ctx, p.Stream)
	agent, err := newICEAgent(cfg, servers, l.log, agentEvents{
		candidate: l.onLocalCandidate,
		gathered:  l.onGathered,
		state:     l.onICEState,
	})
	if err != nil {
		l.cancel()
		return nil, err
	}
	l.agent = agent
	if l.offerer {
		l.ourSetup = SetupActPass
	} else {
		// RFC 8842 §5.3: the answerer to actpass takes the active role.
		l.ourSetup, l.role = SetupActive, dtlsClient
		if offer.setup() == SetupActive {
			l.ourSetup, l.role = SetupPassive, dtlsServer
		}
		l.roleSet = true
		close(l.roleReady)
		if err := l.apply(offer); err != nil {
			l.log.Info("ice: offer", "err", err)
		}
	}
	l.wg.Add(1)
	go l.signalLoop()
	// Let the first candidates into the offer or answer.
	t := time.NewTimer(cfg.gatherWait())
	select {
	case <-l.gatherDone:
	case <-t.C:
	case <-ctx.Done():
	}
	t.Stop()
	return l, nil
}

// remoteTransport is a peer's <transport/> in either dialect.
type remoteTransport struct {
	ice        *Transport
	maxMessage int // 0 when not said
}

func (r *remoteTransport) setup() Setup {
	for _, f := range r.ice.Fingerprints {
		if f.Setup != "" {
			return f.Setup
		}
	}
	return ""
}

// decode reads a peer's <transport/> in this link's dialect.
func (l *Link) decode(el jingle.Element) (*remoteTransport, error) {
	if el.XMLName.Space != l.ns || el.XMLName.Local != "transport" {
		return nil, fmt.Errorf("ice: <%s xmlns='%s'> is not a %s transport", el.XMLName.Local, el.XMLName.Space, l.ns)
	}
	r := &remoteTransport{}
	if l.dialect == DialectWebRTCDataChannel {
		var dt DataChannelTransport
		if err := el.Decode(&dt); err != nil {
			return nil, err
		}
		r.ice = dt.ICE
		if r.ice == nil {
			r.ice = &Transport{}
		}
		if dt.MaxMessageSize != "" {
			n, err := strconv.ParseUint(dt.MaxMessageSize, 10, 31)
			if err != nil {
				return nil, fmt.Errorf("ice: max-message-size %q", dt.MaxMessageSize)
			}
			r.maxMessage = int(n)
			if n == 0 { // RFC 8841: no limit
				r.maxMessage = 1 << 30
			}
		}
		return r, nil
	}
	var t Transport
	if err := el.Decode(&t); err != nil {
		return nil, err
	}
	r.ice = &t
	return r, nil
}

// apply takes the peer's credentials, fingerprints and candidates from an
// offer, answer or transport-info.
func (l *Link) apply(r *remoteTransport) error {
	l.mu.Lock()
	if r.maxMessage > 0 {
		l.peerMaxMsg = r.maxMessage
	}
	if len(r.ice.Fingerprints) > 0 {
		switch {
		case !l.dtlsStarted:
			l.remoteFP = append([]Fingerprint(nil), r.ice.Fingerprints...)
		case !sameFingerprints(l.remoteFP, r.ice.Fingerprints):
			l.log.Info("ice: peer changed its fingerprint after the DTLS handshake began; ignored")
		}
	}
	l.mu.Unlock()
	if r.ice.Ufrag == "" && len(r.ice.Candidates) == 0 {
		return nil
	}
	restarted, err := l.agent.update(remoteUpdate{ufrag: r.ice.Ufrag, pwd: r.ice.Pwd, candidates: r.ice.Candidates})
	if restarted {
		l.log.Info("ice: the peer restarted ICE")
		l.poke()
	}
	return err
}

func sameFingerprints(a, b []Fingerprint) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Normalized() != b[i].Normalized() || a[i].Hash != b[i].Hash {
			return false
		}
	}
	return true
}

// remoteFingerprints returns the peer's fingerprints for the DTLS check.
func (l *Link) remoteFingerprints() []Fingerprint {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Fingerprint(nil), l.remoteFP...)
}

// onLocalCandidate is called by the agent for each gathered candidate.
func (l *Link) onLocalCandidate(c Candidate, gen int) {
	l.mu.Lock()
	if gen > l.localGen {
		l.localGen, l.local, l.gathered, l.gcSent = gen, nil, false, false
	}
	if gen == l.localGen && !l.closed {
		l.local = append(l.local, localCandidate{c: c})
	}
	l.mu.Unlock()
	l.poke()
}

func (l *Link) onGathered(gen int) {
	l.mu.Lock()
	if gen > l.localGen {
		l.localGen, l.local, l.gcSent = gen, nil, false
	}
	if gen == l.localGen {
		l.gathered = true
	}
	first := gen == 0
	l.mu.Unlock()
	if first {
		select {
		case <-l.gatherDone:
		default:
			close(l.gatherDone)
		}
	}
	l.poke()
}

func (l *Link) onICEState(s pionice.ConnectionState) {
	l.log.Debug("ice: connection state", "state", s.String())
	l.mu.Lock()
	l.iceState = s
	if s == pionice.ConnectionStateConnected {
		l.everConnected = true
	}
	cancel, conn := l.connCancel, l.conn
	l.mu.Unlock()
	if s != pionice.ConnectionStateFailed {
		return
	}
	if conn == nil && cancel != nil {
		cancel() // stop waiting: no pair will be selected
		return
	}
	if conn != nil {
		// The path is gone; end the stream rather than leave it hanging.
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.closed {
			return
		}
		l.log.Info("ice: connection failed; closing the stream")
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			_ = conn.Close()
		}()
	}
}

// poke wakes the signalling goroutine.
func (l *Link) poke() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// signalLoop sends this side's new candidates (and new credentials after
// a restart) in transport-info, while trickling is allowed.
func (l *Link) signalLoop() {
	defer l.wg.Done()
	for {
		select {
		case <-l.kick:
		case <-l.ctx.Done():
			return
		}
		for {
			el, ok := l.nextInfo()
			if !ok {
				break
			}
			if l.p.Signal == nil {
				break
			}
			ctx, cancel := context.WithTimeout(l.ctx, signalTimeout)
			err := l.p.Signal.TransportInfo(ctx, el)
			cancel()
			if err != nil {
				l.log.Info("ice: sending transport-info", "err", err)
				if errors.Is(err, jingle.ErrEnded) || l.ctx.Err() != nil {
					return
				}
			}
		}
	}
}

// nextInfo builds the next transport-info to send, if any, and marks what
// it carries as announced.
func (l *Link) nextInfo() (jingle.Element, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.trickle || l.closed {
		return jingle.Element{}, false
	}
	ufrag, pwd, gen := l.agent.credentials()
	var cs []Candidate
	for i := range l.local {
		if !l.local[i].announced {
			l.local[i].announced = true
			cs = append(cs, l.local[i].c)
		}
	}
	newCreds := l.credsSent < gen
	gc := l.dialect == DialectXEP0343 && l.gathered && !l.gcSent
	if len(cs) == 0 && !newCreds && !gc {
		return jingle.Element{}, false
	}
	l.credsSent = gen
	if gc {
		l.gcSent = true
	}
	t := Transport{XMLName: l.iceName(), Ufrag: ufrag, Pwd: pwd, Candidates: cs, GatheringComplete: gc}
	return l.wrap(t, false), true
}

func (l *Link) iceName() xml.Name {
	if l.dialect == DialectWebRTCDataChannel {
		return xml.Name{Space: NSICEUDP, Local: "transport"}
	}
	return xml.Name{Space: l.ns, Local: "transport"}
}

// wrap puts an ICE-UDP transport into this dialect's element; full adds
// what an offer or answer carries (sctp-port and max-message-size).
func (l *Link) wrap(t Transport, full bool) jingle.Element {
	if l.dialect != DialectWebRTCDataChannel {
		return jingle.MustElement(t)
	}
	dt := DataChannelTransport{ICE: &t}
	if full {
		dt.SCTPPort = strconv.Itoa(DefaultSCTPPort)
		dt.MaxMessageSize = strconv.Itoa(l.cfg.maxMessageSize())
	}
	return jingle.MustElement(dt)
}

// Local implements jingle.Transport: the offer or answer with this side's
// credentials, fingerprint and the candidates gathered so far.
func (l *Link) Local() jingle.Element {
	l.mu.Lock()
	defer l.mu.Unlock()
	ufrag, pwd, gen := l.agent.credentials()
	t := Transport{
		XMLName: l.iceName(), Ufrag: ufrag, Pwd: pwd,
		Fingerprints: []Fingerprint{{Hash: "sha-256", Setup: l.ourSetup, Value: l.cert.Fingerprint}},
	}
	if l.dialect == DialectXEP0343 {
		t.SCTPMap = &SCTPMap{Number: strconv.Itoa(DefaultSCTPPort), Protocol: "webrtc-datachannel", Streams: "1024"}
	}
	for i := range l.local {
		l.local[i].announced = true
		t.Candidates = append(t.Candidates, l.local[i].c)
	}
	if l.dialect == DialectXEP0343 && l.gathered {
		t.GatheringComplete = true
		l.gcSent = true
	}
	if l.credsSent < gen {
		l.credsSent = gen
	}
	return l.wrap(t, true)
}

// SetRemote implements jingle.Transport: the peer's answer to this side's
// offer. The DTLS role follows its setup attribute, and trickling and
// connecting start.
func (l *Link) SetRemote(ctx context.Context, answer jingle.Element) error {
	r, err := l.decode(answer)
	if err != nil {
		l.fail(err)
		return err
	}
	if len(r.ice.Fingerprints) == 0 && len(l.remoteFingerprints()) == 0 {
		err := fmt.Errorf("ice: answer without DTLS fingerprint: %w", jingle.ErrTransportFailed)
		l.fail(err)
		return err
	}
	l.mu.Lock()
	if l.offerer && !l.roleSet {
		// The answerer is active unless it says passive.
		l.role = dtlsServer
		if r.setup() == SetupPassive {
			l.role = dtlsClient
		}
		l.roleSet = true
		close(l.roleReady)
	}
	l.trickle = true
	l.mu.Unlock()
	err = l.apply(r)
	l.poke()
	l.startConnect()
	return err
}

// HandleInfo implements jingle.Transport: trickled candidates, an ICE
// restart, a fingerprint sent ahead of the answer, the end of gathering.
// Bad candidates are skipped (and reported); the others are used.
func (l *Link) HandleInfo(ctx context.Context, info jingle.Element) error {
	r, err := l.decode(info)
	if err != nil {
		return err
	}
	return l.apply(r)
}

// fail records a problem with the peer's transport: Dial then fails.
func (l *Link) fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.remoteErr == nil {
		l.remoteErr = err
	}
}

// startConnect starts the connecting goroutine once.
func (l *Link) startConnect() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.connecting || l.closed {
		return
	}
	l.connecting = true
	ctx, cancel := context.WithTimeout(l.ctx, l.cfg.connectTimeout())
	l.connCancel = cancel
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer cancel()
		conn, dc, err := l.connect(ctx)
		// Close shuts down what is stored here once this goroutine ended.
		l.mu.Lock()
		l.conn, l.dtlsConn, l.connErr = conn, dc, err
		l.mu.Unlock()
		close(l.connDone)
	}()
}

// connect runs ICE, DTLS and SCTP.
func (l *Link) connect(ctx context.Context) (*Conn, *dtls.Conn, error) {
	l.mu.Lock()
	remoteErr := l.remoteErr
	l.mu.Unlock()
	if remoteErr != nil {
		return nil, nil, remoteErr
	}
	iceConn, err := l.agent.connect(ctx, l.offerer)
	if err != nil {
		return nil, nil, fmt.Errorf("ice: no connectivity: %w: %w", jingle.ErrTransportFailed, err)
	}
	select {
	case <-l.roleReady:
	case <-ctx.Done():
		return nil, nil, fmt.Errorf("ice: no answer: %w: %w", jingle.ErrTransportFailed, ctx.Err())
	}
	l.mu.Lock()
	role, remoteErr := l.role, l.remoteErr
	l.dtlsStarted = true
	if len(l.remoteFP) == 0 && remoteErr == nil {
		remoteErr = fmt.Errorf("ice: the peer sent no DTLS fingerprint: %w", jingle.ErrTransportFailed)
	}
	l.mu.Unlock()
	if remoteErr != nil {
		return nil, nil, remoteErr
	}
	dc, err := handshakeDTLS(ctx, iceConn, role, l.cert, l.remoteFingerprints, &l.n)
	if err != nil {
		_ = iceConn.Close()
		return nil, nil, err
	}
	l.mu.Lock()
	sendMsg := min(l.cfg.messageSize(), l.peerMaxMsg)
	l.mu.Unlock()
	protocol := ""
	if l.dialect == DialectWebRTCDataChannel {
		protocol = "xmpp-jingle"
	}
	conn, err := openStream(ctx, dc, streamParams{
		role: role, label: l.p.Content.Name, protocol: protocol,
		openOwn:       l.offerer || l.dialect == DialectWebRTCDataChannel,
		receiveWindow: l.cfg.receiveWindow(), maxRecvMessage: l.cfg.maxMessageSize(),
		sendMessage: sendMsg, writeBuffer: l.cfg.writeBuffer(), log: l.log, n: &l.n,
	})
	if err != nil {
		_ = dc.Close()
		return nil, nil, err
	}
	return conn, dc, nil
}

// Dial implements jingle.StreamTransport: it waits until the data channel
// is open and returns the stream. It fails with an error wrapping
// jingle.ErrTransportFailed when no connection could be made, and with a
// *SecurityError (wrapping ErrFingerprintMismatch, not ErrTransportFailed)
// when the peer's DTLS certificate does not match its fingerprint: then no
// data was exchanged and the session should end with security-error.
func (l *Link) Dial(ctx context.Context) (net.Conn, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, fmt.Errorf("ice: transport closed: %w: %w", jingle.ErrTransportFailed, net.ErrClosed)
	}
	if !l.trickle {
		// The answerer starts telling its candidates now that the
		// application wants the stream.
		l.trickle = true
	}
	l.mu.Unlock()
	l.poke()
	l.startConnect()
	select {
	case <-l.connDone:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.connErr != nil {
		return nil, l.connErr
	}
	return l.conn, nil
}

// Restart restarts ICE from this side (XEP-0176 §7): new credentials,
// new candidates, sent to the peer in transport-info. The data channel
// survives if a new pair is found.
func (l *Link) Restart(ctx context.Context) error {
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return net.ErrClosed
	}
	if err := l.agent.restartLocal(false); err != nil {
		return err
	}
	l.mu.Lock()
	l.trickle = true
	l.mu.Unlock()
	l.poke()
	return nil
}

// SelectedPair describes the ICE candidate pair in use, once connected:
// whether the stream is relayed, and how.
func (l *Link) SelectedPair() (PairInfo, bool) { return l.agent.selectedPair() }

// Stats returns what crossed the wire so far.
func (l *Link) Stats() Stats { return l.n.snapshot() }

// Fingerprint returns this side's DTLS certificate fingerprint (SHA-256).
func (l *Link) Fingerprint() string { return l.cert.Fingerprint }

// Close implements jingle.Transport: it stops connecting, closes the
// stream, the associations and the ICE agent, and waits for the link's
// goroutines.
func (l *Link) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	if !l.connecting {
		// A Dial that raced with Close must not wait forever.
		l.connecting = true
		l.connErr = fmt.Errorf("ice: transport closed: %w: %w", jingle.ErrTransportFailed, net.ErrClosed)
		close(l.connDone)
	}
	l.mu.Unlock()
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	conn, dc := l.conn, l.dtlsConn
	l.mu.Unlock()
	if conn != nil {
		conn.shutdown()
	}
	if dc != nil {
		_ = dc.Close()
	}
	return l.agent.close()
}
