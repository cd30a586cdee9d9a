package rtp

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pion/webrtc/v3"
	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jmi"
	"github.com/jinglekit/jinglekit/transports/ice"
)

// Handler is the RTP application: register it on a jingle.Manager
// (Register) to receive calls (OnCall) and place them (Place).
//
// Set the exported fields before Register and do not change them after.
type Handler struct {
	// Config holds the settings of every call.
	Config Config
	// OnCall is called, in a goroutine the Handler owns (Close waits for
	// it), for each incoming call, ringing. It answers with c.Accept or
	// c.Reject — or lets it ring until the caller gives up (c.Done). It may
	// follow the call until it ends (c.Done). ctx ends with the call. Nil
	// declines every call with busy.
	OnCall func(ctx context.Context, c *Call)
	// JMI, when set, makes Place to a bare JID propose the call first
	// (XEP-0353) and marks incoming calls that follow a proceed of this
	// device (Call.JMIIncoming).
	JMI *jmi.Manager
	// NoRinging turns off the session-info <ringing/> sent for incoming
	// calls.
	NoRinging bool

	mu      sync.Mutex
	manager *jingle.Manager
	method  *method
	calls   map[*Call]bool
	closed  bool
	wg      sync.WaitGroup
}

// Register plugs the handler into m as the application of NS, with the
// ICE-UDP method of its calls (TransportMethods). Other applications'
// ICE-UDP contents (XEP-0343 data channels) go to the method registered on
// m for the namespace, if any.
func (h *Handler) Register(m *jingle.Manager) error {
	h.mu.Lock()
	h.manager = m
	h.mu.Unlock()
	return m.RegisterApplication(h)
}

// TransportMethods implements jingle.TransportProvider: the ICE-UDP method
// of RTP contents, whose transports live in the calls' PeerConnections.
func (h *Handler) TransportMethods() []jingle.TransportMethod {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.method == nil {
		h.method = &method{h: h, maxRemote: h.Config.MaxRemoteCandidates}
	}
	return []jingle.TransportMethod{h.method}
}

// placing returns the call this side places or extends with session id
// sid to peer, or nil.
func (h *Handler) placing(peer jid.JID, sid string) *Call {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.calls {
		c.mu.Lock()
		ok := c.sid == sid && c.peer.Equal(peer)
		c.mu.Unlock()
		if ok {
			return c
		}
	}
	return nil
}

// Namespaces implements jingle.Application.
func (h *Handler) Namespaces() []string { return []string{NS} }

// Features implements jingle.FeatureAdvertiser: audio, video, and the
// extensions this package maps.
func (h *Handler) Features() []string {
	f := []string{NSAudio, NSVideo, NSRTCPFB, NSHdrExt, FeatureGrouping, FeatureSSMA, ice.NSDTLS}
	if h.JMI != nil {
		f = append(f, jmi.NS)
	}
	return f
}

// UnderstandsInfo implements jingle.InfoUnderstander.
func (h *Handler) UnderstandsInfo(name xml.Name) bool { return IsInfo(name) }

func (h *Handler) track(c *Call) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	if h.calls == nil {
		h.calls = map[*Call]bool{}
	}
	h.calls[c] = true
	return true
}

func (h *Handler) forget(c *Call) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.calls, c)
}

// Calls returns the live calls.
func (h *Handler) Calls() []*Call {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*Call, 0, len(h.calls))
	for c := range h.calls {
		out = append(out, c)
	}
	return out
}

// Close hangs up every call and waits (bounded by ctx) for the goroutines
// the handler owns. Close the jingle.Manager after it.
func (h *Handler) Close(ctx context.Context) error {
	h.mu.Lock()
	h.closed = true
	calls := make([]*Call, 0, len(h.calls))
	for c := range h.calls {
		calls = append(calls, c)
	}
	h.mu.Unlock()
	for _, c := range calls {
		_ = c.Terminate(ctx, jingle.Reason{Condition: jingle.ReasonGone})
	}
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("rtp: close: %w", ctx.Err())
	}
}

