package rtp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v3"
	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jmi"
	"github.com/jinglekit/jinglekit/transports/ice"
)

// State is the state of a call.
type State int

// Call states.
const (
	// StateCalling: an outgoing call was proposed or initiated and not yet
	// answered.
	StateCalling State = iota + 1
	// StateRinging: the peer's device rings (outgoing), or this side has
	// an incoming call it has not answered.
	StateRinging
	// StateConnecting: the call was accepted; ICE and DTLS are under way.
	StateConnecting
	// StateActive: the media path is up.
	StateActive
	// StateEnded: the call is over; Reason says why.
	StateEnded
)

func (s State) String() string {
	switch s {
	case StateCalling:
		return "calling"
	case StateRinging:
		return "ringing"
	case StateConnecting:
		return "connecting"
	case StateActive:
		return "active"
	case StateEnded:
		return "ended"
	}
	return "unknown"
}

// EventKind says what an Event reports.
type EventKind int

// Event kinds.
const (
	// EventRinging: the callee's device rings (JMI <ringing/> or the
	// session-info <ringing/>).
	EventRinging EventKind = iota + 1
	// EventAccepted: the peer accepted the call (session-accept).
	EventAccepted
	// EventConnected: ICE and DTLS-SRTP are up; media flows.
	EventConnected
	// EventHold, EventUnhold, EventActive, EventMute, EventUnmute: the
	// peer's session-info. Mute and Unmute name the Content (empty: all)
	// and its Creator.
	EventHold
	EventUnhold
	EventActive
	EventMute
	EventUnmute
	// EventContentAdded: the peer added a content and this side accepted
	// it.
	EventContentAdded
	// EventContentAccepted and EventContentRejected answer this side's
	// AddContent.
	EventContentAccepted
	EventContentRejected
	// EventContentRemoved: the peer removed a content.
	EventContentRemoved
	// EventContentModified: the peer changed a content's senders.
	EventContentModified
	// EventEnded: the call is over; Reason says why.
	EventEnded
)

var eventNames = map[EventKind]string{
	EventRinging: "ringing", EventAccepted: "accepted", EventConnected: "connected",
	EventHold: "hold", EventUnhold: "unhold", EventActive: "active", EventMute: "mute", EventUnmute: "unmute",
	EventContentAdded: "content-added", EventContentAccepted: "content-accepted",
	EventContentRejected: "content-rejected", EventContentRemoved: "content-removed",
	EventContentModified: "content-modified", EventEnded: "ended",
}

func (k EventKind) String() string {
	if n, ok := eventNames[k]; ok {
		return n
	}
	return "unknown"
}

// Event is something that happened to a call.
type Event struct {
	Kind    EventKind
	Content string
	Creator jingle.Creator
	Senders jingle.Senders
	Reason  *jingle.Reason
}

// MediaSource feeds one local track: a file player, an echo, a microphone.
type MediaSource interface {
	// Track is the local track to send; its kind decides the content.
	Track() webrtc.TrackLocal
	// Run feeds the track until the media ends or ctx is done. The call
	// runs it once media flows, in a goroutine it owns, and cancels ctx
	// when the call ends.
	Run(ctx context.Context) error
}

// Options are the media of a call: what this side sends and what it does
// with what it receives.
type Options struct {
	// Audio and Video are sent on the audio and video contents; nil sends
	// nothing.
	Audio, Video MediaSource
	// ReceiveAudio and ReceiveVideo offer the medium even without a
	// source (Place), to receive only.
	ReceiveAudio, ReceiveVideo bool
	// OnTrack is called, in a goroutine of pion's, for each remote track
	// with the name of its content. Read the track until it returns an
	// error, which it does when the call ends.
	OnTrack func(c *Call, content string, track *webrtc.TrackRemote)
	// OnContentAdd decides on a content the peer adds mid-call (media is
	// "audio" or "video"): accept with an optional source to send on it.
	// Nil accepts without sending.
	OnContentAdd func(c *Call, content, media string) (src MediaSource, accept bool)
}

// ErrCallEnded is returned by the methods of a call that has ended.
var ErrCallEnded = errors.New("rtp: call ended")

// Call is one Jingle RTP session and the pion PeerConnection that carries
// its media. Its methods are safe for concurrent use.
type Call struct {
	h         *Handler
	log       *slog.Logger
	initiator bool
	peer      jid.JID
	sid       string
	opts      Options

	// negMu serializes offer/answer exchanges with the PeerConnection.
	negMu sync.Mutex

	mu         sync.Mutex
	sess       *jingle.Session
	api        *webrtc.API
	pc         *webrtc.PeerConnection
	state      State
	reason     *jingle.Reason
	local      Media // this side's last description of each content
	remote     Media // the peer's
	transports map[string]*transport
	sources    map[string]MediaSource // by content
	gates      map[string]*gatedTrack // by content: what the senders send
	removed    map[string]bool
	held       bool
	muted      map[string]bool
	events     jingle.Queue[Event]
	changed    chan struct{}
	done       chan struct{}
	ended      bool
	pendingAdd map[string]chan error
	initial    map[string]bool // local candidates sent in the offer/answer
	trickling  bool
	trickleQ   []ice.Candidate
	connected  bool
	jmiIn      *jmi.Incoming
	jmiOut     *jmi.Outgoing

	// iceStarted is closed once the ICE agent checks: before that, the
	// peer's checks go unanswered and its next try is 200ms later.
	iceStarted chan struct{}

	ctx    context.Context // cancelled when the call ends
	cancel context.CancelFunc
	wg     sync.WaitGroup
	wake   chan struct{}
}

