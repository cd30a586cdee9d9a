package xmppclient

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"
)

// Default bounds of a Disco cache.
const (
	DefaultMaxVers  = 256
	DefaultMaxPeers = 1024
)

// ErrUnexpectedSender reports an IQ response whose from address is not the
// entity the request was sent to. mellium matches responses by id alone.
var ErrUnexpectedSender = errors.New("xmppclient: response from unexpected sender")

// GetInfo sends a disco#info query for node ("" for the entity itself) to
// peer and returns the result, without any caching. An error response is
// returned as a (wrapped) stanza.Error. It must not be called from inside a
// handler of s (Serve would never deliver the response).
func GetInfo(ctx context.Context, s *xmpp.Session, peer jid.JID, node string) (Info, error) {
	resp, err := s.SendIQElement(ctx, xmlstream.Wrap(nil, infoQueryStart(node)), stanza.IQ{
		To:   peer,
		Type: stanza.GetIQ,
	})
	if err != nil {
		return Info{}, fmt.Errorf("xmppclient: disco#info query to %s: %w", peer, err)
	}
	defer resp.Close()

	tok, err := resp.Token()
	if err != nil {
		return Info{}, fmt.Errorf("xmppclient: disco#info response from %s: %w", peer, err)
	}
	start, ok := tok.(xml.StartElement)
	if !ok {
		return Info{}, fmt.Errorf("xmppclient: disco#info response from %s: unexpected %T", peer, tok)
	}
	iq, err := stanza.NewIQ(start)
	if err != nil {
		return Info{}, fmt.Errorf("xmppclient: disco#info response from %s: %w", peer, err)
	}
	if !responseFrom(s, peer, iq.From) {
		return Info{}, fmt.Errorf("%w: disco#info sent to %s answered by %q", ErrUnexpectedSender, peer, iq.From)
	}
	if iq.Type == stanza.ErrorIQ {
		stanzaErr, err := stanza.UnmarshalError(resp)
		if err != nil {
			return Info{}, fmt.Errorf("xmppclient: disco#info error from %s: %w", peer, err)
		}
		return Info{}, fmt.Errorf("xmppclient: disco#info error from %s: %w", peer, stanzaErr)
	}
	if iq.Type != stanza.ResultIQ {
		return Info{}, fmt.Errorf("xmppclient: disco#info response from %s has type %q", peer, iq.Type)
	}

	d := xml.NewTokenDecoder(xmlstream.Inner(resp))
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return Info{}, fmt.Errorf("xmppclient: disco#info result from %s has no query", peer)
		}
		if err != nil {
			return Info{}, fmt.Errorf("xmppclient: disco#info result from %s: %w", peer, err)
		}
		payload, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if payload.Name != (xml.Name{Space: NSDiscoInfo, Local: "query"}) {
			if err := d.Skip(); err != nil {
				return Info{}, fmt.Errorf("xmppclient: disco#info result from %s: %w", peer, err)
			}
			continue
		}
		var q infoQuery
		if err := d.DecodeElement(&q, &payload); err != nil {
			return Info{}, fmt.Errorf("xmppclient: decoding disco#info from %s: %w", peer, err)
		}
		return q.info(), nil
	}
}

// responseFrom reports whether an IQ response with the given from was sent
// by peer. mellium rewrites a from equal to the session's own bare JID to
// empty, and a server answers for an account with its bare JID.
func responseFrom(s *xmpp.Session, peer, from jid.JID) bool {
	if from.Equal(peer) {
		return true
	}
	return from.String() == "" && peer.Equal(s.LocalAddr().Bare())
}

// peerCaps is the entity capabilities a peer last advertised.
type peerCaps struct {
	node, ver string
}

// DiscoConfig configures a Disco. The zero value is usable.
type DiscoConfig struct {
	// MaxVers bounds the number of verified disco#info results kept, one
	// per caps ver string. Default DefaultMaxVers.
	MaxVers int
	// MaxPeers bounds the number of peer → caps associations learned from
	// presence. Default DefaultMaxPeers.
	MaxPeers int
	// Logger receives warnings about peers whose caps do not verify.
	// Default slog.Default().
	Logger *slog.Logger
}

// Disco queries peers' disco#info and caches the results by XEP-0115 caps.
//
// Peers are associated with a caps ver string by the presence handler
// installed with HandlePresence. Info asks such a peer for its "node#ver" and
// caches the answer under ver only when the answer really hashes to ver, so a
// peer advertising a ver that its answer does not match cannot poison the
// cache for others. Peers without (verifiable sha-1) caps are queried every
// time. Both maps are bounded (least recently used entries are evicted).
//
// A Disco is safe for concurrent use and may serve several sessions.
type Disco struct {
	log *slog.Logger

	mu    sync.Mutex
	vers  *lru[string, Info]     // verified ver → disco#info
	peers *lru[string, peerCaps] // full JID → advertised caps
}