// HandleSession implements jingle.Application: it checks the offer (an RTP
// description and a DTLS fingerprint in every content), rings, hands the
// call to OnCall and runs it until it ends.
func (h *Handler) HandleSession(ctx context.Context, s *jingle.Session) {
	ev, err := s.NextEvent(ctx)
	if err != nil || ev.Action != jingle.ActionSessionInitiate {
		return
	}
	term := func(r jingle.Reason) {
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_ = s.Terminate(tctx, r)
	}
	m, err := MediaFromJingle(ev.Jingle)
	if err != nil {
		term(jingle.Reason{Condition: jingle.ReasonFailedApplication, Text: err.Error()})
		return
	}
	if len(m.Contents) != len(ev.Jingle.Contents) {
		term(jingle.Reason{Condition: jingle.ReasonUnsupportedApplications, Text: "mixed applications"})
		return
	}
	if r := checkSecurity(m); r != nil {
		term(*r)
		return
	}
	c := newCall(h, false, s.Peer(), Options{})
	c.sess, c.sid, c.remote = s, s.SID(), m
	c.state = StateRinging
	for _, ct := range m.Contents {
		t, _ := s.Transport(ct.Name)
		if rt, ok := t.(*transport); ok {
			rt.bind(c)
			c.transports[ct.Name] = rt
			// Until Accept, the transport offers nothing of its own.
			rt.setLocal(ice.Transport{})
		}
	}
	if h.JMI != nil {
		c.jmiIn = h.JMI.Proceeded(s.Peer(), s.SID())
	}
	if !h.track(c) {
		term(jingle.Reason{Condition: jingle.ReasonGone})
		return
	}
	if h.OnCall == nil {
		c.goOwned(func(context.Context) { c.terminate(jingle.Reason{Condition: jingle.ReasonBusy}) })
	} else {
		if c.jmiIn == nil && !h.NoRinging {
			// Informational: written without waiting for the answer, so
			// that the end of a short call never waits on it.
			c.goOwned(func(ctx context.Context) {
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				defer cancel()
				_ = s.InfoNoWait(rctx, jingle.MustElement(Ringing{}))
			})
		}
		h.goOnCall(c)
	}
	c.run(ctx)
}

// goOnCall runs OnCall in a goroutine the handler owns (Close waits for
// it), not the call: OnCall may wait for the call's end (c.Done), and the
// call's end waits for the goroutines the call owns.
func (h *Handler) goOnCall(c *Call) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return // Close ends every tracked call, c too
	}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		h.OnCall(c.ctx, c)
	}()
}

// Place calls peer with the given media. To a full JID the session-initiate
// goes directly; to a bare JID the call is first proposed to all of the
// peer's devices with XEP-0353 (h.JMI must be set), and the session goes to
// the device that proceeds, with the proposal's id as sid. Place returns
// once the session-initiate was acknowledged; the call then rings until
// the peer accepts (EventAccepted) or ends it. ctx bounds the set-up only:
// when it ends before the peer proceeded, the proposal is retracted.
func (h *Handler) Place(ctx context.Context, peer jid.JID, opts Options) (*Call, error) {
	h.mu.Lock()
	m := h.manager
	h.mu.Unlock()
	if m == nil {
		return nil, errors.New("rtp: handler not registered on a jingle.Manager")
	}
	if peer.Resourcepart() == "" && h.JMI == nil {
		return nil, errors.New("rtp: calling a bare JID needs a JMI")
	}
	c := newCall(h, true, peer, opts)
	if !h.track(c) {
		return nil, jingle.ErrClosed
	}
	fail := func(err error) (*Call, error) {
		c.finish()
		return nil, err
	}
	pc, err := c.newPeerConnection()
	if err != nil {
		return fail(err)
	}
	media, gates, err := c.addMedia(pc, opts)
	if err != nil {
		return fail(err)
	}
	// XEP-0353: the proposal goes out first, so that the devices ring
	// while ICE gathers.
	var out *jmi.Outgoing
	if peer.Resourcepart() == "" {
		if out, err = c.propose(ctx, h.JMI, media); err != nil {
			return fail(err)
		}
	}
	offer, err := pc.CreateOffer(nil)
	if err == nil {
		err = pc.SetLocalDescription(offer)
	}
	if err != nil {
		if out != nil {
			_, _ = out.Retract(context.WithoutCancel(ctx), nil)
		}
		return fail(fmt.Errorf("rtp: %w", err))
	}
	local, err := c.localDescription(ctx, pc, true)
	if err == nil && out != nil {
		var full jid.JID
		full, err = out.Wait(ctx)
		if err == nil {
			peer = full
		} else if ctx.Err() != nil {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_, _ = out.Retract(rctx, nil)
			cancel()
		}
	}
	if err != nil {
		return fail(err)
	}
	c.mu.Lock()
	c.bindSources(pc, gates)
	c.local = local
	c.peer = peer
	if c.sid == "" {
		c.sid = jingle.NewSID()
	}
	sid := c.sid
	c.mu.Unlock()
	offers := make([]jingle.Offer, 0, len(local.Contents))
	for _, ct := range local.Contents {
		offers = append(offers, jingle.Offer{Name: ct.Name, Senders: ct.Senders,
			Description: ct.Description.Element(), Transports: []string{ice.NSICEUDP}})
	}
	s, err := m.InitiateWith(ctx, peer, jingle.InitiateOptions{SID: sid, Info: local.GroupElements()}, offers...)
	if err != nil {
		return fail(err)
	}
	c.mu.Lock()
	c.sess = s
	c.sid = s.SID()
	c.mu.Unlock()
	c.startTrickle()
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		c.run(c.ctx)
	}()
	return c, nil
}