func newCall(h *Handler, initiator bool, peer jid.JID, opts Options) *Call {
	ctx, cancel := context.WithCancel(context.Background())
	c := &Call{
		h: h, log: h.Config.logger(), initiator: initiator, peer: peer, opts: opts,
		state: StateCalling, transports: map[string]*transport{}, sources: map[string]MediaSource{}, gates: map[string]*gatedTrack{},
		removed: map[string]bool{}, muted: map[string]bool{}, changed: make(chan struct{}),
		done: make(chan struct{}), pendingAdd: map[string]chan error{}, initial: map[string]bool{},
		ctx: ctx, cancel: cancel, wake: make(chan struct{}, 1),
	}
	c.events.Max = maxEvents
	return c
}

// Peer returns the other party's full JID (for an outgoing call to a bare
// JID, known once a device answered).
func (c *Call) Peer() jid.JID {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peer
}

// SID returns the Jingle session id (empty before session-initiate).
func (c *Call) SID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sid
}

// IsInitiator reports whether this side placed the call.
func (c *Call) IsInitiator() bool { return c.initiator }

// Session returns the Jingle session (nil before session-initiate).
func (c *Call) Session() *jingle.Session {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess
}

// PeerConnection returns the call's PeerConnection (nil for an incoming
// call before Accept).
func (c *Call) PeerConnection() *webrtc.PeerConnection {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pc
}

// State returns the call's state.
func (c *Call) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Reason returns why the call ended (nil while it has not).
func (c *Call) Reason() *jingle.Reason {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reason
}

// Done is closed when the call has ended and its resources are released.
func (c *Call) Done() <-chan struct{} { return c.done }

// Media returns the media of the offer of an incoming call, or this side's
// description of an outgoing one.
func (c *Call) Media() Media {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.initiator {
		return c.local
	}
	return c.remote
}

// Contents returns the names of the call's live contents and their media.
func (c *Call) Contents() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]string{}
	for _, ct := range c.remote.Contents {
		if !c.removed[ct.Name] {
			out[ct.Name] = ct.Description.Media
		}
	}
	return out
}

// JMIIncoming returns the XEP-0353 proposal an incoming call answers, if
// any: the user already accepted it on this device.
func (c *Call) JMIIncoming() *jmi.Incoming {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.jmiIn
}

// NextEvent returns the call's next event. After EventEnded it returns
// ErrCallEnded.
func (c *Call) NextEvent(ctx context.Context) (Event, error) {
	ev, err := c.events.Next(ctx)
	if errors.Is(err, jingle.ErrEnded) {
		return Event{}, ErrCallEnded
	}
	return ev, err
}

// maxEvents bounds the events waiting for NextEvent; older ones are
// dropped.
const maxEvents = 256

// push queues an event; c.mu is held.
func (c *Call) push(ev Event) {
	c.events.Push(ev)
	c.broadcastLocked()
}

func (c *Call) broadcastLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *Call) pushEvent(ev Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ended {
		c.push(ev)
	}
}

func (c *Call) setState(s State) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != StateEnded && (s > c.state || s == StateRinging && c.state == StateCalling) {
		c.state = s
		c.broadcastLocked()
	}
}

// goOwned runs f in a goroutine the call owns; it is waited for when the
// call ends.
func (c *Call) goOwned(f func(ctx context.Context)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f(c.ctx)
	}()
}

// newPeerConnection creates the call's PeerConnection and hooks its
// callbacks.
func (c *Call) newPeerConnection() (*webrtc.PeerConnection, error) {
	api, err := c.h.Config.newAPI()
	if err != nil {
		return nil, err
	}
	c.api = api
	pc, err := api.NewPeerConnection(webrtc.Configuration{ICEServers: c.h.Config.Servers,
		BundlePolicy: webrtc.BundlePolicyMaxBundle, RTCPMuxPolicy: webrtc.RTCPMuxPolicyRequire})
	if err != nil {
		return nil, fmt.Errorf("rtp: %w", err)
	}
	pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
		if cand == nil {
			return
		}
		ic, err := CandidateFromSDP(cand.ToJSON().Candidate)
		if err != nil {
			return
		}
		c.localCandidate(ic)
	})
	iceStarted := make(chan struct{})
	var iceOnce sync.Once
	c.iceStarted = iceStarted
	pc.OnICEConnectionStateChange(func(st webrtc.ICEConnectionState) {
		if st != webrtc.ICEConnectionStateNew {
			iceOnce.Do(func() { close(iceStarted) })
		}
	})
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		c.log.Debug("rtp: connection state", "sid", c.SID(), "state", st)
		switch st {
		case webrtc.PeerConnectionStateConnected:
			c.onConnected()
		case webrtc.PeerConnectionStateFailed:
			c.goOwned(func(ctx context.Context) {
				c.terminate(jingle.Reason{Condition: jingle.ReasonConnectivityError, Text: "ICE or DTLS failed"})
			})
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, rx *webrtc.RTPReceiver) {
		name := ""
		for _, t := range pc.GetTransceivers() {
			if t.Receiver() == rx {
				name = t.Mid()
			}
		}
		c.log.Debug("rtp: remote track", "sid", c.SID(), "content", name, "codec", tr.Codec().MimeType)
		if c.opts.OnTrack != nil {
			c.opts.OnTrack(c, name, tr)
			return
		}
		// Nobody wants it: drain it so that pion's buffers do not fill.
		buf := make([]byte, 1500)
		for {
			if _, _, err := tr.Read(buf); err != nil {
				return
			}
		}
	})
	c.mu.Lock()
	c.pc = pc
	c.mu.Unlock()
	return pc, nil
}

