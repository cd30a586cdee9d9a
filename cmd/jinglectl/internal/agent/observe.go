package agent

import (
	"context"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"slices"
	"sync"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/transports/ice"
	"github.com/jinglekit/jinglekit/transports/socks5"
)

// progressInterval is the least time between two progress events of a
// file (the first and the last are always sent).
const progressInterval = 200 * time.Millisecond

// fileRef is what the hub knows of one file of a session.
type fileRef struct {
	id, name, path string
	size           int64
	content        string
	transport      string // short name, once connected
	encrypted      bool   // end to end (JET)
	route          string // how the bytes go (Route*), once connected
	accepted       bool
	lastProgress   time.Time
	cancel         func()
	finished       chan struct{} // receiving: closed once the Handler reported the file
	moved          int64         // bytes moved so far, and when that last changed
	lastData       time.Time
}

// watch follows one Jingle session: who gets its events and which file
// each content is.
type watch struct {
	dir  string
	peer jid.JID
	sid  string
	emit func(Event)

	files     []*fileRef // sending: in offer order
	byContent map[string]*fileRef
	next      int
	results   []filetransfer.Result
	allowed   bool
}

// hub routes the events of the Manager's sessions — from the transports,
// the file-transfer Handler and the Sender — to whoever watches them, by
// session id.
type hub struct {
	mu       sync.Mutex
	sessions map[string]*watch
}

func newHub() *hub { return &hub{sessions: map[string]*watch{}} }

func (h *hub) get(sid string) *watch {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sessions[sid]
}

func (h *hub) remove(sid string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.sessions, sid)
}

// base returns an event of w about f.
func (w *watch) event(typ string, f *fileRef) Event {
	e := Event{Event: typ, Time: time.Now().UTC(), Direction: w.dir, Peer: w.peer.String(), SID: w.sid}
	if f != nil {
		e.ID, e.File, e.Path, e.Size, e.Content = f.id, f.name, f.path, f.size, f.content
		e.Encrypted = f.encrypted
	}
	return e
}

// ObserveTransport implements jingle.Observer: the Manager's transport
// events become the events of the files they carry.
func (h *hub) ObserveTransport(e jingle.TransportEvent) {
	switch e.Kind {
	case jingle.TransportCreated:
		h.bindInitiated(e)
	case jingle.TransportAccepted:
		h.accepted(e.SID, e.Content.Name)
	case jingle.TransportConnected:
		h.transport(e.SID, e.Content.Name, e.Namespace, RouteOf(e.Namespace, e.Transport), nil)
	case jingle.TransportFailed:
		h.transport(e.SID, e.Content.Name, e.Namespace, "", e.Err)
	}
}

// watchSend watches a session this side initiates with id sid.
func (h *hub) watchSend(w *watch) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sessions[w.sid] = w
}

