package socks5

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"strconv"

	"github.com/jinglekit/jinglekit/jingle"
)

// Namespaces of XEP-0260 and XEP-0065.
const (
	// NS is the namespace of the Jingle SOCKS5 Bytestreams transport
	// (XEP-0260) and its service discovery feature.
	NS = "urn:xmpp:jingle:transports:s5b:1"
	// NSBytestreams is the namespace of SOCKS5 Bytestreams (XEP-0065): the
	// <query/> used for proxy discovery and activation, and its disco
	// feature.
	NSBytestreams = "http://jabber.org/protocol/bytestreams"
	// NSBytestreamsUDP is the disco feature of XEP-0065's optional UDP mode
	// (not implemented here; listed for completeness).
	NSBytestreamsUDP = NSBytestreams + "#udp"
)

// CandidateType is the 'type' of a XEP-0260 candidate. The empty value
// means the default, direct.
type CandidateType string

// Candidate types of XEP-0260 §2.3.
const (
	TypeDirect   CandidateType = "direct"
	TypeAssisted CandidateType = "assisted"
	TypeTunnel   CandidateType = "tunnel"
	TypeProxy    CandidateType = "proxy"
)

// Type preferences XEP-0260 §2.3 suggests for the priority formula
// priority = 2^16 × type preference + local preference.
const (
	PrefDirect   = 126
	PrefAssisted = 120
	PrefTunnel   = 110
	PrefProxy    = 10
)

// Preference returns the type preference XEP-0260 suggests for t, and
// whether t is a defined type (the empty type is direct).
func (t CandidateType) Preference() (uint32, bool) {
	switch t {
	case TypeDirect, "":
		return PrefDirect, true
	case TypeAssisted:
		return PrefAssisted, true
	case TypeTunnel:
		return PrefTunnel, true
	case TypeProxy:
		return PrefProxy, true
	}
	return 0, false
}

// Priority computes a XEP-0260 candidate priority: 2^16 × the type's
// preference + localPref.
func Priority(t CandidateType, localPref uint16) uint32 {
	p, _ := t.Preference()
	return p<<16 + uint32(localPref)
}

// DstAddr returns the SOCKS5 DST.ADDR of a bytestream: the lower-case hex
// SHA-1 of sid + requester JID + target JID (XEP-0065 §5.3.2). In XEP-0260
// the requester is the party that offered the candidate: for the
// initiator's candidates DstAddr(sid, initiator, responder), for the
// responder's DstAddr(sid, responder, initiator).
func DstAddr(sid, requester, target string) string {
	h := sha1.Sum([]byte(sid + requester + target))
	return hex.EncodeToString(h[:])
}

// Empty is an element without attributes or content, such as
// <candidate-error/> and <proxy-error/>.
type Empty struct{}

// Transport is the <transport xmlns='urn:xmpp:jingle:transports:s5b:1'/>
// element of XEP-0260: the candidates a party offers (in session-initiate,
// session-accept, transport-replace, transport-accept) or, in
// transport-info, one of the notifications candidate-used, candidate-error,
// activated and proxy-error.
//
// Numeric attributes are kept as the strings that came, so that any
// element round-trips; Candidate has accessors that parse them.
type Transport struct {
	XMLName xml.Name `xml:"urn:xmpp:jingle:transports:s5b:1 transport" json:"-"`
	// SID is the bytestream's stream id (not the Jingle session id).
	SID string `xml:"sid,attr" json:"sid"`
	// DstAddr is the sender's DST.ADDR for its proxy candidates.
	DstAddr string `xml:"dstaddr,attr,omitempty" json:"dstaddr,omitempty"`
	// Mode is "tcp" (the default) or "udp"; only the initiator sets it.
	Mode           string      `xml:"mode,attr,omitempty" json:"mode,omitempty"`
	Candidates     []Candidate `xml:"candidate" json:"candidates,omitempty"`
	CandidateUsed  *CID        `xml:"candidate-used" json:"candidate_used,omitempty"`
	CandidateError *Empty      `xml:"candidate-error" json:"candidate_error,omitempty"`
	Activated      *CID        `xml:"activated" json:"activated,omitempty"`
	ProxyError     *Empty      `xml:"proxy-error" json:"proxy_error,omitempty"`
	// Extra holds any other child element.
	Extra []jingle.Element `xml:",any" json:"extra,omitempty"`
}

