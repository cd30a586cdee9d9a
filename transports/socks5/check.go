package socks5

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"mellium.im/xmpp/jid"
)

// attempt is one try of one of the peer's candidates.
type attempt struct {
	rc      remoteCand
	started bool
	done    bool
	skipped bool // abandoned: it could not win any more, or not allowed
	conn    *net.TCPConn
	err     error
	cancel  context.CancelFunc
}

func (a *attempt) pending() bool { return !a.done && !a.skipped }

// checker is the state of one run of check.
type checker struct {
	t        *transport
	attempts []*attempt
	results  chan *attempt
	wg       sync.WaitGroup
	begin    time.Time
	// slots is the Method's attempt tokens (Settings.MaxParallelChecks);
	// held counts those check took and start has not used yet, and
	// needSlot is set when a due attempt waits for one.
	slots    chan struct{}
	held     int
	needSlot bool
}

// check tries the peer's candidates, highest priority first, and returns
// the successful attempt of highest priority, or nil when none worked or
// none can beat the candidate the peer already used. Attempts start
// Stagger apart (proxies ProxyDelay later), or as soon as every earlier
// one has failed. The other successful connections are closed.
func (t *transport) check(ctx context.Context) *attempt {
	k := &checker{t: t, results: make(chan *attempt, MaxCandidates), begin: time.Now(), slots: t.m.checkSlots()}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	defer k.stop()
	for {
		k.refresh()
		next := k.start(ctx)
		if best, over := k.decide(); over {
			return best
		}
		if next >= 0 {
			timer.Reset(next)
		}
		var slot chan struct{}
		if k.needSlot {
			slot = k.slots
		}
		select {
		case slot <- struct{}{}:
			k.held++
		case a := <-k.results:
			k.finished(a)
		case <-timer.C:
		case <-t.wake:
		case <-ctx.Done():
			k.closeAll(nil)
			return nil
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// stop cancels the attempts still running, waits for them, and closes the
// connections of those that finished after the decision.
func (k *checker) stop() {
	for _, a := range k.attempts {
		if a.cancel != nil {
			a.cancel()
		}
	}
	k.wg.Wait()
	k.giveBack()
	close(k.results)
	for a := range k.results {
		// Finished after the decision: never the one returned.
		if a.err == nil {
			a.conn.Close()
		}
	}
}

// refresh takes in new candidates and the peer's report: attempts that
// can no longer win (or are not allowed) are skipped.
func (k *checker) refresh() {
	t := k.t
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, rc := range t.remote {
		if !slices.ContainsFunc(k.attempts, func(a *attempt) bool { return a.rc.cid == rc.cid }) {
			k.attempts = append(k.attempts, &attempt{rc: rc})
		}
	}
	slices.SortStableFunc(k.attempts, func(a, b *attempt) int {
		if c := cmp.Compare(b.rc.prio, a.rc.prio); c != 0 {
			return c
		}
		return cmp.Compare(a.rc.order, b.rc.order)
	})
	for _, a := range k.attempts {
		if !a.skipped && !a.done && !t.canWin(a.rc.prio) {
			a.skipped = true
			if a.cancel != nil {
				a.cancel()
			}
		}
		if !a.started && !a.skipped && t.set.NoDirect && a.rc.typ != TypeProxy {
			a.skipped = true
		}
	}
}

// start starts the attempts that are due, and returns how long until the
// next one is (negative: none waits).
func (k *checker) start(ctx context.Context) time.Duration {
	t := k.t
	next := time.Duration(-1)
	allFailedBefore := true
	k.needSlot = false
	defer k.giveBack()
	for i, a := range k.attempts {
		if !a.started && !a.skipped {
			due := time.Duration(i) * t.set.Stagger
			if a.rc.typ == TypeProxy {
				due += t.set.ProxyDelay
			}
			if wait := due - time.Since(k.begin); wait > 0 && !allFailedBefore {
				if next < 0 || wait < next {
					next = wait
				}
			} else if !k.takeSlot() {
				// Due, but MaxParallelChecks attempts are in progress:
				// check waits for a token.
				k.needSlot = true
			} else {
				a.started = true
				actx, cancel := context.WithTimeout(ctx, t.set.ConnectTimeout)
				a.cancel = cancel
				k.wg.Add(1)
				go func(a *attempt) {
					defer k.wg.Done()
					a.conn, a.err = t.try(actx, a.rc)
					<-k.slots
					k.results <- a
				}(a)
			}
		}
		if a.pending() || (a.done && a.err == nil) {
			allFailedBefore = false
		}
	}
	return next
}

// takeSlot takes an attempt token: one check took for start, else a free
// one if there is, without waiting.
func (k *checker) takeSlot() bool {
	if k.held > 0 {
		k.held--
		return true
	}
	select {
	case k.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

// giveBack returns the tokens taken and not used.
func (k *checker) giveBack() {
	for ; k.held > 0; k.held-- {
		<-k.slots
	}
}

// decide returns the best success once nothing better is pending (over),
// or nil and over when nothing is pending any more. The other successes
// are closed.
func (k *checker) decide() (best *attempt, over bool) {
	for _, a := range k.attempts {
		if a.done && a.err == nil {
			best = a
			break
		}
		if a.pending() {
			break
		}
	}
	if best != nil || !slices.ContainsFunc(k.attempts, (*attempt).pending) {
		k.closeAll(best)
		return best, true
	}
	return nil, false
}

// closeAll closes the connections of the successful attempts but keep.
func (k *checker) closeAll(keep *attempt) {
	for _, a := range k.attempts {
		if a.done && a.err == nil && a != keep {
			a.conn.Close()
		}
	}
}

// finished records the end of an attempt.
func (k *checker) finished(a *attempt) {
	a.done = true
	if a.err != nil {
		k.t.log.Debug("socks5: candidate failed", "cid", a.rc.cid, "addr", a.rc.addr, "err", a.err)
	}
	if a.skipped && a.err == nil {
		// Abandoned while it connected.
		a.conn.Close()
		a.err = errors.New("abandoned")
	}
}

// try connects to one candidate of the peer and performs the SOCKS5
// handshake. A proxy gets the peer's DST.ADDR (its dstaddr attribute, or
// SHA1(sid + peer + us)); a streamhost of the peer's own gets that first
// and, if it refuses, the other orders peers are known to use.
func (t *transport) try(ctx context.Context, rc remoteCand) (*net.TCPConn, error) {
	if t.set.NoDirect && rc.typ == TypeProxy {
		if err := t.checkPeerProxy(ctx, rc); err != nil {
			return nil, err
		}
	}
	d := dialer(t.set.AllowLoopback)
	t.mu.Lock()
	remoteDst := t.remoteDst
	t.mu.Unlock()
	var hashes []string
	if rc.typ == TypeProxy {
		h := t.peerHash
		if remoteDst != "" {
			h = remoteDst
		}
		hashes = []string{h}
	} else {
		hashes = []string{t.peerHash}
		if remoteDst != "" && remoteDst != t.peerHash {
			hashes = append(hashes, remoteDst)
		}
		hashes = append(hashes, t.dstaddr)
	}
	var err error
	for _, h := range hashes {
		var c *net.TCPConn
		c, err = connect(ctx, d, rc.addr, h)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, ErrRefused) {
			break
		}
	}
	return nil, err
}

// errUnconfirmedProxy is the error of a peer's proxy candidate refused
// with NoDirect.
var errUnconfirmedProxy = errors.New("socks5: the peer's proxy candidate is not a confirmed proxy (no-direct)")

// checkPeerProxy, with NoDirect, accepts a proxy candidate of the peer
// only at an address this side trusts: one of its own proxies, or the
// address the candidate's JID gives for itself in a streamhost query
// (XEP-0065 §5.3.1). Otherwise a peer could make us connect anywhere (and
// learn our address) by calling its own host a proxy.
func (t *transport) checkPeerProxy(ctx context.Context, rc remoteCand) error {
	t.mu.Lock()
	known := t.proxyAddrs[rc.addr]
	t.mu.Unlock()
	if known {
		return nil
	}
	j, err := jid.Parse(rc.jid)
	if err != nil || t.p.Stream == nil {
		return errUnconfirmedProxy
	}
	px, err := QueryStreamHost(ctx, t.p.Stream, j)
	if err != nil {
		return fmt.Errorf("%w: asking %s: %w", errUnconfirmedProxy, rc.jid, err)
	}
	if px.Addr != rc.addr {
		return fmt.Errorf("%w: %s says its address is %s, not %s", errUnconfirmedProxy, rc.jid, px.Addr, rc.addr)
	}
	return nil
}
