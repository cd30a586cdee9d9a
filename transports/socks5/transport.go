package socks5

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/jingle"
)

// The state of one side's candidate report.
const (
	pending = iota
	used
	failed
)

// choice is a party's report: which of the other's candidates it
// connected to (candidate-used) or that it could connect to none
// (candidate-error).
type choice struct {
	state int
	cid   string
	prio  uint32
	typ   CandidateType
	conn  net.Conn // ours only: the connection to the peer's candidate
}

// localCand is one of this side's candidates.
type localCand struct {
	Candidate
	prio  uint32
	typ   CandidateType
	addr  string // host:port
	proxy Proxy  // for proxy candidates
}

// remoteCand is one of the peer's candidates, checked.
type remoteCand struct {
	cid   string
	addr  string // host:port
	prio  uint32
	typ   CandidateType
	jid   string // the streamhost's JID
	order int    // position in the peer's offer
}

// transport is one side of a S5B transport of one content.
type transport struct {
	m         *Method
	set       Settings
	log       *slog.Logger
	p         jingle.TransportParams
	proposer  bool // this side sent the offer
	sid       string
	dstaddr   string // DST.ADDR of our candidates: SHA1(sid + us + peer)
	peerHash  string // DST.ADDR of the peer's: SHA1(sid + peer + us)
	local     []*localCand
	localEl   jingle.Element
	ctx       context.Context // ends with Close
	cancel    context.CancelFunc
	checkCtx  context.Context // ends when the transport is settled
	checkStop context.CancelFunc
	wg        sync.WaitGroup

	mu         sync.Mutex
	remote     []remoteCand
	remoteDst  string // the peer's dstaddr, if well-formed
	haveRemote bool
	dialed     bool
	started    bool
	wake       chan struct{} // tells the checker about new candidates or the peer's choice
	ours       choice
	theirs     choice
	activated  string // cid of the peer's <activated/>
	proxyErr   bool
	accepted   []*acceptedConn
	joined     bool        // t has routes on the Method's streamhost
	left       *streamhost // the streamhost t closed when leaving it last
	proxying   bool
	route      CandidateType   // the type of the candidate in use, once settled
	proxyAddrs map[string]bool // host:port of this side's own proxies
	timer      *time.Timer
	done       chan struct{}
	conn       net.Conn
	err        error
	closed     bool
}

