package ice

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	pionice "github.com/pion/ice/v2"
	"github.com/pion/stun"
	"github.com/pion/transport/v2"
	"github.com/pion/transport/v2/stdnet"

	"github.com/jinglekit/jinglekit/jingle"
)

// Errors of the ICE layer.
var (
	// ErrUnknownUfrag is returned for candidates that name ICE credentials
	// that are neither the peer's current ones nor a restart.
	ErrUnknownUfrag = errors.New("ice: candidates for an unknown ufrag")
	// ErrTooManyCandidates is returned when the peer sent more candidates
	// than Config.MaxRemoteCandidates.
	ErrTooManyCandidates = errors.New("ice: too many remote candidates")
	// ErrTooManyRestarts is returned when the peer restarted ICE more often
	// than Config.MaxRestarts.
	ErrTooManyRestarts = errors.New("ice: too many ICE restarts")
)

// agentEvents receives what the ICE agent reports. The callbacks run on the
// agent's goroutines and must not block.
type agentEvents struct {
	// candidate reports a new local candidate of a generation.
	candidate func(c Candidate, generation int)
	// gathered reports the end of gathering of a generation.
	gathered func(generation int)
	// state reports connection state changes.
	state func(pionice.ConnectionState)
}

// iceAgent is the ICE layer of one transport, component 1 only: a pion
// agent, this side's credentials and candidates per generation, and the
// peer's credentials and candidates. It knows nothing of Jingle or DTLS;
// the RTP transport of a later issue can use it for its datagram
// components.
type iceAgent struct {
	log   *slog.Logger
	agent *pionice.Agent
	ev    agentEvents
	cfg   *Config

	mu          sync.Mutex
	localUfrag  string
	localPwd    string
	generation  int // of the local credentials
	remoteUfrag string
	remotePwd   string
	oldRemote   map[string]bool // ufrags the peer used before a restart
	remoteCount int             // remote candidates added, all generations
	restarts    int             // restarts the peer asked for
	connected   bool
	closed      bool
	closeOnce   sync.Once
	closeErr    error
	// ready is closed once the peer's first credentials are known.
	ready     chan struct{}
	readyDone bool
}

// newICEAgent creates the agent and starts gathering.
func newICEAgent(cfg *Config, servers []Server, log *slog.Logger, ev agentEvents) (*iceAgent, error) {
	var urls []*stun.URI
	haveTURN := false
	for _, s := range servers {
		u, err := s.uri()
		if err != nil {
			log.Info("ice: ignoring server", "url", s.URL, "err", err)
			continue
		}
		if u.Scheme == stun.SchemeTypeTURN || u.Scheme == stun.SchemeTypeTURNS {
			if len(cfg.RelayTransports) > 0 && !slices.Contains(cfg.RelayTransports, u.Proto.String()) {
				continue
			}
			haveTURN = true
		}
		urls = append(urls, u)
	}
	types := []pionice.CandidateType{pionice.CandidateTypeHost, pionice.CandidateTypeServerReflexive, pionice.CandidateTypeRelay}
	if cfg.RelayOnly {
		if !haveTURN {
			return nil, fmt.Errorf("ice: relay-only and no TURN server: %w", jingle.ErrTransportFailed)
		}
		types = []pionice.CandidateType{pionice.CandidateTypeRelay}
	}
	sn, err := stdnet.NewNet()
	if err != nil {
		return nil, fmt.Errorf("ice: %w", err)
	}
	networks := []pionice.NetworkType{pionice.NetworkTypeUDP4}
	if !cfg.DisableIPv6 {
		networks = append(networks, pionice.NetworkTypeUDP6)
	}
	a := &iceAgent{log: log, ev: ev, cfg: cfg, oldRemote: map[string]bool{}, ready: make(chan struct{})}
	relayWait := cfg.relayWait()
	agent, err := pionice.NewAgent(&pionice.AgentConfig{
		Urls:                   urls,
		NetworkTypes:           networks,
		CandidateTypes:         types,
		MulticastDNSMode:       pionice.MulticastDNSModeDisabled,
		IncludeLoopback:        cfg.IncludeLoopback,
		InterfaceFilter:        cfg.InterfaceFilter,
		IPFilter:               cfg.IPFilter,
		Net:                    &bufferedNet{Net: sn, size: cfg.socketBuffer(), log: log},
		LoggerFactory:          pionLoggers{log: log},
		RelayAcceptanceMinWait: &relayWait,
	})
	if err != nil {
		return nil, fmt.Errorf("ice: creating agent: %w", err)
	}
	a.agent = agent
	a.localUfrag, a.localPwd, err = agent.GetLocalUserCredentials()
	if err != nil {
		_ = agent.Close()
		return nil, fmt.Errorf("ice: %w", err)
	}
	if err := agent.OnCandidate(a.onCandidate(0)); err != nil {
		_ = agent.Close()
		return nil, fmt.Errorf("ice: %w", err)
	}
	if err := agent.OnConnectionStateChange(a.onState); err != nil {
		_ = agent.Close()
		return nil, fmt.Errorf("ice: %w", err)
	}
	if err := agent.GatherCandidates(); err != nil {
		_ = agent.Close()
		return nil, fmt.Errorf("ice: gathering candidates: %w", err)
	}
	return a, nil
}

