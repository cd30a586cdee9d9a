package rtp

import (
	"encoding/xml"
	"fmt"

	"github.com/jinglekit/jinglekit/jingle"
)

// Namespaces of the elements this package reads and writes, and the
// service discovery features it advertises.
const (
	// NS is XEP-0167's <description/> and the RTP application.
	NS = "urn:xmpp:jingle:apps:rtp:1"
	// NSAudio and NSVideo are the disco features of audio and video calls.
	NSAudio = "urn:xmpp:jingle:apps:rtp:audio"
	NSVideo = "urn:xmpp:jingle:apps:rtp:video"
	// NSInfo holds the session-info payloads: active, hold, unhold, mute,
	// unmute, ringing.
	NSInfo = "urn:xmpp:jingle:apps:rtp:info:1"
	// NSErrors holds the RTP-specific reason conditions.
	NSErrors = "urn:xmpp:jingle:apps:rtp:errors:1"
	// NSRTCPFB is XEP-0293's <rtcp-fb/> and <rtcp-fb-trr-int/>.
	NSRTCPFB = "urn:xmpp:jingle:apps:rtp:rtcp-fb:0"
	// NSHdrExt is XEP-0294's <rtp-hdrext/> and <extmap-allow-mixed/>.
	NSHdrExt = "urn:xmpp:jingle:apps:rtp:rtp-hdrext:0"
	// NSGrouping is XEP-0338's <group/>, a child of <jingle/>.
	NSGrouping = "urn:xmpp:jingle:apps:grouping:0"
	// NSSSMA is XEP-0339's <source/> and <ssrc-group/>.
	NSSSMA = "urn:xmpp:jingle:apps:rtp:ssma:0"
	// FeatureGrouping and FeatureSSMA are the disco features of XEP-0338
	// (RFC 5888) and XEP-0339 (RFC 5576).
	FeatureGrouping = "urn:ietf:rfc:5888"
	FeatureSSMA     = "urn:ietf:rfc:5576"
)

// Media types of a description.
const (
	MediaAudio = "audio"
	MediaVideo = "video"
)

// Parameter is a name/value pair: a codec parameter (SDP a=fmtp) inside a
// payload type, an RTCP feedback or header extension parameter, or a
// source attribute (XEP-0339: a=ssrc:<id> name:value). An empty Value is
// written without the value attribute.
type Parameter struct {
	Name  string `xml:"name,attr" json:"name"`
	Value string `xml:"value,attr,omitempty" json:"value,omitempty"`
}

// RTCPFB is XEP-0293's <rtcp-fb/>: an RTCP feedback message (SDP
// a=rtcp-fb), for one payload type when inside <payload-type/>, for all
// when directly in <description/>.
type RTCPFB struct {
	XMLName    xml.Name    `xml:"urn:xmpp:jingle:apps:rtp:rtcp-fb:0 rtcp-fb" json:"-"`
	Type       string      `xml:"type,attr" json:"type"`
	Subtype    string      `xml:"subtype,attr,omitempty" json:"subtype,omitempty"`
	Parameters []Parameter `xml:"urn:xmpp:jingle:apps:rtp:rtcp-fb:0 parameter" json:"parameters,omitempty"`
}

// TrrInt is XEP-0293's <rtcp-fb-trr-int/>: the minimum interval between
// two regular RTCP packets, in milliseconds (SDP a=rtcp-fb:… trr-int).
type TrrInt struct {
	XMLName xml.Name `xml:"urn:xmpp:jingle:apps:rtp:rtcp-fb:0 rtcp-fb-trr-int" json:"-"`
	Value   uint32   `xml:"value,attr" json:"value"`
}