// NewDisco returns an empty Disco.
func NewDisco(cfg DiscoConfig) *Disco {
	if cfg.MaxVers <= 0 {
		cfg.MaxVers = DefaultMaxVers
	}
	if cfg.MaxPeers <= 0 {
		cfg.MaxPeers = DefaultMaxPeers
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Disco{
		log:   cfg.Logger,
		vers:  newLRU[string, Info](cfg.MaxVers),
		peers: newLRU[string, peerCaps](cfg.MaxPeers),
	}
}

// Info returns the disco#info of peer (normally a full JID), from the cache
// when peer advertised caps whose ver has been verified before, else by
// querying it over s. It must not be called from inside a handler of s.
func (d *Disco) Info(ctx context.Context, s *xmpp.Session, peer jid.JID) (Info, error) {
	d.mu.Lock()
	pc, known := d.peers.get(peer.String())
	if known {
		if info, ok := d.vers.get(pc.ver); ok {
			d.mu.Unlock()
			return info.clone(), nil
		}
	}
	d.mu.Unlock()

	if !known {
		return GetInfo(ctx, s, peer, "")
	}
	info, err := GetInfo(ctx, s, peer, pc.node+"#"+pc.ver)
	if errors.Is(err, stanza.Error{Condition: stanza.ItemNotFound}) {
		// The peer does not serve its caps node: ask it plainly and do not
		// cache.
		d.log.Warn("xmppclient: peer does not answer for its caps node", "peer", peer.String(), "node", pc.node+"#"+pc.ver)
		return GetInfo(ctx, s, peer, "")
	}
	if err != nil {
		return Info{}, err
	}
	ver, err := ComputeVer(info)
	switch {
	case err != nil:
		d.log.Warn("xmppclient: disco#info of peer cannot be hashed; not cached", "peer", peer.String(), "error", err)
	case ver != pc.ver:
		d.log.Warn("xmppclient: disco#info of peer does not match its caps ver; not cached",
			"peer", peer.String(), "advertised", pc.ver, "computed", ver)
	default:
		d.mu.Lock()
		d.vers.put(ver, info.clone())
		d.mu.Unlock()
	}
	return info, nil
}

// HasFeature reports whether peer advertises the feature ns, using Info.
func (d *Disco) HasFeature(ctx context.Context, s *xmpp.Session, peer jid.JID, ns string) (bool, error) {
	info, err := d.Info(ctx, s, peer)
	if err != nil {
		return false, err
	}
	return info.HasFeature(ns), nil
}

// Observe records that peer advertised the caps (hash, node, ver). Only
// sha-1 caps are kept; any other hash, or an empty ver, forgets peer's
// previous caps. HandlePresence calls it; it is exported for callers that
// parse presence themselves.
func (d *Disco) Observe(peer jid.JID, hash, node, ver string) {
	key := peer.String()
	d.mu.Lock()
	defer d.mu.Unlock()
	if hash != capsHash || ver == "" || key == "" {
		d.peers.remove(key)
		return
	}
	d.peers.put(key, peerCaps{node: node, ver: ver})
}

// Forget drops what was learned about peer's caps, eg. when it goes
// offline. Cached results by ver are kept: they are valid for any peer.
func (d *Disco) Forget(peer jid.JID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.peers.remove(peer.String())
}

// HandlePresence returns a mux option that feeds the cache from presence:
// available presence carrying a caps element records the peer's ver, and
// unavailable presence forgets the peer. It registers the presence patterns
// (available, {NSCaps}c) and (unavailable, any payload); the mux panics if
// either is registered twice.
//
// The handlers never return an error for malformed input (mellium's Serve
// would turn it into a stream error and end the session).
func (d *Disco) HandlePresence() mux.Option {
	return func(m *mux.ServeMux) {
		mux.PresenceFunc(stanza.AvailablePresence, xml.Name{Space: NSCaps, Local: "c"}, d.handleCaps)(m)
		mux.PresenceFunc(stanza.UnavailablePresence, xml.Name{}, d.handleUnavailable)(m)
	}
}

// capsPresence mirrors the part of a presence stanza that carries caps.
type capsPresence struct {
	XMLName xml.Name
	Caps    []struct {
		Hash string `xml:"hash,attr"`
		Node string `xml:"node,attr"`
		Ver  string `xml:"ver,attr"`
	} `xml:"http://jabber.org/protocol/caps c"`
}

func (d *Disco) handleCaps(p stanza.Presence, r xmlstream.TokenReadEncoder) error {
	if p.From.String() == "" {
		return nil
	}
	var v capsPresence
	if err := xml.NewTokenDecoder(r).Decode(&v); err != nil {
		d.log.Warn("xmppclient: ignoring malformed caps presence", "from", p.From.String(), "error", err)
		return nil
	}
	if len(v.Caps) == 0 {
		return nil
	}
	c := v.Caps[0]
	d.Observe(p.From, c.Hash, c.Node, c.Ver)
	return nil
}

func (d *Disco) handleUnavailable(p stanza.Presence, _ xmlstream.TokenReadEncoder) error {
	if p.From.String() != "" {
		d.Forget(p.From)
	}
	return nil
}
