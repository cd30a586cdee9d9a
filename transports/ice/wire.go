package ice

import (
	"encoding/xml"
	"fmt"
	"strings"

	"github.com/jinglekit/jinglekit/jingle"
)

// Namespaces of the elements this package reads and writes.
const (
	// NSICEUDP is XEP-0176's ICE-UDP transport; with an <sctpmap/> child it
	// carries data channels as XEP-0343 describes (StanzaJS, Psi).
	NSICEUDP = "urn:xmpp:jingle:transports:ice-udp:1"
	// NSICE0 is the namespace Psi's iris library and StanzaJS also accept
	// for the same element; it is read like NSICEUDP.
	NSICE0 = "urn:xmpp:jingle:transports:ice:0"
	// NSWebRTCDataChannel is the transport of Conversations (since 2.13) and
	// Libervia: a wrapper with sctp-port and max-message-size around an
	// ICE-UDP <transport/>.
	NSWebRTCDataChannel = "urn:xmpp:jingle:transports:webrtc-datachannel:1"
	// NSWebRTCDataChannel0 is XEP-0343's <channel/> element.
	NSWebRTCDataChannel0 = "urn:xmpp:jingle:transports:webrtc-datachannel:0"
	// NSDTLSSCTP is XEP-0343's <sctpmap/> element and disco feature.
	NSDTLSSCTP = "urn:xmpp:jingle:transports:dtls-sctp:1"
	// NSDTLS is XEP-0320's <fingerprint/> element and disco feature.
	NSDTLS = "urn:xmpp:jingle:apps:dtls:0"
)

// Setup is the DTLS role attribute of XEP-0320 (RFC 4145's a=setup).
type Setup string

// Setup values. XEP-0320 maps no holdconn.
const (
	SetupActPass Setup = "actpass"
	SetupActive  Setup = "active"
	SetupPassive Setup = "passive"
)

// Fingerprint is XEP-0320's <fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0'/>:
// the hash of the certificate a party presents in the DTLS handshake, and
// its DTLS role. Value is kept as it came (white space included); use
// Normalized to compare.
type Fingerprint struct {
	XMLName xml.Name `xml:"urn:xmpp:jingle:apps:dtls:0 fingerprint" json:"-"`
	Hash    string   `xml:"hash,attr,omitempty" json:"hash,omitempty"`
	Setup   Setup    `xml:"setup,attr,omitempty" json:"setup,omitempty"`
	Value   string   `xml:",chardata" json:"value"`
}

// Normalized returns the fingerprint value without white space, in upper
// case, as RFC 4572 writes it.
func (f Fingerprint) Normalized() string {
	return strings.ToUpper(strings.Join(strings.Fields(f.Value), ""))
}

// SCTPMap is XEP-0343's <sctpmap xmlns='urn:xmpp:jingle:transports:dtls-sctp:1'/>:
// the SCTP port of the data channels (SDP a=sctpmap).
type SCTPMap struct {
	XMLName  xml.Name `xml:"urn:xmpp:jingle:transports:dtls-sctp:1 sctpmap" json:"-"`
	Number   string   `xml:"number,attr,omitempty" json:"number,omitempty"`
	Protocol string   `xml:"protocol,attr,omitempty" json:"protocol,omitempty"`
	Streams  string   `xml:"streams,attr,omitempty" json:"streams,omitempty"`
}

// Channel is XEP-0343's explicit <channel xmlns='urn:xmpp:jingle:transports:webrtc-datachannel:0'/>
// (RTCDataChannelInit). It is carried and shown; this package opens its
// channels in band.
type Channel struct {
	XMLName           xml.Name `xml:"urn:xmpp:jingle:transports:webrtc-datachannel:0 channel" json:"-"`
	ID                string   `xml:"id,attr,omitempty" json:"id,omitempty"`
	Label             string   `xml:"label,attr,omitempty" json:"label,omitempty"`
	Negotiated        string   `xml:"negotiated,attr,omitempty" json:"negotiated,omitempty"`
	Ordered           string   `xml:"ordered,attr,omitempty" json:"ordered,omitempty"`
	MaxPacketLifeTime string   `xml:"maxPacketLifeTime,attr,omitempty" json:"max_packet_life_time,omitempty"`
	MaxRetransmits    string   `xml:"maxRetransmits,attr,omitempty" json:"max_retransmits,omitempty"`
	Protocol          string   `xml:"protocol,attr,omitempty" json:"protocol,omitempty"`
}