func (a *iceAgent) onCandidate(gen int) func(pionice.Candidate) {
	return func(pc pionice.Candidate) {
		a.mu.Lock()
		current := a.generation == gen && !a.closed
		a.mu.Unlock()
		if !current {
			return
		}
		if pc == nil {
			a.ev.gathered(gen)
			return
		}
		if pc.Component() != 1 {
			return
		}
		a.ev.candidate(candidateFromPion(pc, gen, a.cfg.RelayOnly), gen)
	}
}

func (a *iceAgent) onState(s pionice.ConnectionState) {
	if s == pionice.ConnectionStateConnected {
		a.mu.Lock()
		a.connected = true
		a.mu.Unlock()
	}
	a.ev.state(s)
}

// credentials returns this side's current credentials and generation.
func (a *iceAgent) credentials() (ufrag, pwd string, gen int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.localUfrag, a.localPwd, a.generation
}

// remote returns the peer's current credentials.
func (a *iceAgent) remote() (ufrag, pwd string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.remoteUfrag, a.remotePwd
}

// remoteUpdate is what the peer signalled in one <transport/>.
type remoteUpdate struct {
	ufrag, pwd string
	candidates []Candidate
}

// update applies the peer's credentials and candidates. A ufrag and pwd
// that differ from the current ones are a restart by the peer (XEP-0176
// §7): this side restarts too, with new credentials, and returns
// restarted=true. Candidates that do not parse are skipped; the returned
// error then says why, after the good ones were added.
func (a *iceAgent) update(u remoteUpdate) (restarted bool, err error) {
	a.mu.Lock()
	switch {
	case u.ufrag == "" && a.remoteUfrag == "" && len(u.candidates) > 0:
		a.mu.Unlock()
		return false, fmt.Errorf("%w: candidates before the peer's credentials", ErrUnknownUfrag)
	case u.ufrag == "" || u.ufrag == a.remoteUfrag:
		// The current generation.
	case a.oldRemote[u.ufrag]:
		a.mu.Unlock()
		return false, fmt.Errorf("%w: %q is the peer's old ufrag", ErrUnknownUfrag, u.ufrag)
	case a.remoteUfrag == "":
		// The first credentials, or the answer to a restart of ours.
		if u.pwd == "" {
			a.mu.Unlock()
			return false, fmt.Errorf("%w: %q without pwd", ErrUnknownUfrag, u.ufrag)
		}
		a.remoteUfrag, a.remotePwd = u.ufrag, u.pwd
		first := !a.readyDone
		a.readyDone = true
		a.mu.Unlock()
		if first {
			close(a.ready)
		} else if err := a.agent.SetRemoteCredentials(u.ufrag, u.pwd); err != nil {
			return false, fmt.Errorf("ice: %w", err)
		}
		return false, a.addCandidates(u.candidates)
	default:
		if u.pwd == "" {
			a.mu.Unlock()
			return false, fmt.Errorf("%w: %q without pwd", ErrUnknownUfrag, u.ufrag)
		}
		if a.restarts >= a.cfg.maxRestarts() {
			a.mu.Unlock()
			return false, ErrTooManyRestarts
		}
		a.restarts++
		a.oldRemote[a.remoteUfrag] = true
		a.remoteUfrag, a.remotePwd = u.ufrag, u.pwd
		restarted = true
	}
	a.mu.Unlock()
	if restarted {
		if err := a.restartLocal(true); err != nil {
			return true, err
		}
	}
	return restarted, a.addCandidates(u.candidates)
}

