package rtp

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/transports/ice"
)

// method is the ICE-UDP transport method (urn:xmpp:jingle:transports:ice-udp:1)
// of RTP contents. It does no ICE itself: a call's ICE, DTLS and SRTP run
// in its pion PeerConnection, and each transport the method makes is a
// thin adapter between the Jingle session and that PeerConnection — it
// offers the PeerConnection's credentials, fingerprint and candidates,
// trickles new local candidates with transport-info, and hands the peer's
// candidates to the PeerConnection.
//
// XEP-0343 data channels use the same namespace. The Handler makes this
// method for RTP contents only (jingle.TransportProvider): a jingle.Manager
// gives ICE-UDP contents of other applications to the method registered
// for the namespace, transports/ice's Method with DialectXEP0343.
type method struct {
	h *Handler
	// maxRemote bounds the candidates taken from the peer per transport.
	maxRemote int
}

// Namespace implements jingle.TransportMethod.
func (m *method) Namespace() string { return ice.NSICEUDP }

// Kind implements jingle.TransportMethod: RTP is datagrams.
func (m *method) Kind() jingle.TransportKind { return jingle.Datagram }

// Features implements jingle.FeatureAdvertiser: DTLS-SRTP (XEP-0320).
func (m *method) Features() []string { return []string{ice.NSDTLS} }

// ErrNotRTP is returned when this side offers an RTP ICE-UDP transport
// for a session that is not one of the Handler's calls.
var ErrNotRTP = errors.New("rtp: ICE-UDP transport outside an RTP call")

// NewTransport implements jingle.TransportMethod. The transport of a
// content the peer offered is bound to its call when the call is made
// (HandleSession); the transport of a content this side offers belongs to
// the call placing it, found by peer and session id.
func (m *method) NewTransport(_ context.Context, p jingle.TransportParams) (jingle.Transport, error) {
	t := &transport{p: p, max: m.maxRemote}
	if t.max <= 0 {
		t.max = 64
	}
	if p.Offer != nil {
		var offer ice.Transport
		if err := p.Offer.Decode(&offer); err != nil {
			return nil, fmt.Errorf("rtp: ICE-UDP offer: %w", err)
		}
		t.remote = &offer
		if err := t.takeCandidates(offer.Candidates, true); err != nil {
			return nil, err
		}
		return t, nil
	}
	c := m.h.placing(p.Peer, p.SID)
	if c == nil {
		return nil, ErrNotRTP
	}
	t.call = c
	local, ok := c.localTransport(p.Content.Name)
	if !ok {
		return nil, fmt.Errorf("rtp: no local description for content %q", p.Content.Name)
	}
	t.local = local
	c.addTransport(p.Content.Name, t)
	return t, nil
}

// transport is the Jingle side of one content's ICE-UDP transport. Its
// remote candidates wait in pending until the call has given the
// PeerConnection the remote description.
type transport struct {
	p   jingle.TransportParams
	max int

	mu      sync.Mutex
	call    *Call
	local   ice.Transport
	remote  *ice.Transport
	pending []ice.Candidate
	count   int
	ready   bool
	closed  bool
}

// bind attaches the transport to the call that owns the content.
func (t *transport) bind(c *Call) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.call = c
}

func (t *transport) setLocal(l ice.Transport) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.local = l
}

// Local implements jingle.Transport.
func (t *transport) Local() jingle.Element {
	t.mu.Lock()
	defer t.mu.Unlock()
	return jingle.MustElement(t.local)
}

// SetRemote implements jingle.Transport. The call reads the answer from the
// session-accept itself; the transport keeps its candidates.
func (t *transport) SetRemote(_ context.Context, answer jingle.Element) error {
	var a ice.Transport
	if err := answer.Decode(&a); err != nil {
		return fmt.Errorf("rtp: ICE-UDP answer: %w", err)
	}
	t.mu.Lock()
	t.remote = &a
	t.mu.Unlock()
	// The answer's candidates are in the remote description the call
	// builds; they are only counted here.
	return t.takeCandidates(a.Candidates, true)
}

// HandleInfo implements jingle.Transport: trickled candidates.
func (t *transport) HandleInfo(_ context.Context, info jingle.Element) error {
	var in ice.Transport
	if err := info.Decode(&in); err != nil {
		return fmt.Errorf("rtp: transport-info: %w", err)
	}
	t.mu.Lock()
	if t.remote != nil && in.Ufrag != "" && t.remote.Ufrag != "" && in.Ufrag != t.remote.Ufrag {
		t.mu.Unlock()
		return fmt.Errorf("rtp: transport-info for ufrag %q: ICE restarts are not supported", in.Ufrag)
	}
	t.mu.Unlock()
	return t.takeCandidates(in.Candidates, false)
}

// takeCandidates counts the peer's candidates against the limit and, unless
// described (they are part of an offer or answer the call maps to SDP),
// hands them to the call or keeps them until it is ready.
func (t *transport) takeCandidates(cs []ice.Candidate, described bool) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	var take []ice.Candidate
	for _, c := range cs {
		if t.count >= t.max {
			t.mu.Unlock()
			return fmt.Errorf("rtp: more than %d remote candidates", t.max)
		}
		t.count++
		if described {
			continue
		}
		if _, err := c.Parse(); err != nil {
			continue // XEP-0176: an unusable candidate is skipped
		}
		take = append(take, c)
	}
	call, ready := t.call, t.ready
	if !ready || call == nil {
		t.pending = append(t.pending, take...)
		take = nil
	}
	t.mu.Unlock()
	for _, c := range take {
		call.addRemoteCandidate(t.p.Content.Name, c)
	}
	return nil
}

// setReady is called once the PeerConnection has the remote description:
// the candidates that waited go to it.
func (t *transport) setReady() {
	t.mu.Lock()
	t.ready = true
	pending := t.pending
	t.pending = nil
	call := t.call
	t.mu.Unlock()
	if call == nil {
		return
	}
	for _, c := range pending {
		call.addRemoteCandidate(t.p.Content.Name, c)
	}
}

// Close implements jingle.Transport. The PeerConnection belongs to the
// call, which closes it when the session ends.
func (t *transport) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	t.pending = nil
	return nil
}