// Candidate is one ICE candidate (XEP-0176 §5.2). Its attributes are kept
// as text, exactly as they came: peers leave out id, generation and network
// (StanzaJS) or send values this package cannot use, and a candidate that
// does not parse is skipped on its own (see Parse) rather than failing the
// whole <transport/>.
type Candidate struct {
	Component  string `xml:"component,attr,omitempty" json:"component,omitempty"`
	Foundation string `xml:"foundation,attr,omitempty" json:"foundation,omitempty"`
	Generation string `xml:"generation,attr,omitempty" json:"generation,omitempty"`
	ID         string `xml:"id,attr,omitempty" json:"id,omitempty"`
	IP         string `xml:"ip,attr,omitempty" json:"ip,omitempty"`
	Network    string `xml:"network,attr,omitempty" json:"network,omitempty"`
	Port       string `xml:"port,attr,omitempty" json:"port,omitempty"`
	Priority   string `xml:"priority,attr,omitempty" json:"priority,omitempty"`
	Protocol   string `xml:"protocol,attr,omitempty" json:"protocol,omitempty"`
	RelAddr    string `xml:"rel-addr,attr,omitempty" json:"rel_addr,omitempty"`
	RelPort    string `xml:"rel-port,attr,omitempty" json:"rel_port,omitempty"`
	Type       string `xml:"type,attr,omitempty" json:"type,omitempty"`
	// TCPType is XEP-0371's tcptype, sent by StanzaJS for TCP candidates.
	TCPType string `xml:"tcptype,attr,omitempty" json:"tcptype,omitempty"`
}

// RemoteCandidate is the <remote-candidate/> by which the controlling party
// may tell which candidate of the peer it selected (XEP-0176 §6).
type RemoteCandidate struct {
	Component string `xml:"component,attr,omitempty" json:"component,omitempty"`
	IP        string `xml:"ip,attr,omitempty" json:"ip,omitempty"`
	Port      string `xml:"port,attr,omitempty" json:"port,omitempty"`
}

// childKind names the kinds of children of a Transport, to keep their order.
type childKind uint8

const (
	kindFingerprint childKind = iota + 1
	kindSCTPMap
	kindChannel
	kindCandidate
	kindRemoteCandidate
	kindGatheringComplete
	kindExtra
)

// Transport is the ICE-UDP <transport/> of XEP-0176 in namespace NSICEUDP
// (or NSICE0), with the children other specifications put in it: DTLS
// fingerprints (XEP-0320), the SCTP map and channels of XEP-0343, and
// XEP-0371's <gathering-complete/>. Unknown children are kept in Extra.
//
// A Transport read from XML remembers the order of its children and writes
// them back in that order as long as their numbers did not change; a
// Transport built in code is written in the order of the fields.
type Transport struct {
	// XMLName is the element's name; the zero value means NSICEUDP.
	XMLName           xml.Name         `json:"-"`
	Ufrag             string           `json:"ufrag,omitempty"`
	Pwd               string           `json:"pwd,omitempty"`
	Fingerprints      []Fingerprint    `json:"fingerprints,omitempty"`
	SCTPMap           *SCTPMap         `json:"sctpmap,omitempty"`
	Channels          []Channel        `json:"channels,omitempty"`
	Candidates        []Candidate      `json:"candidates,omitempty"`
	RemoteCandidate   *RemoteCandidate `json:"remote_candidate,omitempty"`
	GatheringComplete bool             `json:"gathering_complete,omitempty"`
	// Extra holds children this model does not know, as they came.
	Extra []jingle.Element `json:"extra,omitempty"`
	// ExtraAttrs holds attributes other than ufrag and pwd.
	ExtraAttrs jingle.Attrs `json:"extra_attrs,omitempty"`

	order []childKind
}

func (t *Transport) space() string {
	if t.XMLName.Space == "" {
		return NSICEUDP
	}
	return t.XMLName.Space
}

// UnmarshalXML implements xml.Unmarshaler. It accepts the element in any
// namespace (NSICEUDP and NSICE0 are the ones in use); children in the
// element's own namespace are the XEP-0176 ones.
func (t *Transport) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	*t = Transport{XMLName: start.Name}
	for _, a := range start.Attr {
		switch {
		case a.Name.Space == "" && a.Name.Local == "ufrag":
			t.Ufrag = a.Value
		case a.Name.Space == "" && a.Name.Local == "pwd":
			t.Pwd = a.Value
		case a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns"):
		default:
			t.ExtraAttrs = append(t.ExtraAttrs, a)
		}
	}
	ns := start.Name.Space
	return jingle.DecodeChildren(d, func(el xml.StartElement) error {
		var kind childKind
		switch {
		case el.Name.Space == NSDTLS && el.Name.Local == "fingerprint":
			var f Fingerprint
			if err := d.DecodeElement(&f, &el); err != nil {
				return err
			}
			t.Fingerprints = append(t.Fingerprints, f)
			kind = kindFingerprint
		case el.Name.Space == NSDTLSSCTP && el.Name.Local == "sctpmap" && t.SCTPMap == nil:
			var m SCTPMap
			if err := d.DecodeElement(&m, &el); err != nil {
				return err
			}
			t.SCTPMap = &m
			kind = kindSCTPMap
		case el.Name.Space == NSWebRTCDataChannel0 && el.Name.Local == "channel":
			var c Channel
			if err := d.DecodeElement(&c, &el); err != nil {
				return err
			}
			t.Channels = append(t.Channels, c)
			kind = kindChannel
		case el.Name.Space == ns && el.Name.Local == "candidate":
			var c Candidate
			if err := d.DecodeElement(&c, &el); err != nil {
				return err
			}
			t.Candidates = append(t.Candidates, c)
			kind = kindCandidate
		case el.Name.Space == ns && el.Name.Local == "remote-candidate" && t.RemoteCandidate == nil:
			var c RemoteCandidate
			if err := d.DecodeElement(&c, &el); err != nil {
				return err
			}
			t.RemoteCandidate = &c
			kind = kindRemoteCandidate
		case el.Name.Space == ns && el.Name.Local == "gathering-complete" && !t.GatheringComplete:
			if err := d.Skip(); err != nil {
				return err
			}
			t.GatheringComplete = true
			kind = kindGatheringComplete
		default:
			var x jingle.Element
			if err := d.DecodeElement(&x, &el); err != nil {
				return err
			}
			t.Extra = append(t.Extra, x)
			kind = kindExtra
		}
		t.order = append(t.order, kind)
		return nil
	})
}