// HdrExt is XEP-0294's <rtp-hdrext/>: an RTP header extension (SDP
// a=extmap).
type HdrExt struct {
	XMLName    xml.Name       `xml:"urn:xmpp:jingle:apps:rtp:rtp-hdrext:0 rtp-hdrext" json:"-"`
	ID         uint16         `xml:"id,attr" json:"id"`
	URI        string         `xml:"uri,attr" json:"uri"`
	Senders    jingle.Senders `xml:"senders,attr,omitempty" json:"senders,omitempty"`
	Parameters []Parameter    `xml:"urn:xmpp:jingle:apps:rtp:rtp-hdrext:0 parameter" json:"parameters,omitempty"`
}

// Source is XEP-0339's <source/>: the attributes of one synchronization
// source (SDP a=ssrc), such as cname and msid.
type Source struct {
	XMLName    xml.Name    `xml:"urn:xmpp:jingle:apps:rtp:ssma:0 source" json:"-"`
	SSRC       uint32      `xml:"ssrc,attr" json:"ssrc"`
	Parameters []Parameter `xml:"urn:xmpp:jingle:apps:rtp:ssma:0 parameter" json:"parameters,omitempty"`
}

// Param returns the value of the source's first parameter named name.
func (s Source) Param(name string) (string, bool) {
	for _, p := range s.Parameters {
		if p.Name == name {
			return p.Value, true
		}
	}
	return "", false
}

// SSRCRef names a source inside an <ssrc-group/>.
type SSRCRef struct {
	SSRC uint32 `xml:"ssrc,attr" json:"ssrc"`
}

// SSRCGroup is XEP-0339's <ssrc-group/> (SDP a=ssrc-group): sources that
// belong together, such as a video stream and its retransmission (FID).
type SSRCGroup struct {
	XMLName   xml.Name  `xml:"urn:xmpp:jingle:apps:rtp:ssma:0 ssrc-group" json:"-"`
	Semantics string    `xml:"semantics,attr" json:"semantics"`
	Sources   []SSRCRef `xml:"urn:xmpp:jingle:apps:rtp:ssma:0 source" json:"sources,omitempty"`
}

// Crypto is one SDES key offer of XEP-0167's <encryption/> (SDP a=crypto).
type Crypto struct {
	CryptoSuite   string `xml:"crypto-suite,attr" json:"crypto_suite"`
	KeyParams     string `xml:"key-params,attr" json:"key_params"`
	SessionParams string `xml:"session-params,attr,omitempty" json:"session_params,omitempty"`
	Tag           string `xml:"tag,attr" json:"tag"`
}

// Encryption is XEP-0167's <encryption/>: SRTP with SDES keys. This
// package carries it for interoperability but never uses it: calls are
// secured with DTLS-SRTP (XEP-0320), whose fingerprint is in the
// transport.
type Encryption struct {
	XMLName  xml.Name `xml:"urn:xmpp:jingle:apps:rtp:1 encryption" json:"-"`
	Required string   `xml:"required,attr,omitempty" json:"required,omitempty"`
	Crypto   []Crypto `xml:"urn:xmpp:jingle:apps:rtp:1 crypto" json:"crypto,omitempty"`
}

// Bandwidth is XEP-0167's <bandwidth/> (SDP b=<type>:<value>).
type Bandwidth struct {
	XMLName xml.Name `xml:"urn:xmpp:jingle:apps:rtp:1 bandwidth" json:"-"`
	Type    string   `xml:"type,attr" json:"type"`
	Value   string   `xml:",chardata" json:"value"`
}

// Group is XEP-0338's <group/>, a child of <jingle/>: contents grouped for
// a purpose (SDP a=group), such as BUNDLE, which carries every content over
// one transport.
type Group struct {
	XMLName   xml.Name       `xml:"urn:xmpp:jingle:apps:grouping:0 group" json:"-"`
	Semantics string         `xml:"semantics,attr" json:"semantics"`
	Contents  []GroupContent `xml:"urn:xmpp:jingle:apps:grouping:0 content" json:"contents,omitempty"`
}

// GroupContent names a content in a Group.
type GroupContent struct {
	Name string `xml:"name,attr" json:"name"`
}