// bindInitiated records that this side offered a transport for a content
// of a session it initiates with w's files: contents are created in offer
// order, so the n-th new content is the n-th file.
func (h *hub) bindInitiated(e jingle.TransportEvent) {
	if !e.Initiator || !e.Proposer {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	w := h.sessions[e.SID]
	if w == nil || w.dir != Send || !w.peer.Equal(e.Peer) {
		return
	}
	if _, ok := w.byContent[e.Content.Name]; ok || w.next >= len(w.files) {
		return
	}
	f := w.files[w.next]
	w.next++
	f.content = e.Content.Name
	w.byContent[e.Content.Name] = f
}

func (h *hub) file(sid, content string) (*watch, *fileRef) {
	h.mu.Lock()
	defer h.mu.Unlock()
	w := h.sessions[sid]
	if w == nil {
		return nil, nil
	}
	return w, w.byContent[content]
}

// accepted is called when the peer answered this side's offer of a
// content (session-accept or transport-accept).
func (h *hub) accepted(sid, content string) {
	w, f := h.file(sid, content)
	if f == nil || w.dir != Send {
		return
	}
	h.mu.Lock()
	first := !f.accepted
	f.accepted = true
	h.mu.Unlock()
	if first {
		w.emit(w.event(EventAccepted, f))
	}
}

func (h *hub) transport(sid, content, ns, route string, err error) {
	w, f := h.file(sid, content)
	if w == nil {
		return
	}
	if err != nil {
		e := w.event(EventTransportFailed, f)
		e.Transport, e.Error = TransportName(ns), err.Error()
		w.emit(e)
		return
	}
	e := w.event(EventTransport, f)
	e.Transport, e.Route = TransportName(ns), route
	if f != nil {
		h.mu.Lock()
		f.transport, f.route = e.Transport, e.Route
		h.mu.Unlock()
	}
	w.emit(e)
}

func (h *hub) progress(p filetransfer.Progress) {
	w, f := h.file(p.SID, p.Content)
	if f == nil {
		return
	}
	now := time.Now()
	h.mu.Lock()
	f.cancel = p.Cancel
	if p.Transferred != f.moved || f.lastData.IsZero() {
		f.moved, f.lastData = p.Transferred, now
	}
	final := p.Total >= 0 && p.Bytes >= p.Total
	if !final && p.Transferred > 0 && now.Sub(f.lastProgress) < progressInterval {
		h.mu.Unlock()
		return
	}
	f.lastProgress = now
	h.mu.Unlock()
	e := w.event(EventProgress, f)
	e.Bytes, e.Rate = p.Bytes, p.Rate
	if p.Total >= 0 {
		e.Size = p.Total
	}
	if p.Rate > 0 && p.Total > p.Bytes {
		e.ETA = float64(p.Total-p.Bytes) / p.Rate
	}
	w.emit(e)
}

// cancelFile cancels a file in progress; it reports whether one was found.
func (h *hub) cancelFile(id string) bool {
	h.mu.Lock()
	var cancel func()
	for _, w := range h.sessions {
		for _, f := range w.byContent {
			if f.id == id && f.cancel != nil {
				cancel = f.cancel
			}
		}
	}
	h.mu.Unlock()
	if cancel != nil {
		cancel()
		return true
	}
	return false
}

// finish emits the closing events of a file from its Result.
func (w *watch) finish(f *fileRef, r filetransfer.Result) {
	if f == nil {
		f = &fileRef{id: r.SID + "/" + r.Content, name: r.Name, size: r.Size, content: r.Content}
	}
	if r.Path != "" && w.dir == Receive {
		f.path = r.Path
	}
	f.encrypted = f.encrypted || r.Encrypted
	if !r.Hash.IsZero() {
		e := w.event(EventChecksum, f)
		e.Hash = &Hash{Algo: r.Hash.Algo, Value: hex.EncodeToString(r.Hash.Sum)}
		w.emit(e)
	}
	if r.Verified {
		e := w.event(EventVerified, f)
		e.Verified = true
		if !r.Hash.IsZero() {
			e.Hash = &Hash{Algo: r.Hash.Algo, Value: hex.EncodeToString(r.Hash.Sum)}
		}
		w.emit(e)
	}
	typ := EventDone
	err := r.Err
	if err == nil && !r.Verified {
		err = errors.New("the transfer ended without verification")
	}
	if err != nil {
		typ = EventError
	}
	e := w.event(typ, f)
	e.SID = r.SID
	e.Bytes, e.Offset, e.Duration, e.Verified = r.Offset+r.Bytes, r.Offset, r.Duration.Seconds(), r.Verified
	e.Note = r.Note
	if r.Transport != "" {
		e.Transport = TransportName(r.Transport)
	} else {
		e.Transport = f.transport
	}
	e.Route = f.route
	if !r.Hash.IsZero() {
		e.Hash = &Hash{Algo: r.Hash.Algo, Value: hex.EncodeToString(r.Hash.Sum)}
	}
	e.Outcome = Outcome(err)
	if err != nil {
		e.Error = err.Error()
	}
	w.emit(e)
}

// Routes: how the bytes of a file went, as events and status tell it.
const (
	RouteS5BDirect = "s5b-direct" // SOCKS5, to a streamhost of one of the parties
	RouteS5BProxy  = "s5b-proxy"  // SOCKS5, relayed by a proxy
	RouteICEHost   = "ice-host"   // ICE, straight between the hosts (host or reflexive candidates)
	RouteICERelay  = "ice-relay"  // ICE, relayed by a TURN server
	RouteIBB       = "ibb"        // in-band, through the XMPP servers
)

// s5bRouter is a SOCKS5 transport that tells its candidate in use.
type s5bRouter interface {
	Route() socks5.CandidateType
}

// icePairer is an ICE transport that tells its candidate pair in use.
type icePairer interface {
	SelectedPair() (ice.PairInfo, bool)
}

// RouteOf says how a connected transport t of namespace ns carries the
// bytes (Route*), or "" when it cannot tell.
func RouteOf(ns string, t jingle.Transport) string {
	switch TransportName(ns) {
	case TransportIBB:
		return RouteIBB
	case TransportS5B:
		if r, ok := t.(s5bRouter); ok {
			switch r.Route() {
			case "":
				return ""
			case socks5.TypeProxy:
				return RouteS5BProxy
			default:
				return RouteS5BDirect
			}
		}
	case TransportICE:
		if p, ok := t.(icePairer); ok {
			pi, ok := p.SelectedPair()
			switch {
			case !ok:
				return ""
			case pi.LocalType == "relay" || pi.RemoteType == "relay":
				return RouteICERelay
			default:
				return RouteICEHost
			}
		}
	}
	return ""
}

// SessionSummary is the outcome of one incoming session.
type SessionSummary struct {
	SID  string
	Peer jid.JID
	// Allowed is false when the sender was not allowed and everything was
	// declined for that reason.
	Allowed bool
	Results []filetransfer.Result
}

// receiver is the jingle.Application registered on the Manager: the
// file-transfer Handler, with the hub told about each incoming session.
type receiver struct {
	h       *filetransfer.Handler
	hub     *hub
	allowed func(jid.JID) bool
	emit    func(Event)
	newID   func(sid, content string) string
	onDone  func(SessionSummary)
	dir     string
}

// newReceiver returns the receiver of ft, which it configures from ro (no
// receive directory when ro is nil), with onEvent (when set) told of
// every event. It returns the senders ro lists (AcceptFrom) for the
// caller's policy, which also sets the receiver's allowed.
func newReceiver(h *hub, ft *filetransfer.Handler, ro *ReceiveOptions, onEvent func(Event)) (*receiver, []jid.JID) {
	rcv := &receiver{h: ft, hub: h, emit: func(Event) {}, newID: func(sid, content string) string { return sid + "/" + content }}
	if onEvent != nil {
		rcv.emit = onEvent
	}
	if ro == nil {
		return rcv, nil
	}
	ft.Dir = ro.Dir
	rcv.dir = ro.Dir
	ft.Limits.MaxFileSize = ro.MaxSize
	rcv.onDone = ro.OnSession
	if ro.NewID != nil {
		rcv.newID = ro.NewID
	}
	return rcv, slices.Clone(ro.AcceptFrom)
}

// listed reports whether from is in allow: a bare JID there lists all its
// resources.
func listed(allow []jid.JID, from jid.JID) bool {
	for _, a := range allow {
		if a.Resourcepart() == "" && a.Equal(from.Bare()) || a.Equal(from) {
			return true
		}
	}
	return false
}

func (r *receiver) Namespaces() []string { return r.h.Namespaces() }

// Features implements jingle.FeatureAdvertiser with the handler's.
func (r *receiver) Features() []string { return r.h.Features() }

func (r *receiver) UnderstandsInfo(n xml.Name) bool { return r.h.UnderstandsInfo(n) }

func (r *receiver) HandleSession(ctx context.Context, s *jingle.Session) {
	w := &watch{dir: Receive, peer: s.Peer(), sid: s.SID(), emit: r.emit, byContent: map[string]*fileRef{},
		allowed: r.allowed(s.Peer())}
	r.hub.mu.Lock()
	r.hub.sessions[s.SID()] = w
	r.hub.mu.Unlock()
	r.h.HandleSession(ctx, s)
	r.hub.remove(s.SID())
	if r.onDone != nil {
		r.hub.mu.Lock()
		sum := SessionSummary{SID: s.SID(), Peer: s.Peer(), Allowed: w.allowed, Results: w.results}
		r.hub.mu.Unlock()
		r.onDone(sum)
	}
}

// policy wraps the decision on each offer: allowed senders only, and
// events for each.
func (r *receiver) policy(o filetransfer.Offer) filetransfer.Decision {
	w := r.hub.get(o.SID)
	dec := filetransfer.Decision{Accept: r.allowed(o.From)}
	if dec.Accept && sameAsExisting(r.dir, o) {
		dec.Overwrite = true
	}
	if w == nil {
		return dec
	}
	if dec.Accept {
		r.hub.supersede(o, supersedeWait)
	}
	f := &fileRef{id: r.newID(o.SID, o.Content), name: o.Name, size: o.Size, content: o.Content, encrypted: o.Encrypted, finished: make(chan struct{})}
	r.announce(w, f, dec.Accept, "sender not allowed")
	return dec
}

// announce records f, the file of an offer in w's session, and emits its
// offered event, then accepted, or declined with why.
func (r *receiver) announce(w *watch, f *fileRef, accept bool, why string) {
	r.hub.mu.Lock()
	w.byContent[f.content] = f
	r.hub.mu.Unlock()
	w.emit(w.event(EventOffered, f))
	if accept {
		f.accepted = true
		w.emit(w.event(EventAccepted, f))
		return
	}
	e := w.event(EventDeclined, f)
	e.Error = why
	w.emit(e)
}

// done is the Handler's Done callback.
func (r *receiver) done(res filetransfer.Result) {
	w, f := r.hub.file(res.SID, res.Content)
	if w == nil {
		return
	}
	r.hub.mu.Lock()
	w.results = append(w.results, res)
	if f == nil {
		// Refused before the policy saw it (too large, too many files).
		f = &fileRef{id: r.newID(res.SID, res.Content), name: res.Name, size: res.Size, content: res.Content}
		w.byContent[res.Content] = f
		r.hub.mu.Unlock()
		w.emit(w.event(EventOffered, f))
	} else {
		r.hub.mu.Unlock()
	}
	if f.finished != nil {
		r.hub.mu.Lock()
		select {
		case <-f.finished:
		default:
			close(f.finished)
		}
		r.hub.mu.Unlock()
	}
	w.finish(f, res)
}

// supersedeWait bounds how long a new offer waits for the incoming
// transfer it supersedes to stall and let go of its .part; supersedeStall
// is how long without data makes a transfer stalled.
const (
	supersedeWait  = 10 * time.Second
	supersedeStall = time.Second
)

// supersede ends the incoming transfers that offer o replaces, and waits
// (at most wait) until the Handler has reported them, so that their .part
// is free for o to resume from. o replaces an incoming transfer of the
// same file (name and size) from the same full JID in another session once
// no data has come for supersedeStall: a sender offers a file again when
// it has given up the session that was carrying it — typically because
// its connection dropped and it logged in again, possibly through another
// server. The old session may still look alive here: when an ejabberd
// 23.01 cluster node stops, the other node sends no unavailable presence
// for the sessions it hosted, and the in-band bytestream simply stalls. A
// transfer that keeps moving (the same file sent twice at once) is left
// alone: o then gets a name of its own after wait.
func (h *hub) supersede(o filetransfer.Offer, wait time.Duration) {
	deadline := time.Now().Add(wait)
	for {
		cancel, finished, stalled := h.sameFileFrom(o)
		if finished == nil || time.Now().After(deadline) {
			return
		}
		if stalled {
			cancel()
			select {
			case <-finished:
			case <-time.After(time.Until(deadline)):
				return
			}
			continue
		}
		select {
		case <-finished:
		case <-time.After(min(supersedeStall/4, time.Until(deadline))):
		}
	}
}

// sameFileFrom finds a live incoming transfer that offer o would replace
// (see supersede): its cancel function, the channel closed when it is
// reported, and whether it has stalled. finished is nil when there is none.
func (h *hub) sameFileFrom(o filetransfer.Offer) (cancel func(), finished chan struct{}, stalled bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for sid, w := range h.sessions {
		if sid == o.SID || w.dir != Receive || !w.peer.Equal(o.From) {
			continue
		}
		for _, f := range w.byContent {
			if f.name != o.Name || f.size != o.Size || f.cancel == nil || f.finished == nil {
				continue
			}
			select {
			case <-f.finished:
				continue
			default:
			}
			return f.cancel, f.finished, time.Since(f.lastData) >= supersedeStall
		}
	}
	return nil, nil, false
}