// onConnected starts the sources once media flows.
func (c *Call) onConnected() {
	c.mu.Lock()
	if c.connected || c.ended {
		c.mu.Unlock()
		return
	}
	c.connected = true
	if c.state < StateActive {
		c.state = StateActive
	}
	c.push(Event{Kind: EventConnected})
	srcs := make(map[string]MediaSource, len(c.sources))
	for k, v := range c.sources {
		srcs[k] = v
	}
	c.mu.Unlock()
	for name, s := range srcs {
		c.runSource(name, s)
	}
}

func (c *Call) runSource(name string, s MediaSource) {
	c.goOwned(func(ctx context.Context) {
		if err := s.Run(ctx); err != nil && ctx.Err() == nil {
			c.log.Info("rtp: media source stopped", "sid", c.SID(), "content", name, "err", err)
		}
	})
}

// localCandidate takes a candidate pion gathered: it is sent in the offer
// or answer if that is not yet built, else trickled.
func (c *Call) localCandidate(ic ice.Candidate) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended || c.initial[candKey(ic)] || ic.ComponentNumber() != 1 {
		return // with rtcp-mux only component 1 exists
	}
	c.trickleQ = append(c.trickleQ, ic)
	if c.trickling {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

func candKey(ic ice.Candidate) string {
	return ic.Component + " " + ic.IP + " " + ic.Port + " " + ic.Type
}

// startTrickle starts sending the local candidates gathered after the
// offer or answer, with transport-info on the first content (the BUNDLE
// transport).
func (c *Call) startTrickle() {
	c.mu.Lock()
	c.trickling = true
	c.trickleQ = slices.DeleteFunc(c.trickleQ, func(ic ice.Candidate) bool { return c.initial[candKey(ic)] })
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	c.goOwned(func(ctx context.Context) {
		for {
			select {
			case <-ctx.Done():
				return
			case <-c.wake:
			}
			c.mu.Lock()
			q := c.trickleQ
			c.trickleQ = nil
			var t *transport
			for _, ct := range c.local.Contents {
				if tt := c.transports[ct.Name]; tt != nil && !c.removed[ct.Name] {
					t = tt
					break
				}
			}
			c.mu.Unlock()
			if t == nil || len(q) == 0 {
				continue
			}
			t.mu.Lock()
			el := ice.Transport{Ufrag: t.local.Ufrag, Pwd: t.local.Pwd, Candidates: q}
			t.mu.Unlock()
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if err := t.p.Signal.TransportInfo(sctx, jingle.MustElement(el)); err != nil && ctx.Err() == nil {
				c.log.Debug("rtp: trickling candidates", "sid", c.SID(), "err", err)
			}
			cancel()
		}
	})
}

// addRemoteCandidate hands one of the peer's candidates to pion.
func (c *Call) addRemoteCandidate(content string, ic ice.Candidate) {
	c.mu.Lock()
	pc := c.pc
	c.mu.Unlock()
	if pc == nil {
		return
	}
	s, err := CandidateToSDP(ic)
	if err != nil {
		return
	}
	mid := content
	if err := pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: "candidate:" + s, SDPMid: &mid}); err != nil {
		c.log.Debug("rtp: remote candidate refused", "sid", c.SID(), "err", err)
	}
}

// localTransport returns this side's transport element for a content.
func (c *Call) localTransport(name string) (ice.Transport, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ct := range c.local.Contents {
		if ct.Name == name && ct.Transport != nil {
			return *ct.Transport, true
		}
	}
	return ice.Transport{}, false
}

func (c *Call) addTransport(name string, t *transport) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.transports[name] = t
}