// Names returns the names of the group's contents.
func (g Group) Names() []string {
	out := make([]string, len(g.Contents))
	for i, c := range g.Contents {
		out[i] = c.Name
	}
	return out
}

// SemanticsBundle is the semantics of a BUNDLE group (RFC 8843).
const SemanticsBundle = "BUNDLE"

// childKind names the kinds of children of a Description or PayloadType,
// to keep their order.
type childKind uint8

const (
	kPayloadType childKind = iota + 1
	kParameter
	kRTCPFB
	kTrrInt
	kHdrExt
	kAllowMixed
	kSource
	kSSRCGroup
	kRTCPMux
	kEncryption
	kBandwidth
	kExtra
	kindCount
)

// PayloadType is XEP-0167's <payload-type/>: one codec (SDP a=rtpmap with
// its a=fmtp parameters and, per XEP-0293, its a=rtcp-fb lines).
type PayloadType struct {
	ID        uint8  `json:"id"`
	Name      string `json:"name,omitempty"`
	ClockRate uint32 `json:"clockrate,omitempty"`
	// Channels is 0 when absent (which means 1).
	Channels   uint8       `json:"channels,omitempty"`
	PTime      uint32      `json:"ptime,omitempty"`
	MaxPTime   uint32      `json:"maxptime,omitempty"`
	Parameters []Parameter `json:"parameters,omitempty"`
	RTCPFB     []RTCPFB    `json:"rtcp_fb,omitempty"`
	TrrInt     *TrrInt     `json:"trr_int,omitempty"`
	// Extra holds children this model does not know, as they came.
	Extra      []jingle.Element `json:"extra,omitempty"`
	ExtraAttrs jingle.Attrs     `json:"extra_attrs,omitempty"`

	order []childKind
}

// Param returns the value of the payload type's first parameter named name.
func (p PayloadType) Param(name string) (string, bool) {
	for _, x := range p.Parameters {
		if x.Name == name {
			return x.Value, true
		}
	}
	return "", false
}

// Description is XEP-0167's <description xmlns='urn:xmpp:jingle:apps:rtp:1'/>:
// one RTP stream (an SDP m= section without its transport), with the
// children of XEP-0293 (RTCP feedback), XEP-0294 (header extensions) and
// XEP-0339 (sources). Children it does not know are kept in Extra.
//
// A Description read from XML remembers the order of its children and
// writes them back in that order as long as their numbers did not change;
// one built in code is written in the order of the fields.
type Description struct {
	Media string `json:"media"`
	// SSRC is the deprecated ssrc attribute of XEP-0167, kept as text.
	SSRC             string           `json:"ssrc,omitempty"`
	PayloadTypes     []PayloadType    `json:"payload_types,omitempty"`
	RTCPFB           []RTCPFB         `json:"rtcp_fb,omitempty"`
	TrrInt           *TrrInt          `json:"trr_int,omitempty"`
	HdrExts          []HdrExt         `json:"hdrexts,omitempty"`
	ExtmapAllowMixed bool             `json:"extmap_allow_mixed,omitempty"`
	SSRCGroups       []SSRCGroup      `json:"ssrc_groups,omitempty"`
	Sources          []Source         `json:"sources,omitempty"`
	RTCPMux          bool             `json:"rtcp_mux,omitempty"`
	Encryption       *Encryption      `json:"encryption,omitempty"`
	Bandwidth        []Bandwidth      `json:"bandwidth,omitempty"`
	Extra            []jingle.Element `json:"extra,omitempty"`
	ExtraAttrs       jingle.Attrs     `json:"extra_attrs,omitempty"`

	order []childKind
}

// Element returns the description as a jingle.Element.
func (d Description) Element() jingle.Element {
	el, err := jingle.NewElement(d)
	if err != nil {
		// Every field encodes; this cannot happen.
		panic(err)
	}
	return el
}

