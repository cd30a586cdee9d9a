package linklocal

import (
	"net/netip"
	"slices"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/xmppclient"
)

// Source says how a peer became known.
type Source int

// Sources of peers.
const (
	// Browsed: advertised over multicast DNS.
	Browsed Source = iota + 1
	// Static: added with AddPeer.
	Static
	// Inbound: connected to this node without being advertised, and
	// accepted because Node.AcceptUnadvertised is set.
	Inbound
)

func (s Source) String() string {
	switch s {
	case Browsed:
		return "mdns"
	case Static:
		return "static"
	case Inbound:
		return "inbound"
	}
	return "unknown"
}

// Peer is another link-local entity.
type Peer struct {
	// Name is its link-local name, user@machine, as a bare JID: the
	// address of its stanzas and of Jingle sessions with it.
	Name jid.JID
	// Host is the SRV target ("machine.local.") of a browsed peer.
	Host string
	// Addr is the address it is dialled at, Addrs all the addresses it is
	// known at (a stream claiming its name must come from one of them).
	Addr  netip.Addr
	Addrs []netip.Addr
	// Port is its stream port: the SRV port, never port.p2pj (XEP-0174
	// §10). 0 for an Inbound peer, which cannot be dialled back.
	Port int
	// TXT is its TXT record (zero for peers not browsed), and TXTErr why the
	// record was ignored (ErrTXTTooLarge, ErrTXTVersion).
	TXT    TXT
	TXTErr error
	// Features are its service discovery features once known: from the
	// disco#info in its stream features or from Node.Disco. Nil before.
	Features []string
	// Source says how the peer became known; Seen is when it was last
	// advertised, added or connected.
	Source Source
	Seen   time.Time
}

// HasFeature reports whether the peer is known to support the feature.
func (p Peer) HasFeature(ns string) bool { return slices.Contains(p.Features, ns) }

// PeerEventType says what happened to a peer.
type PeerEventType int

// Peer events.
const (
	PeerAdded PeerEventType = iota + 1
	PeerUpdated
	PeerRemoved
)

func (t PeerEventType) String() string {
	switch t {
	case PeerAdded:
		return "added"
	case PeerUpdated:
		return "updated"
	case PeerRemoved:
		return "removed"
	}
	return "unknown"
}

// PeerEvent is sent by Browse.
type PeerEvent struct {
	Type PeerEventType
	Peer Peer
}

// peerEntry is what a Node knows of one name.
type peerEntry struct {
	name    jid.JID
	browsed *Peer // last mDNS advertisement
	static  *Peer // AddPeer
	inbound *Peer // accepted unadvertised connection
	info    *xmppclient.Info
}

// view merges what is known: the static entry (explicitly given) is dialled
// first, then the advertised one; all addresses count for authorisation.
func (e *peerEntry) view() Peer {
	var p Peer
	for _, src := range []*Peer{e.inbound, e.browsed, e.static} {
		if src == nil {
			continue
		}
		addrs := p.Addrs
		p = *src
		for _, a := range addrs {
			if !slices.Contains(p.Addrs, a) {
				p.Addrs = append(p.Addrs, a)
			}
		}
	}
	if e.browsed != nil {
		p.Host, p.TXT, p.TXTErr = e.browsed.Host, e.browsed.TXT, e.browsed.TXTErr
	}
	p.Name = e.name
	p.Addrs = slices.Clone(p.Addrs)
	if e.info != nil {
		p.Features = slices.Clone(e.info.Features)
	}
	return p
}

// empty reports whether nothing is known any more.
func (e *peerEntry) empty() bool { return e.browsed == nil && e.static == nil && e.inbound == nil }

// hasAddr reports whether a is one of the addresses of the entry.
func (e *peerEntry) hasAddr(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	for _, src := range []*Peer{e.inbound, e.browsed, e.static} {
		if src == nil {
			continue
		}
		for _, b := range src.Addrs {
			if b.Unmap().WithZone("") == a {
				return true
			}
		}
	}
	return false
}