// addCandidates adds the peer's candidates of component 1, up to the limit.
func (a *iceAgent) addCandidates(cs []Candidate) error {
	var errs []error
	for _, c := range cs {
		if c.ComponentNumber() > 1 {
			continue // RTCP: not used by a data channel
		}
		pc, err := c.Parse()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		a.mu.Lock()
		if a.remoteCount >= a.cfg.maxRemoteCandidates() {
			a.mu.Unlock()
			errs = append(errs, fmt.Errorf("%w (%d)", ErrTooManyCandidates, a.cfg.maxRemoteCandidates()))
			break
		}
		a.remoteCount++
		a.mu.Unlock()
		if err := a.agent.AddRemoteCandidate(pc); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// restartLocal gives this side new credentials and gathers again. With
// keepRemote the peer's current credentials (already the new ones) are set
// again after pion cleared them.
func (a *iceAgent) restartLocal(keepRemote bool) error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return net.ErrClosed
	}
	a.generation++
	gen := a.generation
	ru, rp := a.remoteUfrag, a.remotePwd
	if !keepRemote {
		a.oldRemote[a.remoteUfrag] = true
		a.remoteUfrag, a.remotePwd = "", ""
	}
	a.mu.Unlock()
	if err := a.agent.Restart("", ""); err != nil {
		return fmt.Errorf("ice: restart: %w", err)
	}
	u, p, err := a.agent.GetLocalUserCredentials()
	if err != nil {
		return fmt.Errorf("ice: restart: %w", err)
	}
	a.mu.Lock()
	a.localUfrag, a.localPwd = u, p
	a.mu.Unlock()
	if err := a.agent.OnCandidate(a.onCandidate(gen)); err != nil {
		return fmt.Errorf("ice: restart: %w", err)
	}
	if keepRemote && ru != "" {
		if err := a.agent.SetRemoteCredentials(ru, rp); err != nil {
			return fmt.Errorf("ice: restart: %w", err)
		}
	}
	if err := a.agent.GatherCandidates(); err != nil {
		return fmt.Errorf("ice: restart: gathering: %w", err)
	}
	return nil
}