func newTransport(ctx context.Context, m *Method, p jingle.TransportParams) (*transport, error) {
	set := m.Settings.withDefaults()
	t := &transport{
		m: m, set: set, p: p, proposer: p.Offer == nil,
		log:  set.Logger.With("sid", p.SID, "content", p.Content.Name),
		wake: make(chan struct{}, 1),
		done: make(chan struct{}),
	}
	var offer Transport
	if p.Offer != nil {
		if p.Offer.Namespace() != NS {
			return nil, fmt.Errorf("socks5: offer in namespace %q", p.Offer.Namespace())
		}
		if err := p.Offer.Decode(&offer); err != nil {
			return nil, fmt.Errorf("socks5: malformed offer: %w", err)
		}
		if offer.SID == "" {
			return nil, errors.New("socks5: offer without sid")
		}
		if offer.Mode != "" && offer.Mode != "tcp" {
			return nil, fmt.Errorf("socks5: mode %q not supported", offer.Mode)
		}
		t.sid = offer.SID
	} else {
		t.sid = randomID(16)
	}
	t.dstaddr = DstAddr(t.sid, p.Local.String(), p.Peer.String())
	t.peerHash = DstAddr(t.sid, p.Peer.String(), p.Local.String())
	if p.Offer != nil {
		t.addRemote(offer)
		t.haveRemote = true
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.checkCtx, t.checkStop = context.WithCancel(t.ctx)
	if err := t.gather(ctx); err != nil {
		t.cancel()
		return nil, err
	}
	t.log.Debug("socks5: transport ready", "stream", t.sid, "candidates", len(t.local), "initiator", p.Initiator)
	return t, nil
}

// gather makes this side's candidates and its <transport/>.
func (t *transport) gather(ctx context.Context) error {
	taken := map[string]bool{} // host:port the peer offered
	for _, rc := range t.remote {
		taken[rc.addr] = true
	}
	localJID := t.p.Local.String()
	if !t.set.NoDirect {
		// Without a streamhost the transport can still use proxies and
		// the peer's candidates.
		hosts, err := t.directHosts()
		if err != nil {
			t.log.Warn("socks5: no direct candidates", "err", err)
		}
		var port uint16
		if len(hosts) > 0 {
			if port, err = t.m.hub.join(t); err != nil {
				t.log.Warn("socks5: no direct candidates", "err", err)
			} else {
				t.joined = true
			}
		}
		if t.joined {
			for i, h := range hosts {
				addr := hostPort(h, port)
				if taken[addr] {
					continue
				}
				lp := uint16(65535 - min(i, 65535))
				t.addLocal(Candidate{Host: h, JID: localJID, Port: strconv.Itoa(int(port)), Type: TypeDirect}, Priority(TypeDirect, lp), Proxy{})
			}
			if len(t.local) == 0 {
				t.leaveHub(true)
			}
		}
	}
	proxies, err := t.m.Proxies(ctx, t.p.Stream)
	if err != nil {
		t.log.Info("socks5: proxy discovery", "err", err)
	}
	t.mu.Lock()
	t.proxyAddrs = map[string]bool{}
	for _, px := range proxies {
		t.proxyAddrs[px.Addr] = true
	}
	t.mu.Unlock()
	for i, px := range proxies {
		host, ps, err := net.SplitHostPort(px.Addr)
		if err != nil {
			continue
		}
		port, err := parsePort(ps)
		if err != nil || taken[hostPort(host, port)] {
			continue
		}
		lp := uint16(65535 - min(i, 65535))
		t.addLocal(Candidate{Host: host, JID: px.JID.String(), Port: strconv.Itoa(int(port)), Type: TypeProxy}, Priority(TypeProxy, lp), px)
	}
	el := Transport{SID: t.sid}
	if t.proposer && t.p.Initiator {
		el.Mode = "tcp"
	}
	for _, lc := range t.local {
		el.Candidates = append(el.Candidates, lc.Candidate)
		if lc.typ == TypeProxy {
			el.DstAddr = t.dstaddr
		}
	}
	t.localEl, err = jingle.NewElement(el)
	if err != nil {
		t.leaveHub(true)
		return err
	}
	return nil
}

// leaveHub removes t's routes from the Method's streamhost; with wait, it
// also waits for the streamhost's goroutines if t closed it, which must
// not be done with t.mu held.
func (t *transport) leaveHub(wait bool) {
	if !t.joined {
		return
	}
	t.joined = false
	t.left = t.m.hub.leave(t)
	if wait && t.left != nil {
		t.left.wait()
	}
}

func (t *transport) addLocal(c Candidate, prio uint32, px Proxy) {
	c.CID = randomID(8)
	c.Priority = strconv.FormatUint(uint64(prio), 10)
	port, _ := c.PortNumber()
	t.local = append(t.local, &localCand{Candidate: c, prio: prio, typ: c.Type, addr: hostPort(c.Host, port), proxy: px})
}

// directHosts returns the hosts offered as direct candidates.
func (t *transport) directHosts() ([]string, error) {
	if len(t.set.Addresses) > 0 {
		return slices.Clone(t.set.Addresses), nil
	}
	if ip, err := netip.ParseAddr(t.set.ListenHost); err == nil && !ip.IsUnspecified() {
		if !offerable(ip.Unmap(), t.set.AllowLoopback) {
			return nil, nil
		}
		return []string{ip.String()}, nil
	}
	ips, err := t.m.addrs.get(t.set.AllowLoopback)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out, nil
}

// addRemote records the peer's candidates from el; t.mu is held (or t is
// not shared yet). It returns how many were added.
func (t *transport) addRemote(el Transport) int {
	if ok := validDstAddr(el.DstAddr); ok && t.remoteDst == "" {
		t.remoteDst = el.DstAddr
	}
	n := 0
	for _, c := range el.Candidates {
		if len(t.remote) >= MaxCandidates {
			t.log.Info("socks5: too many candidates from the peer; ignoring the rest", "max", MaxCandidates)
			break
		}
		rc, err := checkCandidate(c)
		if err != nil {
			t.log.Info("socks5: ignoring a candidate of the peer", "cid", c.CID, "err", err)
			continue
		}
		if slices.ContainsFunc(t.remote, func(o remoteCand) bool { return o.cid == rc.cid }) {
			continue
		}
		rc.order = len(t.remote)
		t.remote = append(t.remote, rc)
		n++
	}
	return n
}

func checkCandidate(c Candidate) (remoteCand, error) {
	if c.CID == "" || len(c.CID) > 256 {
		return remoteCand{}, errors.New("bad cid")
	}
	if c.Host == "" || len(c.Host) > 255 {
		return remoteCand{}, errors.New("bad host")
	}
	if _, err := jid.Parse(c.JID); err != nil {
		return remoteCand{}, fmt.Errorf("bad jid: %w", err)
	}
	port, err := c.PortNumber()
	if err != nil {
		return remoteCand{}, err
	}
	prio, err := c.PriorityValue()
	if err != nil {
		return remoteCand{}, err
	}
	typ := c.Type
	if typ == "" {
		typ = TypeDirect
	}
	if _, ok := typ.Preference(); !ok {
		return remoteCand{}, fmt.Errorf("unknown type %q", c.Type)
	}
	return remoteCand{cid: c.CID, addr: hostPort(c.Host, port), prio: prio, typ: typ, jid: c.JID}, nil
}

func validDstAddr(s string) bool {
	if len(s) != 40 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// Local implements jingle.Transport.
func (t *transport) Local() jingle.Element { return t.localEl }

// decodeRemote decodes a <transport/> of the peer and checks its sid.
func (t *transport) decodeRemote(el jingle.Element) (Transport, error) {
	var tr Transport
	if el.Namespace() != NS {
		return tr, fmt.Errorf("socks5: <transport/> in namespace %q", el.Namespace())
	}
	if err := el.Decode(&tr); err != nil {
		return tr, fmt.Errorf("socks5: malformed <transport/>: %w", err)
	}
	if tr.SID != "" && tr.SID != t.sid {
		return tr, fmt.Errorf("socks5: <transport/> for stream %q, not %q", tr.SID, t.sid)
	}
	return tr, nil
}

// SetRemote implements jingle.Transport: the peer's answer, with its
// candidates. The proposing side starts its checks now.
func (t *transport) SetRemote(ctx context.Context, answer jingle.Element) error {
	tr, err := t.decodeRemote(answer)
	if err != nil {
		t.mu.Lock()
		t.fail("the peer's answer: " + err.Error())
		t.mu.Unlock()
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.addRemote(tr)
	t.haveRemote = true
	t.maybeStart()
	// An answer carrying notifications is unusual but harmless.
	t.notifications(tr)
	return nil
}

// HandleInfo implements jingle.Transport: candidate-used, candidate-error,
// activated, proxy-error, or more candidates.
func (t *transport) HandleInfo(ctx context.Context, info jingle.Element) error {
	tr, err := t.decodeRemote(info)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(tr.Candidates) > 0 {
		if t.addRemote(tr) > 0 {
			t.poke()
		}
	}
	return t.notifications(tr)
}

// notifications applies the peer's reports; t.mu is held.
func (t *transport) notifications(tr Transport) error {
	var err error
	switch {
	case tr.CandidateUsed != nil:
		if t.theirs.state != pending {
			t.log.Info("socks5: the peer reported twice; ignored", "cid", tr.CandidateUsed.CID)
			break
		}
		i := slices.IndexFunc(t.local, func(lc *localCand) bool { return lc.CID == tr.CandidateUsed.CID })
		if i < 0 {
			err = fmt.Errorf("socks5: the peer used candidate %.64q, which is not ours", tr.CandidateUsed.CID)
			t.fail(err.Error())
			break
		}
		lc := t.local[i]
		t.theirs = choice{state: used, cid: lc.CID, prio: lc.prio, typ: lc.typ}
		t.log.Debug("socks5: the peer used our candidate", "cid", lc.CID, "type", lc.typ, "addr", lc.addr)
		t.poke()
	case tr.CandidateError != nil:
		if t.theirs.state != pending {
			t.log.Info("socks5: the peer reported twice; ignored")
			break
		}
		t.theirs = choice{state: failed}
		t.log.Debug("socks5: the peer could not use our candidates")
		t.poke()
	}
	if tr.Activated != nil {
		t.activated = tr.Activated.CID
		if t.activated == "" {
			t.activated = "\x00" // present, but names nothing
		}
	}
	if tr.ProxyError != nil {
		t.proxyErr = true
	}
	t.evaluate()
	return err
}

// poke wakes the checker; t.mu is held.
func (t *transport) poke() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// Dial implements jingle.StreamTransport. On the side that received the
// offer it starts the checks (so that the peer learns nothing of this
// side's addresses before the session is accepted); then it waits until
// the transport is settled.
func (t *transport) Dial(ctx context.Context) (net.Conn, error) {
	t.mu.Lock()
	t.dialed = true
	t.maybeStart()
	done := t.done
	t.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.conn, t.err
}

// maybeStart starts the checks of the peer's candidates and the
// negotiation timer once this side may; t.mu is held.
func (t *transport) maybeStart() {
	if t.started || t.closed || !t.haveRemote || !(t.proposer || t.dialed) {
		return
	}
	select {
	case <-t.done:
		return
	default:
	}
	t.started = true
	t.timer = time.AfterFunc(t.set.NegotiationTimeout, func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		t.fail(fmt.Sprintf("no bytestream after %v", t.set.NegotiationTimeout))
	})
	t.wg.Add(1)
	go t.runChecks()
}

// runChecks tries the peer's candidates and reports the result to the
// peer.
func (t *transport) runChecks() {
	defer t.wg.Done()
	best := t.check(t.checkCtx)
	t.mu.Lock()
	report := Transport{SID: t.sid}
	if best != nil {
		t.ours = choice{state: used, cid: best.rc.cid, prio: best.rc.prio, typ: best.rc.typ, conn: best.conn}
		report.CandidateUsed = &CID{CID: best.rc.cid}
		t.log.Debug("socks5: connected to the peer's candidate", "cid", best.rc.cid, "type", best.rc.typ, "addr", best.rc.addr)
	} else {
		t.ours = choice{state: failed}
		report.CandidateError = &Empty{}
		t.log.Debug("socks5: could not connect to any of the peer's candidates")
	}
	t.evaluate()
	if best != nil && t.isDone() && t.conn != best.conn {
		best.conn.Close()
	}
	t.mu.Unlock()
	if t.ctx.Err() != nil {
		return
	}
	// The report is informational: nothing waits for the peer's
	// acknowledgement, and no goroutine is kept for it where the stream
	// can hand it over later (jingle.AsyncSignaler).
	err := t.signalFunc(report, func(err error) {
		if err != nil {
			t.reportRefused(err)
		}
	})
	if err != nil {
		t.reportRefused(err)
	}
}

// reportRefused fails the transport when the peer did not take our
// candidate report. It runs on the stream's goroutine when the report was
// sent asynchronously: it only takes t.mu.
func (t *transport) reportRefused(err error) {
	t.log.Info("socks5: sending the candidate report", "err", err)
	t.mu.Lock()
	t.fail("the peer did not take our candidate report: " + err.Error())
	t.mu.Unlock()
}

// signalFunc sends tr in transport-info and hands the peer's
// acknowledgement to answered (see jingle.AsyncSignaler); with a Signaler
// that is not asynchronous, it waits for the answer.
func (t *transport) signalFunc(tr Transport, answered func(error)) error {
	as, ok := t.p.Signal.(jingle.AsyncSignaler)
	if !ok {
		answered(t.signal(tr))
		return nil
	}
	el, err := jingle.NewElement(tr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(t.ctx, t.set.NegotiationTimeout)
	defer cancel()
	return as.TransportInfoFunc(ctx, el, answered)
}

func (t *transport) signal(tr Transport) error {
	if t.p.Signal == nil {
		return errors.New("socks5: no signaler")
	}
	el, err := jingle.NewElement(tr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(t.ctx, t.set.NegotiationTimeout)
	defer cancel()
	return t.p.Signal.TransportInfo(ctx, el)
}

// canWin reports whether a candidate of the peer with priority prio could
// still be nominated, given the peer's report; t.mu is held.
func (t *transport) canWin(prio uint32) bool {
	if t.theirs.state != used {
		return true
	}
	return prio > t.theirs.prio || (prio == t.theirs.prio && t.p.Initiator)
}

// evaluate settles the transport once both reports are in (XEP-0260
// §2.4); t.mu is held.
func (t *transport) evaluate() {
	if t.isDone() || t.ours.state == pending || t.theirs.state == pending {
		return
	}
	if t.ours.state == failed && t.theirs.state == failed {
		t.fail("no candidate worked on either side")
		return
	}
	useOurs := false
	switch {
	case t.ours.state == failed:
	case t.theirs.state == failed:
		useOurs = true
	case t.ours.prio != t.theirs.prio:
		useOurs = t.ours.prio > t.theirs.prio
	default:
		useOurs = t.p.Initiator // a tie: the initiator's choice
	}
	if useOurs {
		t.route = t.ours.typ
		if t.ours.typ != TypeProxy {
			t.finish(t.ours.conn, nil)
			return
		}
		// The peer offered the proxy: it activates it.
		switch {
		case t.proxyErr:
			t.fail("the peer could not activate its proxy (proxy-error)")
		case t.activated == "":
			// Wait for <activated/>.
		case t.activated != t.ours.cid:
			t.fail(fmt.Sprintf("the peer activated candidate %.64q, not the nominated %q", t.activated, t.ours.cid))
		default:
			t.finish(t.ours.conn, nil)
		}
		return
	}
	i := slices.IndexFunc(t.local, func(lc *localCand) bool { return lc.CID == t.theirs.cid })
	lc := t.local[i]
	t.route = lc.typ
	if t.proxyErr {
		t.fail("the peer reported a proxy error")
		return
	}
	if lc.typ == TypeProxy {
		if !t.proxying {
			t.proxying = true
			t.wg.Add(1)
			go t.activate(lc)
		}
		return
	}
	if ac := t.pickAccepted(lc); ac != nil {
		t.finish(ac.conn, nil)
	}
	// Else wait for the bytestream to arrive on the streamhost.
}

// pickAccepted returns the bytestream that came in on the candidate lc:
// the one received on lc's address, else the latest; t.mu is held.
func (t *transport) pickAccepted(lc *localCand) *acceptedConn {
	var pick *acceptedConn
	for _, ac := range t.accepted {
		if ta, ok := ac.local.(*net.TCPAddr); ok && ta.IP.String() == lc.Host {
			pick = ac
		}
	}
	if pick == nil && len(t.accepted) > 0 {
		pick = t.accepted[len(t.accepted)-1]
	}
	return pick
}

// deliver receives a bytestream the peer opened on our streamhost.
func (t *transport) deliver(ac *acceptedConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.isDone() || t.closed || len(t.accepted) >= maxAccepted {
		ac.conn.Close()
		return
	}
	order := "ours first (XEP-0260)"
	if ac.hash != t.dstaddr {
		order = "peer first"
	}
	t.log.Debug("socks5: the peer connected to our streamhost", "local", ac.local, "dstaddr", order)
	t.accepted = append(t.accepted, ac)
	t.evaluate()
}

// activate connects to our own proxy, nominated, and activates it
// (XEP-0260 §2.4): then tells the peer with <activated/>, or with
// <proxy-error/> when it fails.
func (t *transport) activate(lc *localCand) {
	defer t.wg.Done()
	ctx, cancel := context.WithTimeout(t.ctx, t.set.ConnectTimeout)
	defer cancel()
	var conn *net.TCPConn
	err := errors.New("no IQ stream to activate the proxy")
	if t.p.Stream != nil {
		// Our own proxy is trusted, wherever it is.
		conn, err = connect(ctx, dialer(true), lc.addr, t.dstaddr)
		if err == nil {
			err = ActivateProxy(ctx, t.p.Stream, lc.proxy.JID, t.sid, t.p.Peer)
		}
	}
	if err != nil {
		if conn != nil {
			conn.Close()
		}
		t.log.Info("socks5: proxy activation failed", "proxy", lc.proxy, "err", err)
		if t.ctx.Err() == nil {
			if serr := t.signal(Transport{SID: t.sid, ProxyError: &Empty{}}); serr != nil {
				t.log.Info("socks5: sending proxy-error", "err", serr)
			}
		}
		t.mu.Lock()
		t.fail("activating our proxy: " + err.Error())
		t.mu.Unlock()
		return
	}
	t.log.Debug("socks5: proxy activated", "proxy", lc.proxy)
	if err := t.signal(Transport{SID: t.sid, Activated: &CID{CID: lc.CID}}); err != nil {
		conn.Close()
		t.mu.Lock()
		t.fail("the peer did not take <activated/>: " + err.Error())
		t.mu.Unlock()
		return
	}
	t.mu.Lock()
	t.finish(conn, nil)
	t.mu.Unlock()
	if !t.owns(conn) {
		conn.Close()
	}
}

func (t *transport) owns(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.conn == c
}

func (t *transport) isDone() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

// fail settles the transport with an error wrapping
// jingle.ErrTransportFailed; t.mu is held.
func (t *transport) fail(why string) {
	if t.isDone() {
		return
	}
	t.log.Info("socks5: transport failed", "why", why)
	t.finish(nil, fmt.Errorf("socks5: %s: %w", why, jingle.ErrTransportFailed))
}

// finish settles the transport with conn or err (once) and releases what
// is not needed any more; t.mu is held.
func (t *transport) finish(conn net.Conn, err error) {
	if t.isDone() {
		return
	}
	t.conn, t.err = conn, err
	close(t.done)
	if t.timer != nil {
		t.timer.Stop()
	}
	t.checkStop()
	if t.ours.conn != nil && t.ours.conn != conn {
		t.ours.conn.Close()
	}
	for _, ac := range t.accepted {
		if ac.conn != conn {
			ac.conn.Close()
		}
	}
	t.accepted = nil
	// No waiting under t.mu: a serving goroutine may be waiting for it.
	// Close waits.
	t.leaveHub(false)
	if err == nil {
		t.log.Debug("socks5: bytestream ready", "local", conn.LocalAddr(), "remote", conn.RemoteAddr())
	}
}

// Route reports the type of the candidate the bytestream goes through,
// once Dial has succeeded: TypeProxy when a SOCKS5 proxy relays it, else
// the type of a streamhost of one of the parties (TypeDirect, or what the
// peer declared: assisted, tunnel). It is "" before.
func (t *transport) Route() CandidateType {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.isDone() || t.err != nil {
		return ""
	}
	return t.route
}

// Close implements jingle.Transport: it stops the negotiation, closes the
// streamhost and every connection, the bytestream included, and waits for
// the transport's goroutines.
func (t *transport) Close() error {
	t.mu.Lock()
	if !t.closed {
		t.closed = true
		t.finish(nil, fmt.Errorf("socks5: transport closed: %w", jingle.ErrTransportFailed))
	}
	conn, left := t.conn, t.left
	t.mu.Unlock()
	t.cancel()
	if left != nil {
		left.wait()
	}
	t.wg.Wait()
	if conn != nil {
		return conn.Close()
	}
	return nil
}

// randomID returns n random bytes, hex-encoded.
func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
