package agent

import (
	"cmp"
	"context"
	"encoding/xml"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/xmppclient"
)

// maxPresences bounds the resources the tracker remembers, all contacts
// together; beyond it the oldest entry is forgotten.
const maxPresences = 4096

// resource is one online resource of a contact, from its presence.
type resource struct {
	jid      jid.JID
	priority int
	seen     time.Time
}

// presenceTracker remembers the online resources of contacts from the
// presence the server delivers (roster contacts with a subscription, and
// anyone who sends directed presence), and feeds the disco cache with
// their caps.
type presenceTracker struct {
	self  jid.JID
	disco *xmppclient.Disco

	// onGone, when set, is called (outside the lock, on the stream's
	// goroutine: it must not block) with the JID whose presence became
	// unavailable, a full JID or a bare one for the whole account.
	onGone func(jid.JID)

	mu      sync.Mutex
	online  map[string]resource // full JID → resource
	changed chan struct{}       // closed and replaced on every change
}

func newPresenceTracker(disco *xmppclient.Disco) *presenceTracker {
	return &presenceTracker{disco: disco, online: map[string]resource{}, changed: make(chan struct{})}
}

// handler returns the mux options handling available and unavailable
// presence of any content.
func (p *presenceTracker) handler() mux.Option {
	return func(m *mux.ServeMux) {
		mux.PresenceFunc(stanza.AvailablePresence, xml.Name{}, p.handleAvailable)(m)
		mux.PresenceFunc(stanza.UnavailablePresence, xml.Name{}, p.handleUnavailable)(m)
	}
}

// presenceStanza mirrors the parts of a presence the tracker reads.
type presenceStanza struct {
	XMLName  xml.Name
	Priority string `xml:"jabber:client priority"`
	Caps     []struct {
		Hash string `xml:"hash,attr"`
		Node string `xml:"node,attr"`
		Ver  string `xml:"ver,attr"`
	} `xml:"http://jabber.org/protocol/caps c"`
}

// handleAvailable is called once per child element of the presence (mux
// dispatches by child), so it is idempotent. It never returns an error:
// that would end the stream.
func (p *presenceTracker) handleAvailable(pr stanza.Presence, r xmlstream.TokenReadEncoder) error {
	from := pr.From
	p.mu.Lock()
	self := p.self
	p.mu.Unlock()
	if from.Resourcepart() == "" || from.Equal(self) {
		return nil
	}
	var v presenceStanza
	if err := xml.NewTokenDecoder(r).Decode(&v); err != nil {
		return nil
	}
	prio := 0
	if n, err := strconv.Atoi(strings.TrimSpace(v.Priority)); err == nil && n >= -128 && n <= 127 {
		prio = n
	}
	if len(v.Caps) > 0 && p.disco != nil {
		c := v.Caps[0]
		p.disco.Observe(from, c.Hash, c.Node, c.Ver)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.online[from.String()]; !ok && len(p.online) >= maxPresences {
		p.evictOldestLocked()
	}
	p.online[from.String()] = resource{jid: from, priority: prio, seen: time.Now()}
	p.notifyLocked()
	return nil
}

func (p *presenceTracker) handleUnavailable(pr stanza.Presence, _ xmlstream.TokenReadEncoder) error {
	from := pr.From
	if p.disco != nil && from.Resourcepart() != "" {
		p.disco.Forget(from)
	}
	if p.onGone != nil && !from.Equal(p.self) {
		p.onGone(from)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if from.Resourcepart() == "" {
		// The whole account went away.
		bare := from.String()
		for k, r := range p.online {
			if r.jid.Bare().String() == bare {
				delete(p.online, k)
			}
		}
	} else {
		delete(p.online, from.String())
	}
	p.notifyLocked()
	return nil
}

func (p *presenceTracker) evictOldestLocked() {
	var oldest string
	var at time.Time
	for k, r := range p.online {
		if oldest == "" || r.seen.Before(at) {
			oldest, at = k, r.seen
		}
	}
	delete(p.online, oldest)
}

func (p *presenceTracker) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// resources returns the online resources of bare, highest priority first,
// then most recently seen, and a channel closed at the next change.
func (p *presenceTracker) resources(bare jid.JID) ([]resource, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []resource
	b := bare.Bare().String()
	for _, r := range p.online {
		if r.jid.Bare().String() == b {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(x, y resource) int {
		if c := cmp.Compare(y.priority, x.priority); c != 0 {
			return c
		}
		return y.seen.Compare(x.seen)
	})
	return out, p.changed
}

// isOnline reports whether full has sent available presence.
func (p *presenceTracker) isOnline(full jid.JID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.online[full.String()]
	return ok
}

// onlineResources waits up to wait for the presence of bare's resources,
// and once one appeared for settle more, and returns them, best first.
func (p *presenceTracker) onlineResources(ctx context.Context, bare jid.JID, wait time.Duration) []jid.JID {
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	var settled <-chan time.Time
	for {
		rs, changed := p.resources(bare)
		if len(rs) > 0 && settled == nil {
			t := time.NewTimer(settle)
			defer t.Stop()
			settled = t.C
		}
		select {
		case <-changed:
			continue
		case <-settled:
		case <-deadline.C:
		case <-ctx.Done():
		}
		rs, _ = p.resources(bare)
		out := make([]jid.JID, len(rs))
		for i, r := range rs {
			out[i] = r.jid
		}
		return out
	}
}

// Presences follows the online resources of contacts for a client that
// is not a Conn (jinglectl call): plug Handler into its stream's mux,
// then call SetSelf before sending the initial presence.
type Presences struct {
	t *presenceTracker
}

// NewPresences returns an empty presence follower; disco, when not nil,
// learns the contacts' entity capabilities.
func NewPresences(disco *xmppclient.Disco) *Presences {
	return &Presences{t: newPresenceTracker(disco)}
}

// SetSelf sets the own full JID, whose presence is not a contact's.
func (p *Presences) SetSelf(self jid.JID) {
	p.t.mu.Lock()
	defer p.t.mu.Unlock()
	p.t.self = self
}

// Handler returns the mux options that handle presence.
func (p *Presences) Handler() mux.Option { return p.t.handler() }

// Online waits up to wait for the presence of bare's resources (and once
// one appeared, briefly for more) and returns them, highest priority
// first.
func (p *Presences) Online(ctx context.Context, bare jid.JID, wait time.Duration) []jid.JID {
	return p.t.onlineResources(ctx, bare, wait)
}