// gated is a local media source and the gate its track is sent through.
type gated struct {
	src MediaSource
	g   *gatedTrack
}

// addMedia adds the transceivers of the media opts asks for to pc: sending
// (through a gate) what has a source, receiving what is only received. It
// returns the media in order.
func (c *Call) addMedia(pc *webrtc.PeerConnection, opts Options) ([]string, []gated, error) {
	var media []string
	var gates []gated
	for _, x := range []struct {
		kind    webrtc.RTPCodecType
		media   string
		src     MediaSource
		receive bool
	}{{webrtc.RTPCodecTypeAudio, MediaAudio, opts.Audio, opts.ReceiveAudio}, {webrtc.RTPCodecTypeVideo, MediaVideo, opts.Video, opts.ReceiveVideo}} {
		switch {
		case x.src != nil:
			g := newGate(x.src.Track())
			gates = append(gates, gated{x.src, g})
			tr, err := pc.AddTransceiverFromTrack(g, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv})
			if err != nil {
				return nil, nil, fmt.Errorf("rtp: %w", err)
			}
			c.drainRTCP(tr.Sender())
		case x.receive:
			if _, err := pc.AddTransceiverFromKind(x.kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
				return nil, nil, fmt.Errorf("rtp: %w", err)
			}
		default:
			continue
		}
		media = append(media, x.media)
	}
	if len(media) == 0 {
		return nil, nil, errors.New("rtp: place: no media")
	}
	return media, gates, nil
}

// propose proposes the call to all of the peer's devices (XEP-0353) and
// reports their ringing as EventRinging; the proposal's id becomes the
// session id.
func (c *Call) propose(ctx context.Context, j *jmi.Manager, media []string) (*jmi.Outgoing, error) {
	descs := make([]jingle.Element, 0, len(media))
	for _, md := range media {
		descs = append(descs, Description{Media: md}.Element())
	}
	out, err := j.Propose(ctx, c.peer, "", descs...)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.jmiOut = out
	c.sid = out.ID()
	c.mu.Unlock()
	c.goOwned(func(ctx context.Context) {
		select {
		case <-out.Ringing():
			c.setState(StateRinging)
			c.pushEvent(Event{Kind: EventRinging})
		case <-out.Done():
		case <-ctx.Done():
		}
	})
	return out, nil
}

// bindSources records which source and gate each sending transceiver of
// pc carries, by mid; c.mu is held.
func (c *Call) bindSources(pc *webrtc.PeerConnection, gates []gated) {
	for _, t := range pc.GetTransceivers() {
		if t.Sender() == nil || t.Sender().Track() == nil {
			continue
		}
		for _, x := range gates {
			if t.Sender().Track() == x.g {
				c.sources[t.Mid()] = x.src
				c.gates[t.Mid()] = x.g
			}
		}
	}
}