// ParseDescription decodes an RTP <description/>.
func ParseDescription(el jingle.Element) (Description, error) {
	if el.XMLName.Space != NS || el.XMLName.Local != "description" {
		return Description{}, fmt.Errorf("rtp: not an RTP description: {%s}%s", el.XMLName.Space, el.XMLName.Local)
	}
	var d Description
	if err := el.Decode(&d); err != nil {
		return Description{}, err
	}
	return d, nil
}

func isNSDecl(a xml.Attr) bool {
	return a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns")
}

func parseUint(s string, bits int, what string) (uint64, error) {
	var v uint64
	if s == "" {
		return 0, fmt.Errorf("rtp: empty %s", what)
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("rtp: bad %s %q", what, s)
		}
		v = v*10 + uint64(c-'0')
		if v>>bits != 0 {
			return 0, fmt.Errorf("rtp: %s %q out of range", what, s)
		}
	}
	return v, nil
}

// UnmarshalXML implements xml.Unmarshaler.
func (p *PayloadType) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	*p = PayloadType{}
	haveID := false
	for _, a := range start.Attr {
		if isNSDecl(a) {
			continue
		}
		var err error
		var v uint64
		switch {
		case a.Name.Space != "":
			p.ExtraAttrs = append(p.ExtraAttrs, a)
		case a.Name.Local == "id":
			v, err = parseUint(a.Value, 8, "payload type id")
			p.ID, haveID = uint8(v), true
		case a.Name.Local == "name":
			p.Name = a.Value
		case a.Name.Local == "clockrate":
			v, err = parseUint(a.Value, 32, "clockrate")
			p.ClockRate = uint32(v)
		case a.Name.Local == "channels":
			v, err = parseUint(a.Value, 8, "channels")
			p.Channels = uint8(v)
		case a.Name.Local == "ptime":
			v, err = parseUint(a.Value, 32, "ptime")
			p.PTime = uint32(v)
		case a.Name.Local == "maxptime":
			v, err = parseUint(a.Value, 32, "maxptime")
			p.MaxPTime = uint32(v)
		default:
			p.ExtraAttrs = append(p.ExtraAttrs, a)
		}
		if err != nil {
			return err
		}
	}
	if !haveID {
		return fmt.Errorf("rtp: payload-type without id")
	}
	return readChildren(d, func(el xml.StartElement) (childKind, error) {
		switch {
		case el.Name.Space == NS && el.Name.Local == "parameter":
			var x Parameter
			if err := d.DecodeElement(&x, &el); err != nil {
				return 0, err
			}
			p.Parameters = append(p.Parameters, x)
			return kParameter, nil
		case el.Name.Space == NSRTCPFB && el.Name.Local == "rtcp-fb":
			var x RTCPFB
			if err := d.DecodeElement(&x, &el); err != nil {
				return 0, err
			}
			p.RTCPFB = append(p.RTCPFB, x)
			return kRTCPFB, nil
		case el.Name.Space == NSRTCPFB && el.Name.Local == "rtcp-fb-trr-int" && p.TrrInt == nil:
			var x TrrInt
			if err := d.DecodeElement(&x, &el); err != nil {
				return 0, err
			}
			p.TrrInt = &x
			return kTrrInt, nil
		}
		var x jingle.Element
		if err := d.DecodeElement(&x, &el); err != nil {
			return 0, err
		}
		p.Extra = append(p.Extra, x)
		return kExtra, nil
	}, &p.order)
}

// readChildren reads the children of the current element until its end,
// calling child for each start tag and recording the kinds it returns.
func readChildren(d *xml.Decoder, child func(xml.StartElement) (childKind, error), order *[]childKind) error {
	return jingle.DecodeChildren(d, func(t xml.StartElement) error {
		k, err := child(t)
		if err != nil {
			return err
		}
		*order = append(*order, k)
		return nil
	})
}