// localDescription waits (at most GatherWait) for candidates, then maps the
// PeerConnection's local description to Jingle and records which
// candidates it carries.
func (c *Call) localDescription(ctx context.Context, pc *webrtc.PeerConnection, offer bool) (Media, error) {
	gathered := webrtc.GatheringCompletePromise(pc)
	t := time.NewTimer(c.h.Config.gatherWait())
	defer t.Stop()
	select {
	case <-gathered:
	case <-t.C:
	case <-ctx.Done():
		return Media{}, ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ld := pc.LocalDescription()
	if ld == nil {
		return Media{}, errors.New("rtp: no local description")
	}
	var sd sdp.SessionDescription
	if err := sd.Unmarshal([]byte(ld.SDP)); err != nil {
		return Media{}, fmt.Errorf("rtp: pion's SDP: %w", err)
	}
	m, err := FromSDP(&sd, SDPOptions{Author: c.role(), Offer: offer})
	if err != nil {
		return Media{}, err
	}
	for i, ct := range m.Contents {
		m.Contents[i].Creator = c.creatorFor(ct.Name)
		// pion's SDP repeats each candidate as component 2 (RTCP), but the
		// call requires rtcp-mux (RTCPMuxPolicyRequire) and offers
		// <rtcp-mux/>: RTCP never has a component of its own.
		ct.Transport.Candidates = slices.DeleteFunc(ct.Transport.Candidates, func(ic ice.Candidate) bool {
			return ic.ComponentNumber() != 1
		})
		m.Contents[i].Transport.Candidates = ct.Transport.Candidates
		for _, ic := range ct.Transport.Candidates {
			c.initial[candKey(ic)] = true
		}
	}
	return m, nil
}

func (c *Call) role() jingle.Creator {
	if c.initiator {
		return jingle.CreatorInitiator
	}
	return jingle.CreatorResponder
}

func (c *Call) peerRole() jingle.Creator {
	if c.initiator {
		return jingle.CreatorResponder
	}
	return jingle.CreatorInitiator
}

// setRemote gives pion the peer's description.
func (c *Call) setRemote(pc *webrtc.PeerConnection, m Media, typ webrtc.SDPType) error {
	sd, err := ToSDP(m, SDPOptions{Author: c.peerRole(), Offer: typ == webrtc.SDPTypeOffer})
	if err != nil {
		return err
	}
	b, err := sd.Marshal()
	if err != nil {
		return fmt.Errorf("rtp: %w", err)
	}
	c.log.Debug("rtp: remote description", "sid", c.SID(), "type", typ, "sdp", string(b))
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: typ, SDP: string(b)}); err != nil {
		return fmt.Errorf("rtp: remote description: %w", err)
	}
	return nil
}

// checkSecurity refuses contents whose transport lacks a DTLS fingerprint:
// DTLS-SRTP is mandatory.
func checkSecurity(m Media) *jingle.Reason {
	if len(m.Contents) == 0 {
		return &jingle.Reason{Condition: jingle.ReasonFailedApplication, Text: "no RTP content"}
	}
	for _, ct := range m.Contents {
		if ct.Transport == nil || len(ct.Transport.Fingerprints) == 0 {
			r := SecurityError(false, "DTLS-SRTP required: content "+ct.Name+" has no fingerprint")
			return &r
		}
		for _, fp := range ct.Transport.Fingerprints {
			if fp.Hash == "" || fp.Normalized() == "" || (fp.Setup != "" && fp.Setup != ice.SetupActPass &&
				fp.Setup != ice.SetupActive && fp.Setup != ice.SetupPassive) {
				r := SecurityError(true, "unusable DTLS fingerprint in content "+ct.Name)
				return &r
			}
		}
	}
	return nil
}

// afterRemote marks the transports ready: the candidates that waited go to
// pion.
func (c *Call) afterRemote() {
	c.mu.Lock()
	ts := make([]*transport, 0, len(c.transports))
	for _, t := range c.transports {
		ts = append(ts, t)
	}
	c.mu.Unlock()
	for _, t := range ts {
		t.bind(c)
		t.setReady()
	}
}

// addSource attaches a source to the PeerConnection (after the remote
// offer: on the transceiver of the content) and records it.
func (c *Call) addSource(pc *webrtc.PeerConnection, name string, src MediaSource) error {
	if src == nil {
		return nil
	}
	var tr *webrtc.RTPTransceiver
	for _, t := range pc.GetTransceivers() {
		if t.Mid() == name {
			tr = t
		}
	}
	if tr == nil {
		return fmt.Errorf("rtp: no transceiver for content %q", name)
	}
	g := newGate(src.Track())
	if tr.Sender() == nil {
		sender, err := c.api.NewRTPSender(g, pc.SCTP().Transport())
		if err != nil {
			return fmt.Errorf("rtp: %w", err)
		}
		if err := tr.SetSender(sender, g); err != nil {
			_ = sender.Stop()
			return fmt.Errorf("rtp: %w", err)
		}
	} else if err := tr.Sender().ReplaceTrack(g); err != nil {
		return fmt.Errorf("rtp: %w", err)
	}
	c.drainRTCP(tr.Sender())
	c.mu.Lock()
	c.sources[name] = src
	c.gates[name] = g
	c.mu.Unlock()
	return nil
}

// drainRTCP reads the RTCP that arrives for a sender, which pion's
// interceptors (NACK, reports) need; it ends when the call closes the
// PeerConnection.
func (c *Call) drainRTCP(s *webrtc.RTPSender) {
	if s == nil {
		return
	}
	c.goOwned(func(context.Context) {
		buf := make([]byte, 1500)
		for {
			if _, _, err := s.Read(buf); err != nil {
				return
			}
		}
	})
}

// sourceFor returns the source of the given medium.
func (o Options) sourceFor(media string) MediaSource {
	switch media {
	case MediaAudio:
		return o.Audio
	case MediaVideo:
		return o.Video
	}
	return nil
}

