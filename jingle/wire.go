package jingle

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
)

// Namespaces defined by XEP-0166.
const (
	NS       = "urn:xmpp:jingle:1"        // the <jingle/> element and disco feature
	NSErrors = "urn:xmpp:jingle:errors:1" // Jingle-specific error conditions
)

// Action is the value of the 'action' attribute of <jingle/>.
type Action string

// The actions of XEP-0166 §7.2.
const (
	ActionContentAccept    Action = "content-accept"
	ActionContentAdd       Action = "content-add"
	ActionContentModify    Action = "content-modify"
	ActionContentReject    Action = "content-reject"
	ActionContentRemove    Action = "content-remove"
	ActionDescriptionInfo  Action = "description-info"
	ActionSecurityInfo     Action = "security-info"
	ActionSessionAccept    Action = "session-accept"
	ActionSessionInfo      Action = "session-info"
	ActionSessionInitiate  Action = "session-initiate"
	ActionSessionTerminate Action = "session-terminate"
	ActionTransportAccept  Action = "transport-accept"
	ActionTransportInfo    Action = "transport-info"
	ActionTransportReject  Action = "transport-reject"
	ActionTransportReplace Action = "transport-replace"
)

// Valid reports whether a is one of the actions XEP-0166 defines.
func (a Action) Valid() bool {
	switch a {
	case ActionContentAccept, ActionContentAdd, ActionContentModify, ActionContentReject,
		ActionContentRemove, ActionDescriptionInfo, ActionSecurityInfo, ActionSessionAccept,
		ActionSessionInfo, ActionSessionInitiate, ActionSessionTerminate, ActionTransportAccept,
		ActionTransportInfo, ActionTransportReject, ActionTransportReplace:
		return true
	}
	return false
}

// Creator says which party generated a content: "initiator" or "responder".
type Creator string

// Creators.
const (
	CreatorInitiator Creator = "initiator"
	CreatorResponder Creator = "responder"
)

// Valid reports whether c is a defined creator value.
func (c Creator) Valid() bool { return c == CreatorInitiator || c == CreatorResponder }

// Senders says which parties send data for a content. The empty value means
// the default, "both".
type Senders string

// Senders values.
const (
	SendersBoth      Senders = "both"
	SendersInitiator Senders = "initiator"
	SendersResponder Senders = "responder"
	SendersNone      Senders = "none"
)

// Valid reports whether s is empty (the default) or a defined value.
func (s Senders) Valid() bool {
	switch s {
	case "", SendersBoth, SendersInitiator, SendersResponder, SendersNone:
		return true
	}
	return false
}

// Jingle is the <jingle xmlns='urn:xmpp:jingle:1'/> element: one action on
// one session.
type Jingle struct {
	XMLName   xml.Name  `xml:"urn:xmpp:jingle:1 jingle" json:"-"`
	Action    Action    `xml:"action,attr,omitempty" json:"action"`
	Initiator string    `xml:"initiator,attr,omitempty" json:"initiator,omitempty"`
	Responder string    `xml:"responder,attr,omitempty" json:"responder,omitempty"`
	SID       string    `xml:"sid,attr,omitempty" json:"sid"`
	Contents  []Content `xml:"urn:xmpp:jingle:1 content" json:"contents,omitempty"`
	Reason    *Reason   `xml:"urn:xmpp:jingle:1 reason" json:"reason,omitempty"`
	// Info holds every other child: session-info payloads (ringing, hold,
	// checksum…), grouping elements and anything not modelled here, in
	// document order.
	Info []Element `xml:",any" json:"info,omitempty"`
	// ExtraAttrs holds attributes not modelled here, so that they survive a
	// round trip.
	ExtraAttrs Attrs `xml:",any,attr" json:"extra_attrs,omitempty"`
}

// UnmarshalXML implements xml.Unmarshaler; it keeps unknown attributes but
// not namespace declarations.
func (j *Jingle) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	type plain Jingle
	var p plain
	if err := d.DecodeElement(&p, &start); err != nil {
		return err
	}
	p.ExtraAttrs = cleanAttrs(p.ExtraAttrs)
	*j = Jingle(p)
	return nil
}

// Content is one <content/>: an application (description) paired with a
// transport, and optionally a security precondition.
type Content struct {
	Creator     Creator  `xml:"creator,attr,omitempty" json:"creator,omitempty"`
	Disposition string   `xml:"disposition,attr,omitempty" json:"disposition,omitempty"`
	Name        string   `xml:"name,attr,omitempty" json:"name"`
	Senders     Senders  `xml:"senders,attr,omitempty" json:"senders,omitempty"`
	Description *Element `xml:"description" json:"description,omitempty"`
	Transport   *Element `xml:"transport" json:"transport,omitempty"`
	Security    *Element `xml:"security" json:"security,omitempty"`
	// Extra holds any other child elements.
	Extra []Element `xml:",any" json:"extra,omitempty"`
	// ExtraAttrs holds attributes not modelled here.
	ExtraAttrs Attrs `xml:",any,attr" json:"extra_attrs,omitempty"`
}

// UnmarshalXML implements xml.Unmarshaler; it keeps unknown attributes but
// not namespace declarations.
func (c *Content) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	type plain Content
	var p plain
	if err := d.DecodeElement(&p, &start); err != nil {
		return err
	}
	p.ExtraAttrs = cleanAttrs(p.ExtraAttrs)
	*c = Content(p)
	return nil
}

// Attrs are attributes kept as they came. In JSON they are an object keyed
// by "namespace local" (or just "local").
type Attrs []xml.Attr