// MarshalXML implements xml.Marshaler. The start argument is ignored.
func (p PayloadType) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	start := xml.StartElement{Name: xml.Name{Space: NS, Local: "payload-type"}}
	attr := func(name, v string) {
		start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: name}, Value: v})
	}
	attr("id", fmt.Sprint(p.ID))
	if p.Name != "" {
		attr("name", p.Name)
	}
	if p.ClockRate != 0 {
		attr("clockrate", fmt.Sprint(p.ClockRate))
	}
	if p.Channels != 0 {
		attr("channels", fmt.Sprint(p.Channels))
	}
	if p.PTime != 0 {
		attr("ptime", fmt.Sprint(p.PTime))
	}
	if p.MaxPTime != 0 {
		attr("maxptime", fmt.Sprint(p.MaxPTime))
	}
	start.Attr = append(start.Attr, p.ExtraAttrs...)
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	var want [kindCount]int
	want[kParameter] = len(p.Parameters)
	want[kRTCPFB] = len(p.RTCPFB)
	if p.TrrInt != nil {
		want[kTrrInt] = 1
	}
	want[kExtra] = len(p.Extra)
	var idx [kindCount]int
	for _, k := range childOrder(p.order, want, []childKind{kParameter, kRTCPFB, kTrrInt, kExtra}) {
		i := idx[k]
		idx[k]++
		var err error
		switch k {
		case kParameter:
			err = e.EncodeElement(p.Parameters[i], xml.StartElement{Name: xml.Name{Space: NS, Local: "parameter"}})
		case kRTCPFB:
			err = e.Encode(p.RTCPFB[i])
		case kTrrInt:
			err = e.Encode(p.TrrInt)
		case kExtra:
			err = e.Encode(p.Extra[i])
		}
		if err != nil {
			return err
		}
	}
	return e.EncodeToken(start.End())
}

// childOrder returns the order in which to write children: the order they
// were read in when it still matches the counts in want, else the kinds
// in fieldOrder.
func childOrder(order []childKind, want [kindCount]int, fieldOrder []childKind) []childKind {
	var have [kindCount]int
	for _, k := range order {
		have[k]++
	}
	if have == want && order != nil {
		return order
	}
	var out []childKind
	for _, k := range fieldOrder {
		for range want[k] {
			out = append(out, k)
		}
	}
	return out
}

// UnmarshalXML implements xml.Unmarshaler.
func (desc *Description) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	*desc = Description{}
	for _, a := range start.Attr {
		switch {
		case isNSDecl(a):
		case a.Name.Space == "" && a.Name.Local == "media":
			desc.Media = a.Value
		case a.Name.Space == "" && a.Name.Local == "ssrc":
			desc.SSRC = a.Value
		default:
			desc.ExtraAttrs = append(desc.ExtraAttrs, a)
		}
	}
	decode := func(v any, el xml.StartElement) error { return d.DecodeElement(v, &el) }
	return readChildren(d, func(el xml.StartElement) (childKind, error) {
		n := el.Name
		switch {
		case n.Space == NS && n.Local == "payload-type":
			var x PayloadType
			if err := decode(&x, el); err != nil {
				return 0, err
			}
			desc.PayloadTypes = append(desc.PayloadTypes, x)
			return kPayloadType, nil
		case n.Space == NSRTCPFB && n.Local == "rtcp-fb":
			var x RTCPFB
			if err := decode(&x, el); err != nil {
				return 0, err
			}
			desc.RTCPFB = append(desc.RTCPFB, x)
			return kRTCPFB, nil
		case n.Space == NSRTCPFB && n.Local == "rtcp-fb-trr-int" && desc.TrrInt == nil:
			var x TrrInt
			if err := decode(&x, el); err != nil {
				return 0, err
			}
			desc.TrrInt = &x
			return kTrrInt, nil
		case n.Space == NSHdrExt && n.Local == "rtp-hdrext":
			var x HdrExt
			if err := decode(&x, el); err != nil {
				return 0, err
			}
			desc.HdrExts = append(desc.HdrExts, x)
			return kHdrExt, nil
		case n.Space == NSHdrExt && n.Local == "extmap-allow-mixed" && !desc.ExtmapAllowMixed:
			if err := d.Skip(); err != nil {
				return 0, err
			}
			desc.ExtmapAllowMixed = true
			return kAllowMixed, nil
		case n.Space == NSSSMA && n.Local == "source":
			var x Source
			if err := decode(&x, el); err != nil {
				return 0, err
			}
			desc.Sources = append(desc.Sources, x)
			return kSource, nil
		case n.Space == NSSSMA && n.Local == "ssrc-group":
			var x SSRCGroup
			if err := decode(&x, el); err != nil {
				return 0, err
			}
			desc.SSRCGroups = append(desc.SSRCGroups, x)
			return kSSRCGroup, nil
		case n.Space == NS && n.Local == "rtcp-mux" && !desc.RTCPMux:
			if err := d.Skip(); err != nil {
				return 0, err
			}
			desc.RTCPMux = true
			return kRTCPMux, nil
		case n.Space == NS && n.Local == "encryption" && desc.Encryption == nil:
			var x Encryption
			if err := decode(&x, el); err != nil {
				return 0, err
			}
			desc.Encryption = &x
			return kEncryption, nil
		case n.Space == NS && n.Local == "bandwidth":
			var x Bandwidth
			if err := decode(&x, el); err != nil {
				return 0, err
			}
			desc.Bandwidth = append(desc.Bandwidth, x)
			return kBandwidth, nil
		}
		var x jingle.Element
		if err := decode(&x, el); err != nil {
			return 0, err
		}
		desc.Extra = append(desc.Extra, x)
		return kExtra, nil
	}, &desc.order)
}