// Accept answers an incoming call: the PeerConnection takes the offer,
// opts.Audio and opts.Video are sent on the offered audio and video
// contents, and session-accept carries the answer.
func (c *Call) Accept(ctx context.Context, opts Options) error {
	if c.initiator {
		return errors.New("rtp: accept: this side placed the call")
	}
	c.negMu.Lock()
	defer c.negMu.Unlock()
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return ErrCallEnded
	}
	if c.pc != nil {
		c.mu.Unlock()
		return errors.New("rtp: accept: already accepted")
	}
	c.opts = opts
	offer := c.remote
	s := c.sess
	c.mu.Unlock()
	fail := func(err error) error {
		c.terminate(jingle.Reason{Condition: jingle.ReasonFailedApplication, Text: err.Error()})
		return err
	}
	pc, err := c.newPeerConnection()
	if err != nil {
		return fail(err)
	}
	if err := c.setRemote(pc, offer, webrtc.SDPTypeOffer); err != nil {
		return fail(err)
	}
	for _, ct := range offer.Contents {
		if err := c.addSource(pc, ct.Name, opts.sourceFor(ct.Description.Media)); err != nil {
			return fail(err)
		}
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return fail(fmt.Errorf("rtp: %w", err))
	}
	if err := pc.SetLocalDescription(answer); err != nil {
		return fail(fmt.Errorf("rtp: %w", err))
	}
	local, err := c.localDescription(ctx, pc, false)
	if err != nil {
		return fail(err)
	}
	descs := map[string]jingle.Element{}
	c.mu.Lock()
	c.local = local
	for _, ct := range local.Contents {
		descs[ct.Name] = ct.Description.Element()
		if t := c.transports[ct.Name]; t != nil && ct.Transport != nil {
			t.setLocal(*ct.Transport)
		}
	}
	c.state = StateConnecting
	c.broadcastLocked()
	c.mu.Unlock()
	c.afterRemote()
	select {
	case <-c.iceStarted:
	case <-time.After(200 * time.Millisecond):
	case <-ctx.Done():
	}
	if err := s.AcceptWith(ctx, descs, local.GroupElements()); err != nil {
		c.terminate(jingle.Reason{Condition: jingle.ReasonGeneralError, Text: err.Error()})
		return err
	}
	c.startTrickle()
	c.watchConnect()
	return nil
}

// watchConnect ends the call with failed-transport if the media path is
// not up within ConnectTimeout.
func (c *Call) watchConnect() {
	c.goOwned(func(ctx context.Context) {
		t := time.NewTimer(c.h.Config.connectTimeout())
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
			c.mu.Lock()
			up := c.connected
			c.mu.Unlock()
			if !up {
				c.terminate(jingle.Reason{Condition: jingle.ReasonFailedTransport, Text: "no media path"})
			}
		}
	})
}

// Reject declines an incoming call (reason decline unless given).
func (c *Call) Reject(ctx context.Context, r *jingle.Reason) error {
	if r == nil {
		r = &jingle.Reason{Condition: jingle.ReasonDecline}
	}
	return c.terminateCtx(ctx, *r)
}

// HangUp ends the call (reason success).
func (c *Call) HangUp(ctx context.Context) error {
	return c.terminateCtx(ctx, jingle.Reason{Condition: jingle.ReasonSuccess})
}

// Terminate ends the call with a reason.
func (c *Call) Terminate(ctx context.Context, r jingle.Reason) error { return c.terminateCtx(ctx, r) }

func (c *Call) terminate(r jingle.Reason) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = c.terminateCtx(ctx, r)
}

func (c *Call) terminateCtx(ctx context.Context, r jingle.Reason) error {
	c.mu.Lock()
	s := c.sess
	if c.reason == nil {
		c.reason = &r
	}
	c.mu.Unlock()
	if s == nil {
		c.finish()
		return nil
	}
	return s.Terminate(ctx, r)
}

// sendInfo sends session-info payloads.
func (c *Call) sendInfo(ctx context.Context, payloads ...any) error {
	s := c.Session()
	if s == nil {
		return errors.New("rtp: no session yet")
	}
	els := make([]jingle.Element, 0, len(payloads))
	for _, p := range payloads {
		els = append(els, jingle.MustElement(p))
	}
	return s.Info(ctx, els...)
}

// Hold puts the call on hold: this side stops sending and tells the peer
// (<hold/>).
func (c *Call) Hold(ctx context.Context) error {
	c.mu.Lock()
	c.held = true
	c.mu.Unlock()
	c.applySending()
	return c.sendInfo(ctx, Hold{})
}

// Unhold ends a hold (<unhold/>) and resumes sending.
func (c *Call) Unhold(ctx context.Context) error {
	c.mu.Lock()
	c.held = false
	c.mu.Unlock()
	c.applySending()
	return c.sendInfo(ctx, Unhold{})
}

// Active tells the peer this side is actively participating again
// (<active/>), after a hold or inactivity.
func (c *Call) Active(ctx context.Context) error { return c.sendInfo(ctx, Active{}) }

// Mute stops sending on a content (all contents for "") and tells the peer
// (<mute/>).
func (c *Call) Mute(ctx context.Context, content string) error {
	c.mu.Lock()
	c.muted[content] = true
	c.mu.Unlock()
	c.applySending()
	return c.sendInfo(ctx, Mute{Creator: c.creatorOf(content), Name: content})
}

// Unmute resumes sending on a content (<unmute/>).
func (c *Call) Unmute(ctx context.Context, content string) error {
	c.mu.Lock()
	delete(c.muted, content)
	c.mu.Unlock()
	c.applySending()
	return c.sendInfo(ctx, Unmute{Creator: c.creatorOf(content), Name: content})
}

func (c *Call) creatorOf(content string) jingle.Creator {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ct := range c.local.Contents {
		if ct.Name == content {
			return ct.Creator
		}
	}
	return c.role()
}