// connect runs the connectivity checks until a pair is selected. The
// controlling side (the offerer) nominates. It waits for the peer's
// credentials first.
func (a *iceAgent) connect(ctx context.Context, controlling bool) (net.Conn, error) {
	select {
	case <-a.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	u, p := a.remote()
	var (
		conn *pionice.Conn
		err  error
	)
	if controlling {
		conn, err = a.agent.Dial(ctx, u, p)
	} else {
		conn, err = a.agent.Accept(ctx, u, p)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	return &agentConn{Conn: conn, a: a}, nil
}

// close stops the agent and closes its sockets, waiting for the agent's
// callbacks to return.
func (a *iceAgent) close() error { return a.shutdown(true) }

// shutdown closes the agent once: pion's Agent.Close must not run twice
// concurrently (the DTLS layer closes the ICE connection, and so the agent,
// from its own goroutines). Only the first call's graceful applies.
func (a *iceAgent) shutdown(graceful bool) error {
	a.closeOnce.Do(func() {
		a.mu.Lock()
		a.closed = true
		a.mu.Unlock()
		if graceful {
			a.closeErr = a.agent.GracefulClose()
		} else {
			a.closeErr = a.agent.Close()
		}
	})
	return a.closeErr
}

// agentConn is the ICE connection of the selected pair; closing it closes
// the agent through iceAgent.shutdown.
type agentConn struct {
	*pionice.Conn
	a *iceAgent
}

func (c *agentConn) Close() error { return c.a.shutdown(false) }

// bufferedNet enlarges the socket buffers of the UDP sockets pion opens.
// The kernel's default receive buffer (about 200 KiB on Linux) overflows
// under a burst of SCTP packets, and every loss halves SCTP's congestion
// window; it is the largest single cause of slow data channels on fast
// links. The kernel caps the size at net.core.rmem_max/wmem_max. On Linux
// the sockets also send in batches (batchConn).
type bufferedNet struct {
	*stdnet.Net
	size int
	log  *slog.Logger
}

type bufferSetter interface {
	SetReadBuffer(int) error
	SetWriteBuffer(int) error
}

func (n *bufferedNet) tune(c any) {
	bs, ok := c.(bufferSetter)
	if !ok || n.size <= 0 {
		return
	}
	_ = bs.SetReadBuffer(n.size)
	_ = bs.SetWriteBuffer(n.size)
	// The kernel caps the sizes silently: log what the socket got.
	if sc, ok := c.(syscall.Conn); ok && n.log.Enabled(context.Background(), slog.LevelDebug) {
		rcv, snd, err := socketBuffers(sc)
		n.log.Debug("ice: UDP socket buffers", "asked", n.size,
			"so_rcvbuf", rcv, "so_sndbuf", snd, "error", err)
	}
}

// ListenUDP implements transport.Net.
func (n *bufferedNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	n.tune(c)
	return batchUDP(c, n.log), nil
}

// ListenPacket implements transport.Net.
func (n *bufferedNet) ListenPacket(network, address string) (net.PacketConn, error) {
	c, err := n.Net.ListenPacket(network, address)
	if err != nil {
		return nil, err
	}
	n.tune(c)
	if uc, ok := c.(*net.UDPConn); ok {
		return batchUDP(uc, n.log), nil
	}
	return c, nil
}

var _ transport.Net = (*bufferedNet)(nil)

// relayWaitDefault is how long the controlling agent waits before
// nominating a relayed pair when better ones may still succeed.
const relayWaitDefault = 2 * time.Second

// PairInfo describes the candidate pair in use.
type PairInfo struct {
	// LocalType and RemoteType are the candidate types: host, srflx,
	// prflx or relay.
	LocalType, RemoteType string
	// LocalAddr and RemoteAddr are "ip:port".
	LocalAddr, RemoteAddr string
	// RelayProtocol is how a local relayed candidate reaches its TURN
	// server ("udp", "tcp", "tls"); empty for other types.
	RelayProtocol string
}

// selectedPair returns the pair in use, if any.
func (a *iceAgent) selectedPair() (PairInfo, bool) {
	p, err := a.agent.GetSelectedCandidatePair()
	if err != nil || p == nil {
		return PairInfo{}, false
	}
	pi := PairInfo{
		LocalType: p.Local.Type().String(), RemoteType: p.Remote.Type().String(),
		LocalAddr:  net.JoinHostPort(p.Local.Address(), strconv.Itoa(p.Local.Port())),
		RemoteAddr: net.JoinHostPort(p.Remote.Address(), strconv.Itoa(p.Remote.Port())),
	}
	if r, ok := p.Local.(*pionice.CandidateRelay); ok {
		pi.RelayProtocol = r.RelayProtocol()
	}
	return pi, true
}