// descFieldOrder is the order of a Description built in code: XEP-0167's
// schema order, with the extensions after the payload types.
var descFieldOrder = []childKind{kPayloadType, kRTCPFB, kTrrInt, kHdrExt, kAllowMixed, kSSRCGroup, kSource, kRTCPMux, kEncryption, kBandwidth, kExtra}

// MarshalXML implements xml.Marshaler. The start argument is ignored.
func (desc Description) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	start := xml.StartElement{Name: xml.Name{Space: NS, Local: "description"}}
	if desc.Media != "" {
		start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: "media"}, Value: desc.Media})
	}
	if desc.SSRC != "" {
		start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: "ssrc"}, Value: desc.SSRC})
	}
	start.Attr = append(start.Attr, desc.ExtraAttrs...)
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	var want [kindCount]int
	want[kPayloadType] = len(desc.PayloadTypes)
	want[kRTCPFB] = len(desc.RTCPFB)
	if desc.TrrInt != nil {
		want[kTrrInt] = 1
	}
	want[kHdrExt] = len(desc.HdrExts)
	if desc.ExtmapAllowMixed {
		want[kAllowMixed] = 1
	}
	want[kSSRCGroup] = len(desc.SSRCGroups)
	want[kSource] = len(desc.Sources)
	if desc.RTCPMux {
		want[kRTCPMux] = 1
	}
	if desc.Encryption != nil {
		want[kEncryption] = 1
	}
	want[kBandwidth] = len(desc.Bandwidth)
	want[kExtra] = len(desc.Extra)
	empty := func(ns, local string) error {
		el := xml.StartElement{Name: xml.Name{Space: ns, Local: local}}
		if err := e.EncodeToken(el); err != nil {
			return err
		}
		return e.EncodeToken(el.End())
	}
	var idx [kindCount]int
	for _, k := range childOrder(desc.order, want, descFieldOrder) {
		i := idx[k]
		idx[k]++
		var err error
		switch k {
		case kPayloadType:
			err = e.Encode(desc.PayloadTypes[i])
		case kRTCPFB:
			err = e.Encode(desc.RTCPFB[i])
		case kTrrInt:
			err = e.Encode(desc.TrrInt)
		case kHdrExt:
			err = e.Encode(desc.HdrExts[i])
		case kAllowMixed:
			err = empty(NSHdrExt, "extmap-allow-mixed")
		case kSSRCGroup:
			err = e.Encode(desc.SSRCGroups[i])
		case kSource:
			err = e.Encode(desc.Sources[i])
		case kRTCPMux:
			err = empty(NS, "rtcp-mux")
		case kEncryption:
			err = e.Encode(desc.Encryption)
		case kBandwidth:
			err = e.Encode(desc.Bandwidth[i])
		case kExtra:
			err = e.Encode(desc.Extra[i])
		}
		if err != nil {
			return err
		}
	}
	if err := e.EncodeToken(start.End()); err != nil {
		return err
	}
	return e.Flush()
}