// sending reports whether this side may send on a content given the
// content's senders; c.mu is held.
func (c *Call) sendingLocked(name string) bool {
	if c.held || c.muted[name] || c.muted[""] || c.removed[name] {
		return false
	}
	for _, ct := range c.remote.Contents {
		if ct.Name == name {
			switch ct.Senders {
			case "", jingle.SendersBoth:
				return true
			case jingle.SendersNone:
				return false
			}
			return jingle.Creator(ct.Senders) == c.role()
		}
	}
	return true
}

// applySending opens or shuts each source's gate according to hold, mute
// and senders.
func (c *Call) applySending() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, g := range c.gates {
		g.set(c.sendingLocked(name))
	}
}

// SetSenders changes who sends on a content (content-modify).
func (c *Call) SetSenders(ctx context.Context, content string, senders jingle.Senders) error {
	s := c.Session()
	if s == nil {
		return errors.New("rtp: no session yet")
	}
	if err := s.ModifyContent(ctx, content, senders); err != nil {
		return err
	}
	c.mu.Lock()
	for i := range c.remote.Contents {
		if c.remote.Contents[i].Name == content {
			c.remote.Contents[i].Senders = senders
		}
	}
	c.mu.Unlock()
	c.applySending()
	return nil
}

// AddContent adds a medium mid-call (content-add), sending src on it (nil
// to receive only), and waits for the peer's content-accept. It returns
// the new content's name.
func (c *Call) AddContent(ctx context.Context, media string, src MediaSource) (string, error) {
	kind := webrtc.RTPCodecTypeAudio
	if media == MediaVideo {
		kind = webrtc.RTPCodecTypeVideo
	} else if media != MediaAudio {
		return "", fmt.Errorf("rtp: content-add: unknown media %q", media)
	}
	c.negMu.Lock()
	defer c.negMu.Unlock()
	c.mu.Lock()
	pc, s, ended := c.pc, c.sess, c.ended
	c.mu.Unlock()
	if ended {
		return "", ErrCallEnded
	}
	if pc == nil || s == nil {
		return "", errors.New("rtp: content-add before the call was accepted")
	}
	var err error
	var gate *gatedTrack
	if src != nil {
		var tr *webrtc.RTPTransceiver
		gate = newGate(src.Track())
		tr, err = pc.AddTransceiverFromTrack(gate, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv})
		if err == nil {
			c.drainRTCP(tr.Sender())
		}
	} else {
		_, err = pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
	}
	if err != nil {
		return "", fmt.Errorf("rtp: %w", err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return "", fmt.Errorf("rtp: %w", err)
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		return "", fmt.Errorf("rtp: %w", err)
	}
	local, err := c.localDescription(ctx, pc, true)
	if err != nil {
		return "", err
	}
	var added *Content
	c.mu.Lock()
	known := map[string]bool{}
	for _, ct := range c.remote.Contents {
		known[ct.Name] = true
	}
	for i := range local.Contents {
		local.Contents[i].Creator = c.creatorFor(local.Contents[i].Name)
		if !known[local.Contents[i].Name] {
			added = &local.Contents[i]
		}
	}
	if added == nil {
		c.mu.Unlock()
		return "", errors.New("rtp: content-add: pion added no media section")
	}
	added.Creator = c.role()
	c.local = local
	name := added.Name
	if src != nil {
		c.sources[name] = src
		c.gates[name] = gate
	}
	result := make(chan error, 1)
	c.pendingAdd[name] = result
	c.mu.Unlock()
	err = s.AddContent(ctx, jingle.Offer{Name: name, Senders: added.Senders,
		Description: added.Description.Element(), Transports: []string{ice.NSICEUDP}})
	if err != nil {
		c.mu.Lock()
		delete(c.pendingAdd, name)
		c.mu.Unlock()
		return "", err
	}
	select {
	case err := <-result:
		if err != nil {
			return "", err
		}
	case <-ctx.Done():
		return "", ctx.Err()
	case <-c.ctx.Done():
		return "", ErrCallEnded
	}
	c.mu.Lock()
	connected := c.connected
	c.mu.Unlock()
	if connected && src != nil {
		c.runSource(name, src)
	}
	return name, nil
}

// creatorFor returns the creator of a known content, or this side's role;
// c.mu is held.
func (c *Call) creatorFor(name string) jingle.Creator {
	for _, ct := range c.remote.Contents {
		if ct.Name == name {
			return ct.Creator
		}
	}
	return c.role()
}

// RemoveContent removes a content (content-remove); removing the last one
// ends the call.
func (c *Call) RemoveContent(ctx context.Context, content string) error {
	s := c.Session()
	if s == nil {
		return errors.New("rtp: no session yet")
	}
	if err := s.RemoveContent(ctx, content, nil); err != nil {
		return err
	}
	c.contentRemoved(content)
	return nil
}

func (c *Call) contentRemoved(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removed[name] = true
	if g := c.gates[name]; g != nil {
		g.set(false)
	}
}

// run reads the session's events until it ends, then releases the call.
func (c *Call) run(ctx context.Context) {
	defer c.finish()
	s := c.Session()
	for {
		ev, err := s.NextEvent(ctx)
		if err != nil {
			return
		}
		c.handle(ctx, ev)
	}
}