// MarshalJSON implements json.Marshaler.
func (a Attrs) MarshalJSON() ([]byte, error) {
	m := make(map[string]string, len(a))
	for _, at := range a {
		k := at.Name.Local
		if at.Name.Space != "" {
			k = at.Name.Space + " " + k
		}
		m[k] = at.Value
	}
	return json.Marshal(m)
}

// ContentKey identifies a content within a session: XEP-0166 makes the pair
// (creator, name) unique.
type ContentKey struct {
	Creator Creator
	Name    string
}

// Key returns the content's (creator, name) pair, with the default creator
// "initiator" filled in.
func (c Content) Key() ContentKey {
	cr := c.Creator
	if cr == "" {
		cr = CreatorInitiator
	}
	return ContentKey{Creator: cr, Name: c.Name}
}

// ReasonCondition is the condition element inside <reason/>.
type ReasonCondition string

// The reason conditions of XEP-0166 §7.4.
const (
	ReasonAlternativeSession      ReasonCondition = "alternative-session"
	ReasonBusy                    ReasonCondition = "busy"
	ReasonCancel                  ReasonCondition = "cancel"
	ReasonConnectivityError       ReasonCondition = "connectivity-error"
	ReasonDecline                 ReasonCondition = "decline"
	ReasonExpired                 ReasonCondition = "expired"
	ReasonFailedApplication       ReasonCondition = "failed-application"
	ReasonFailedTransport         ReasonCondition = "failed-transport"
	ReasonGeneralError            ReasonCondition = "general-error"
	ReasonGone                    ReasonCondition = "gone"
	ReasonIncompatibleParameters  ReasonCondition = "incompatible-parameters"
	ReasonMediaError              ReasonCondition = "media-error"
	ReasonSecurityError           ReasonCondition = "security-error"
	ReasonSuccess                 ReasonCondition = "success"
	ReasonTimeout                 ReasonCondition = "timeout"
	ReasonUnsupportedApplications ReasonCondition = "unsupported-applications"
	ReasonUnsupportedTransports   ReasonCondition = "unsupported-transports"
)

// Valid reports whether c is a condition XEP-0166 defines.
func (c ReasonCondition) Valid() bool {
	switch c {
	case ReasonAlternativeSession, ReasonBusy, ReasonCancel, ReasonConnectivityError,
		ReasonDecline, ReasonExpired, ReasonFailedApplication, ReasonFailedTransport,
		ReasonGeneralError, ReasonGone, ReasonIncompatibleParameters, ReasonMediaError,
		ReasonSecurityError, ReasonSuccess, ReasonTimeout, ReasonUnsupportedApplications,
		ReasonUnsupportedTransports:
		return true
	}
	return false
}

// Reason is the <reason/> element: a condition, optional human-readable
// text, and optional application-specific detail.
type Reason struct {
	Condition ReasonCondition `json:"condition"`
	// SID is the alternative session's id, for alternative-session.
	SID      string `json:"sid,omitempty"`
	Text     string `json:"text,omitempty"`
	TextLang string `json:"text_lang,omitempty"`
	// Extra holds children in other namespaces (application-specific
	// detail, e.g. a file-transfer or RTP condition).
	Extra []Element `json:"extra,omitempty"`
}

// Error makes a Reason usable as an error: a session that ended with a
// reason other than success reports it this way.
func (r *Reason) Error() string {
	if r.Text != "" {
		return fmt.Sprintf("jingle: %s: %s", r.Condition, r.Text)
	}
	return "jingle: " + string(r.Condition)
}

type xmlText struct {
	Lang string `xml:"http://www.w3.org/XML/1998/namespace lang,attr,omitempty"`
	Body string `xml:",chardata"`
}

// MarshalXML implements xml.Marshaler.
func (r Reason) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	start := xml.StartElement{Name: xml.Name{Space: NS, Local: "reason"}}
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	if r.Condition != "" {
		cond := xml.StartElement{Name: xml.Name{Space: NS, Local: string(r.Condition)}}
		if err := e.EncodeToken(cond); err != nil {
			return err
		}
		if r.SID != "" {
			if err := e.EncodeElement(r.SID, xml.StartElement{Name: xml.Name{Space: NS, Local: "sid"}}); err != nil {
				return err
			}
		}
		if err := e.EncodeToken(cond.End()); err != nil {
			return err
		}
	}
	if r.Text != "" {
		if err := e.EncodeElement(xmlText{Lang: r.TextLang, Body: r.Text}, xml.StartElement{Name: xml.Name{Space: NS, Local: "text"}}); err != nil {
			return err
		}
	}
	for _, x := range r.Extra {
		if err := e.Encode(x); err != nil {
			return err
		}
	}
	return e.EncodeToken(start.End())
}

// UnmarshalXML implements xml.Unmarshaler. The first child in the Jingle
// namespace other than <text/> is the condition; children in other
// namespaces go to Extra.
func (r *Reason) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	return DecodeChildren(d, func(t xml.StartElement) error {
		switch {
		case t.Name.Space == NS && t.Name.Local == "text":
			var tx xmlText
			if err := d.DecodeElement(&tx, &t); err != nil {
				return err
			}
			r.Text, r.TextLang = tx.Body, tx.Lang
		case t.Name.Space == NS && r.Condition == "":
			var cond struct {
				SID string `xml:"urn:xmpp:jingle:1 sid"`
			}
			if err := d.DecodeElement(&cond, &t); err != nil {
				return err
			}
			r.Condition = ReasonCondition(t.Name.Local)
			r.SID = cond.SID
		default:
			var x Element
			if err := d.DecodeElement(&x, &t); err != nil {
				return err
			}
			r.Extra = append(r.Extra, x)
		}
		return nil
	})
}
