package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/pion/webrtc/v3"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/internal/testmedia"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jmi"
	"github.com/jinglekit/jinglekit/rtp"
	"github.com/jinglekit/jinglekit/xmppclient"
)

// caseCall is the name of the call set-up latency case.
const caseCall = "latency/call"

// callPeer is one logged-in client that places and answers calls: a
// Jingle Manager with the RTP application and XEP-0353 JMI, available
// (initial presence sent) so that proposals to its bare JID reach it.
type callPeer struct {
	jid jid.JID
	c   *xmppclient.Client
	m   *jingle.Manager
	h   *rtp.Handler
	jmi *jmi.Manager
	// calls receives the incoming calls, accepted.
	calls chan *rtp.Call
	// first receives, for each remote track, when its first RTP packet
	// arrived.
	first chan firstPacket
}

// firstPacket is the arrival of a call's first RTP packet at one peer.
type firstPacket struct {
	sid string
	at  time.Time
}

// callConfig is the calls' configuration: host candidates on loopback
// only, no STUN/TURN server, so that gathering completes at once.
func callConfig(log *slog.Logger) rtp.Config {
	return rtp.Config{
		IncludeLoopback: true,
		DisableIPv6:     true,
		InterfaceFilter: func(name string) bool { return name == "lo" },
		ConnectTimeout:  10 * time.Second,
		Logger:          log,
	}
}

// loginCaller logs acct in as resource with an RTP handler that accepts
// every call proposed to it (proceed at once, accept with Opus) and
// records when the first packet of every remote track arrives.
func loginCaller(ctx context.Context, env *Env, acct Account, resource string, log *slog.Logger) (*callPeer, error) {
	addr, err := jid.Parse(acct.JID + "/" + resource)
	if err != nil {
		return nil, err
	}
	p := &callPeer{
		jid:   addr,
		m:     &jingle.Manager{Logger: log},
		h:     &rtp.Handler{Config: callConfig(log)},
		jmi:   &jmi.Manager{Logger: log},
		calls: make(chan *rtp.Call, 1),
		first: make(chan firstPacket, 4),
	}
	p.h.JMI = p.jmi
	p.jmi.OnPropose = func(ctx context.Context, in *jmi.Incoming) {
		if err := in.Proceed(ctx); err != nil {
			log.Warn("bench: proceed", "err", err)
		}
	}
	p.h.OnCall = func(ctx context.Context, c *rtp.Call) {
		src, err := rtp.NewOggSource(bytes.NewReader(testmedia.BobOgg()))
		if err == nil {
			err = c.Accept(ctx, rtp.Options{Audio: src, OnTrack: p.onTrack})
		}
		if err != nil {
			log.Warn("bench: accept", "err", err)
			return
		}
		select {
		case p.calls <- c:
		case <-ctx.Done():
		}
	}
	if err := p.h.Register(p.m); err != nil {
		return nil, err
	}
	c, err := xmppclient.Dial(ctx, xmppclient.Config{
		JID: addr, Password: acct.Password, Server: env.C2SAddr, CAFile: env.CAFile, Logger: log,
		Handler: mux.New(stanza.NSClient, p.m.Handler(), p.jmi.Handler()),
	})
	if err != nil {
		return nil, fmt.Errorf("login %s: %w", addr, err)
	}
	p.c = c
	p.m.SetStream(c.Session())
	p.jmi.SetStream(c.Session())
	if err := c.SendPresence(ctx); err != nil {
		p.close()
		return nil, fmt.Errorf("presence of %s: %w", addr, err)
	}
	// Prosody handles each stream's stanzas in order but the two clients'
	// streams in any order: without this round trip a proposal sent right
	// after may reach Prosody before it has seen this resource available,
	// and go to offline storage.
	if _, err := xmppclient.GetInfo(ctx, c.Session(), addr.Domain(), ""); err != nil {
		p.close()
		return nil, fmt.Errorf("disco#info of the server: %w", err)
	}
	return p, nil
}

// onTrack is the calls' Options.OnTrack: it reports when the track's first
// RTP packet arrives (pion calls OnTrack once it has one) and drains the
// track until the call ends.
func (p *callPeer) onTrack(c *rtp.Call, _ string, tr *webrtc.TrackRemote) {
	buf := make([]byte, 1500)
	if _, _, err := tr.Read(buf); err != nil {
		return
	}
	select {
	case p.first <- firstPacket{c.SID(), time.Now()}:
	default: // nobody waits for a second track
	}
	for {
		if _, _, err := tr.Read(buf); err != nil {
			return
		}
	}
}