// handle applies one action of the peer.
func (c *Call) handle(ctx context.Context, ev jingle.Event) {
	switch ev.Action {
	case jingle.ActionSessionAccept:
		c.accepted(ctx, ev.Jingle)
	case jingle.ActionSessionInfo:
		for _, p := range ev.Jingle.Info {
			if p.XMLName.Space != NSInfo {
				continue
			}
			var m struct {
				Creator jingle.Creator `xml:"creator,attr"`
				Name    string         `xml:"name,attr"`
			}
			_ = p.Decode(&m)
			var k EventKind
			switch p.XMLName.Local {
			case "ringing":
				k = EventRinging
				c.setState(StateRinging)
			case "hold":
				k = EventHold
			case "unhold":
				k = EventUnhold
			case "active":
				k = EventActive
			case "mute":
				k = EventMute
			case "unmute":
				k = EventUnmute
			default:
				continue
			}
			c.pushEvent(Event{Kind: k, Content: m.Name, Creator: m.Creator})
		}
	case jingle.ActionContentAdd:
		for _, jc := range ev.Jingle.Contents {
			c.peerAdded(ctx, jc)
		}
	case jingle.ActionContentAccept, jingle.ActionContentReject:
		for _, jc := range ev.Jingle.Contents {
			c.addAnswered(ev.Action == jingle.ActionContentAccept, jc)
		}
	case jingle.ActionContentRemove:
		for _, jc := range ev.Jingle.Contents {
			c.contentRemoved(jc.Name)
			c.pushEvent(Event{Kind: EventContentRemoved, Content: jc.Name, Reason: ev.Reason})
		}
	case jingle.ActionContentModify:
		for _, jc := range ev.Jingle.Contents {
			c.mu.Lock()
			for i := range c.remote.Contents {
				if c.remote.Contents[i].Name == jc.Name {
					c.remote.Contents[i].Senders = jc.Senders
				}
			}
			c.mu.Unlock()
			c.applySending()
			c.pushEvent(Event{Kind: EventContentModified, Content: jc.Name, Senders: jc.Senders})
		}
	case jingle.ActionSessionTerminate:
		c.mu.Lock()
		if c.reason == nil {
			c.reason = ev.Reason
		}
		c.mu.Unlock()
	}
}

// accepted applies the peer's session-accept.
func (c *Call) accepted(ctx context.Context, j *jingle.Jingle) {
	m, err := MediaFromJingle(j)
	if err == nil {
		if r := checkSecurity(m); r != nil {
			c.terminate(*r)
			return
		}
	}
	c.negMu.Lock()
	defer c.negMu.Unlock()
	c.mu.Lock()
	pc := c.pc
	if err == nil {
		// The answer names the contents of the offer; keep their creators.
		for i := range m.Contents {
			m.Contents[i].Creator = jingle.CreatorInitiator
		}
		c.remote = m
	}
	c.mu.Unlock()
	if err == nil {
		err = c.setRemote(pc, m, webrtc.SDPTypeAnswer)
	}
	if err != nil {
		c.log.Info("rtp: session-accept refused", "sid", c.SID(), "err", err)
		c.terminate(jingle.Reason{Condition: jingle.ReasonFailedApplication, Text: err.Error()})
		return
	}
	c.afterRemote()
	c.mu.Lock()
	if c.state < StateConnecting {
		c.state = StateConnecting
	}
	c.push(Event{Kind: EventAccepted})
	c.mu.Unlock()
	c.watchConnect()
}

// peerAdded answers the peer's content-add: pion takes the new offer (all
// contents so far plus the new one) and answers it.
func (c *Call) peerAdded(ctx context.Context, jc jingle.Content) {
	reject := func(cond jingle.ReasonCondition, why string) {
		c.log.Info("rtp: content-add rejected", "sid", c.SID(), "content", jc.Name, "why", why)
		if s := c.Session(); s != nil {
			_ = s.RejectContent(ctx, jc.Name, &jingle.Reason{Condition: cond, Text: why})
		}
	}
	ct, err := ContentFromJingle(jc)
	if err != nil || jc.Description == nil || jc.Description.Namespace() != NS {
		reject(jingle.ReasonFailedApplication, fmt.Sprint("not an RTP content: ", err))
		return
	}
	if r := checkSecurity(Media{Contents: []Content{ct}}); r != nil {
		reject(jingle.ReasonSecurityError, r.Text)
		return
	}
	var src MediaSource
	accept := true
	if c.opts.OnContentAdd != nil {
		src, accept = c.opts.OnContentAdd(c, ct.Name, ct.Description.Media)
	}
	if !accept {
		reject(jingle.ReasonDecline, "declined")
		return
	}
	c.negMu.Lock()
	defer c.negMu.Unlock()
	c.mu.Lock()
	pc, s := c.pc, c.sess
	offer := Media{Groups: c.remote.Groups, Contents: append(slices.Clone(c.remote.Contents), ct)}
	c.mu.Unlock()
	if pc == nil || s == nil {
		reject(jingle.ReasonGeneralError, "call not accepted yet")
		return
	}
	offer.Groups = bundleWith(offer.Groups, ct.Name)
	fail := func(err error) {
		reject(jingle.ReasonFailedApplication, err.Error())
	}
	if err := c.setRemote(pc, offer, webrtc.SDPTypeOffer); err != nil {
		fail(err)
		return
	}
	if err := c.addSource(pc, ct.Name, src); err != nil {
		fail(err)
		return
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		fail(err)
		return
	}
	if err := pc.SetLocalDescription(answer); err != nil {
		fail(err)
		return
	}
	local, err := c.localDescription(ctx, pc, false)
	if err != nil {
		fail(err)
		return
	}
	var mine *Content
	for i := range local.Contents {
		if local.Contents[i].Name == ct.Name {
			mine = &local.Contents[i]
		}
	}
	if mine == nil {
		fail(errors.New("pion did not answer the new content"))
		return
	}
	c.mu.Lock()
	c.remote = offer
	c.local = local
	t := c.transports[ct.Name]
	c.mu.Unlock()
	tt, _ := s.Transport(ct.Name)
	if rt, ok := tt.(*transport); ok {
		t = rt
		c.addTransport(ct.Name, rt)
	}
	if t != nil && mine.Transport != nil {
		t.bind(c)
		t.setLocal(*mine.Transport)
	}
	desc := mine.Description.Element()
	if err := s.AcceptContent(ctx, ct.Name, &desc); err != nil {
		c.log.Info("rtp: content-accept", "sid", c.SID(), "content", ct.Name, "err", err)
		return
	}
	if t != nil {
		t.setReady()
	}
	c.mu.Lock()
	connected := c.connected
	c.mu.Unlock()
	if connected && src != nil {
		c.runSource(ct.Name, src)
	}
	c.pushEvent(Event{Kind: EventContentAdded, Content: ct.Name, Senders: ct.Senders})
}