// MarshalXML implements xml.Marshaler. The start argument is ignored.
func (t Transport) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	ns := t.space()
	start := xml.StartElement{Name: xml.Name{Space: ns, Local: "transport"}}
	if t.Pwd != "" {
		start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: "pwd"}, Value: t.Pwd})
	}
	if t.Ufrag != "" {
		start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: "ufrag"}, Value: t.Ufrag})
	}
	start.Attr = append(start.Attr, t.ExtraAttrs...)
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	var idx [kindExtra + 1]int
	emit := func(k childKind) error {
		i := idx[k]
		idx[k]++
		switch k {
		case kindFingerprint:
			return e.Encode(t.Fingerprints[i])
		case kindSCTPMap:
			return e.Encode(t.SCTPMap)
		case kindChannel:
			return e.Encode(t.Channels[i])
		case kindCandidate:
			return e.EncodeElement(t.Candidates[i], xml.StartElement{Name: xml.Name{Space: ns, Local: "candidate"}})
		case kindRemoteCandidate:
			return e.EncodeElement(t.RemoteCandidate, xml.StartElement{Name: xml.Name{Space: ns, Local: "remote-candidate"}})
		case kindGatheringComplete:
			el := xml.StartElement{Name: xml.Name{Space: ns, Local: "gathering-complete"}}
			if err := e.EncodeToken(el); err != nil {
				return err
			}
			return e.EncodeToken(el.End())
		case kindExtra:
			return e.Encode(t.Extra[i])
		}
		return fmt.Errorf("ice: unknown child kind %d", k)
	}
	for _, k := range t.childOrder() {
		if err := emit(k); err != nil {
			return err
		}
	}
	if err := e.EncodeToken(start.End()); err != nil {
		return err
	}
	return e.Flush()
}

// childOrder returns the order in which to write the children: the order
// they were read in when it still matches the content, else field order.
func (t *Transport) childOrder() []childKind {
	var want [kindExtra + 1]int
	want[kindFingerprint] = len(t.Fingerprints)
	if t.SCTPMap != nil {
		want[kindSCTPMap] = 1
	}
	want[kindChannel] = len(t.Channels)
	want[kindCandidate] = len(t.Candidates)
	if t.RemoteCandidate != nil {
		want[kindRemoteCandidate] = 1
	}
	if t.GatheringComplete {
		want[kindGatheringComplete] = 1
	}
	want[kindExtra] = len(t.Extra)
	var have [kindExtra + 1]int
	for _, k := range t.order {
		have[k]++
	}
	if have == want && t.order != nil {
		return t.order
	}
	out := make([]childKind, 0, len(t.Fingerprints)+len(t.Channels)+len(t.Candidates)+len(t.Extra)+3)
	for k := kindFingerprint; k <= kindExtra; k++ {
		for range want[k] {
			out = append(out, k)
		}
	}
	return out
}

// DataChannelTransport is the <transport xmlns='urn:xmpp:jingle:transports:webrtc-datachannel:1'/>
// of Conversations and Libervia: the SCTP port and the largest message the
// sender accepts (SDP a=sctp-port and a=max-message-size), wrapped around
// an ICE-UDP Transport that carries the credentials, fingerprint and
// candidates.
type DataChannelTransport struct {
	XMLName        xml.Name   `xml:"urn:xmpp:jingle:transports:webrtc-datachannel:1 transport" json:"-"`
	SCTPPort       string     `xml:"sctp-port,attr,omitempty" json:"sctp_port,omitempty"`
	MaxMessageSize string     `xml:"max-message-size,attr,omitempty" json:"max_message_size,omitempty"`
	ICE            *Transport `xml:"urn:xmpp:jingle:transports:ice-udp:1 transport" json:"ice,omitempty"`
	// Extra holds any other child.
	Extra []jingle.Element `xml:",any" json:"extra,omitempty"`
}