// Session-info payloads of XEP-0167 §7 (namespace NSInfo).
type (
	// Active says the party is actively participating again.
	Active struct {
		XMLName xml.Name `xml:"urn:xmpp:jingle:apps:rtp:info:1 active" json:"-"`
	}
	// Hold says the party put the call on hold: it neither sends nor
	// plays media until Unhold.
	Hold struct {
		XMLName xml.Name `xml:"urn:xmpp:jingle:apps:rtp:info:1 hold" json:"-"`
	}
	// Unhold ends a hold.
	Unhold struct {
		XMLName xml.Name `xml:"urn:xmpp:jingle:apps:rtp:info:1 unhold" json:"-"`
	}
	// Ringing says the responder's device is ringing.
	Ringing struct {
		XMLName xml.Name `xml:"urn:xmpp:jingle:apps:rtp:info:1 ringing" json:"-"`
	}
	// Mute says the party stopped sending a content (Name) or all
	// (Name empty) of the contents that Creator created.
	Mute struct {
		XMLName xml.Name       `xml:"urn:xmpp:jingle:apps:rtp:info:1 mute" json:"-"`
		Creator jingle.Creator `xml:"creator,attr,omitempty" json:"creator,omitempty"`
		Name    string         `xml:"name,attr,omitempty" json:"name,omitempty"`
	}
	// Unmute ends a Mute.
	Unmute struct {
		XMLName xml.Name       `xml:"urn:xmpp:jingle:apps:rtp:info:1 unmute" json:"-"`
		Creator jingle.Creator `xml:"creator,attr,omitempty" json:"creator,omitempty"`
		Name    string         `xml:"name,attr,omitempty" json:"name,omitempty"`
	}
)

// InfoNames are the session-info payloads this package understands.
var infoNames = map[string]bool{"active": true, "hold": true, "unhold": true, "ringing": true, "mute": true, "unmute": true}

// IsInfo reports whether name is one of XEP-0167's session-info payloads.
func IsInfo(name xml.Name) bool { return name.Space == NSInfo && infoNames[name.Local] }

// RTP-specific reason conditions of XEP-0167 §8 (namespace NSErrors), sent
// next to <security-error/>.
type (
	// CryptoRequired says the party requires encryption and the offer had
	// none.
	CryptoRequired struct {
		XMLName xml.Name `xml:"urn:xmpp:jingle:apps:rtp:errors:1 crypto-required" json:"-"`
	}
	// InvalidCrypto says the offered encryption was not acceptable.
	InvalidCrypto struct {
		XMLName xml.Name `xml:"urn:xmpp:jingle:apps:rtp:errors:1 invalid-crypto" json:"-"`
	}
)

// SecurityError returns the reason this package terminates with when an
// offer lacks what DTLS-SRTP needs: security-error with <crypto-required/>
// (no fingerprint) or <invalid-crypto/> (an unusable one).
func SecurityError(invalid bool, text string) jingle.Reason {
	var cond jingle.Element
	if invalid {
		cond = jingle.MustElement(InvalidCrypto{})
	} else {
		cond = jingle.MustElement(CryptoRequired{})
	}
	return jingle.Reason{Condition: jingle.ReasonSecurityError, Text: text, Extra: []jingle.Element{cond}}
}