// bundleWith adds name to the BUNDLE group, if there is one.
func bundleWith(gs []Group, name string) []Group {
	out := slices.Clone(gs)
	for i, g := range out {
		if strings.EqualFold(g.Semantics, SemanticsBundle) && !slices.Contains(g.Names(), name) {
			out[i].Contents = append(slices.Clone(g.Contents), GroupContent{Name: name})
		}
	}
	return out
}

// addAnswered applies the peer's content-accept or content-reject of this
// side's content-add.
func (c *Call) addAnswered(ok bool, jc jingle.Content) {
	c.mu.Lock()
	result := c.pendingAdd[jc.Name]
	delete(c.pendingAdd, jc.Name)
	pc := c.pc
	c.mu.Unlock()
	if result == nil {
		return
	}
	if !ok {
		c.contentRemoved(jc.Name)
		result <- fmt.Errorf("rtp: content %q rejected", jc.Name)
		c.pushEvent(Event{Kind: EventContentRejected, Content: jc.Name})
		return
	}
	ct, err := ContentFromJingle(jc)
	if err == nil && (ct.Transport == nil || len(ct.Transport.Fingerprints) == 0) {
		// A bundled content's answer may leave out the transport; use the
		// bundle's.
		c.mu.Lock()
		for _, r := range c.remote.Contents {
			if r.Transport != nil && len(r.Transport.Fingerprints) > 0 {
				t := *r.Transport
				ct.Transport = &t
				break
			}
		}
		c.mu.Unlock()
	}
	if err == nil {
		ct.Creator = c.role()
		c.mu.Lock()
		answer := Media{Groups: bundleWith(c.remote.Groups, ct.Name), Contents: append(slices.Clone(c.remote.Contents), ct)}
		c.mu.Unlock()
		if err = c.setRemote(pc, answer, webrtc.SDPTypeAnswer); err == nil {
			c.mu.Lock()
			c.remote = answer
			t := c.transports[jc.Name]
			c.mu.Unlock()
			if t != nil {
				t.setReady()
			}
		}
	}
	result <- err
	if err == nil {
		c.pushEvent(Event{Kind: EventContentAccepted, Content: jc.Name})
	}
}

// finish releases the call once: the PeerConnection is closed, the owned
// goroutines are stopped and waited for, and the JMI peer is told.
func (c *Call) finish() {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		<-c.done
		return
	}
	c.ended = true
	c.state = StateEnded
	if s := c.sess; s != nil && s.Reason() != nil && (c.reason == nil || !c.initiatedEnd(s)) {
		c.reason = s.Reason()
	}
	if c.reason == nil {
		c.reason = &jingle.Reason{Condition: jingle.ReasonSuccess}
	}
	pc := c.pc
	in, out := c.jmiIn, c.jmiOut
	reason := *c.reason
	c.events.Push(Event{Kind: EventEnded, Reason: c.reason})
	c.events.Close()
	c.broadcastLocked()
	c.mu.Unlock()
	c.cancel()
	if pc != nil {
		// Take the tracks off first: RemoveTrack stops a sender and makes
		// its transceiver receive-only in one step, whereas Close stops
		// senders while they still look sending, which a negotiation check
		// of pion's running at that moment cannot take (pion v3.3.6).
		for _, t := range pc.GetTransceivers() {
			if s := t.Sender(); s != nil {
				_ = pc.RemoveTrack(s)
			}
		}
		if err := pc.Close(); err != nil {
			c.log.Debug("rtp: closing PeerConnection", "err", err)
		}
	}
	c.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if in != nil && in.Proceeded() {
		_ = in.Finish(ctx, &reason)
	}
	if out != nil {
		select {
		case <-out.Done():
			if _, err := out.Wait(ctx); err == nil {
				_ = out.Finish(ctx, &reason)
			}
		default:
		}
	}
	c.h.forget(c)
	close(c.done)
}

// initiatedEnd reports whether the session's reason is the one this side
// terminated with; c.mu is held.
func (c *Call) initiatedEnd(s *jingle.Session) bool {
	r := s.Reason()
	return r != nil && c.reason != nil && r.Condition == c.reason.Condition
}