// close ends the peer's calls and logs out.
func (p *callPeer) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := p.h.Close(ctx)
	err = errors.Join(err, p.m.Close(ctx), p.jmi.Close(ctx))
	if p.c != nil {
		err = errors.Join(err, p.c.Close())
	}
	return err
}

// waitFirst waits for the first packet of the call sid.
func (p *callPeer) waitFirst(ctx context.Context, sid string) (time.Time, error) {
	for {
		select {
		case f := <-p.first:
			if f.sid == sid {
				return f.at, nil
			}
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("%s: no RTP packet in call %s: %w", p.jid, sid, ctx.Err())
		}
	}
}

// callLatency places -sessions calls (after 2 warm-ups) from alice to
// bob's bare JID, one after the other: JMI propose, proceed,
// session-initiate, session-accept, ICE and DTLS on loopback, Opus both
// ways. A sample is the time from Place (which sends the propose first)
// to the first RTP packet received by either side; the note gives the p50
// until both sides have received one.
func (h *harness) callLatency(ctx context.Context, c *Case) error {
	ctx, cancel := h.caseContext(ctx)
	defer cancel()
	alice, err := loginCaller(ctx, h.env, h.env.Alice, "call", h.log)
	if err != nil {
		return err
	}
	defer alice.close()
	bob, err := loginCaller(ctx, h.env, h.env.Bob, "call", h.log)
	if err != nil {
		return err
	}
	defer bob.close()
	var first, both []time.Duration
	const warmup = 2
	for i := range h.o.sessions + warmup {
		f, b, err := oneCall(ctx, alice, bob)
		if err != nil {
			return fmt.Errorf("call %d: %w", i, err)
		}
		if i >= warmup {
			first, both = append(first, f), append(both, b)
		}
	}
	if err := setPercentiles(c, first); err != nil {
		return err
	}
	p50, _ := Percentile(both, 50)
	p95, _ := Percentile(both, 95)
	c.Note += fmt.Sprintf("; until both sides received: p50 %.3g ms, p95 %.3g ms", ms(p50), ms(p95))
	return nil
}

// oneCall places one call from a to b's bare JID and hangs up once both
// sides have received media. It returns the time from Place to the first
// RTP packet received by either side, and until both have received one.
func oneCall(ctx context.Context, a, b *callPeer) (first, both time.Duration, err error) {
	src, err := rtp.NewOggSource(bytes.NewReader(testmedia.AliceOgg()))
	if err != nil {
		return 0, 0, err
	}
	t0 := time.Now()
	call, err := a.h.Place(ctx, b.jid.Bare(), rtp.Options{Audio: src, OnTrack: a.onTrack})
	if err != nil {
		return 0, 0, fmt.Errorf("place: %w", err)
	}
	var bc *rtp.Call
	// Hang up, and wait for both ends of the call to be gone before the
	// next one.
	defer func() {
		herr := call.HangUp(ctx)
		if errors.Is(herr, rtp.ErrCallEnded) {
			herr = nil
		}
		ends := []<-chan struct{}{call.Done()}
		if bc != nil {
			ends = append(ends, bc.Done())
		}
		for _, done := range ends {
			select {
			case <-done:
			case <-ctx.Done():
				herr = errors.Join(herr, ctx.Err())
			}
		}
		err = errors.Join(err, herr)
	}()
	select {
	case bc = <-b.calls:
	case <-ctx.Done():
		return 0, 0, fmt.Errorf("%s never accepted: %w", b.jid, ctx.Err())
	}
	if bc.SID() != call.SID() {
		return 0, 0, fmt.Errorf("bob accepted call %s, alice placed %s", bc.SID(), call.SID())
	}
	ta, err := a.waitFirst(ctx, call.SID())
	if err != nil {
		return 0, 0, err
	}
	tb, err := b.waitFirst(ctx, call.SID())
	if err != nil {
		return 0, 0, err
	}
	if tb.Before(ta) {
		ta, tb = tb, ta
	}
	return ta.Sub(t0), tb.Sub(t0), nil
}