// CID is an element whose only attribute names a candidate:
// <candidate-used cid/> and <activated cid/>.
type CID struct {
	CID string `xml:"cid,attr" json:"cid"`
}

// Candidate is one <candidate/>: a SOCKS5 streamhost, the offering party
// itself (direct, assisted, tunnel) or a proxy.
type Candidate struct {
	CID  string `xml:"cid,attr" json:"cid"`
	Host string `xml:"host,attr" json:"host"`
	// JID is the streamhost's JID: the offering party's full JID, or the
	// proxy's JID.
	JID string `xml:"jid,attr" json:"jid"`
	// Port is optional; absent means 1080 (XEP-0065 §5.2).
	Port     string        `xml:"port,attr,omitempty" json:"port,omitempty"`
	Priority string        `xml:"priority,attr" json:"priority"`
	Type     CandidateType `xml:"type,attr,omitempty" json:"type,omitempty"`
}

// DefaultPort is the port of a streamhost or candidate without one.
const DefaultPort = 1080

// PortNumber returns the candidate's port: DefaultPort when absent, an
// error when not a number in 1..65535.
func (c Candidate) PortNumber() (uint16, error) {
	return parsePort(c.Port)
}

// PriorityValue returns the candidate's priority, an error when it is not a
// positive 32-bit number.
func (c Candidate) PriorityValue() (uint32, error) {
	v, err := strconv.ParseUint(c.Priority, 10, 32)
	if err != nil || v == 0 {
		return 0, fmt.Errorf("socks5: bad priority %q", c.Priority)
	}
	return uint32(v), nil
}

func parsePort(s string) (uint16, error) {
	if s == "" {
		return DefaultPort, nil
	}
	v, err := strconv.ParseUint(s, 10, 16)
	if err != nil || v == 0 {
		return 0, fmt.Errorf("socks5: bad port %q", s)
	}
	return uint16(v), nil
}

// Query is the <query xmlns='http://jabber.org/protocol/bytestreams'/>
// element of XEP-0065: the streamhost request and answer of a proxy, an
// S5B offer (streamhosts), its answer (streamhost-used) and the activation
// request (activate).
type Query struct {
	XMLName        xml.Name        `xml:"http://jabber.org/protocol/bytestreams query" json:"-"`
	SID            string          `xml:"sid,attr,omitempty" json:"sid,omitempty"`
	Mode           string          `xml:"mode,attr,omitempty" json:"mode,omitempty"`
	DstAddr        string          `xml:"dstaddr,attr,omitempty" json:"dstaddr,omitempty"`
	StreamHosts    []StreamHost    `xml:"streamhost" json:"streamhosts,omitempty"`
	StreamHostUsed *StreamHostUsed `xml:"streamhost-used" json:"streamhost_used,omitempty"`
	// Activate holds the target's JID in an activation request.
	Activate *Activate `xml:"activate" json:"activate,omitempty"`
	// Extra holds any other child element.
	Extra []jingle.Element `xml:",any" json:"extra,omitempty"`
}

// StreamHost is a <streamhost/>: the network address of a SOCKS5
// streamhost and its JID.
type StreamHost struct {
	JID  string `xml:"jid,attr" json:"jid"`
	Host string `xml:"host,attr" json:"host"`
	// Port is optional; absent means 1080.
	Port string `xml:"port,attr,omitempty" json:"port,omitempty"`
}

// PortNumber returns the streamhost's port: DefaultPort when absent, an
// error when not a number in 1..65535.
func (s StreamHost) PortNumber() (uint16, error) { return parsePort(s.Port) }

// StreamHostUsed is <streamhost-used jid/>.
type StreamHostUsed struct {
	JID string `xml:"jid,attr" json:"jid"`
}

// Activate is <activate>target JID</activate>.
type Activate struct {
	JID string `xml:",chardata" json:"jid"`
}

// UDPSuccess is the <udpsuccess xmlns='http://jabber.org/protocol/bytestreams'/>
// message payload of XEP-0065's UDP mode.
type UDPSuccess struct {
	XMLName xml.Name `xml:"http://jabber.org/protocol/bytestreams udpsuccess" json:"-"`
	DstAddr string   `xml:"dstaddr,attr" json:"dstaddr"`
}
