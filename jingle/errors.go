package jingle

import (
	"encoding/xml"
	"errors"
	"fmt"

	"mellium.im/xmpp/stanza"
)

// ErrorCondition is a Jingle-specific error condition, sent inside a stanza
// <error/> in the urn:xmpp:jingle:errors:1 namespace (XEP-0166 §8).
type ErrorCondition string

// The Jingle-specific error conditions.
const (
	ErrOutOfOrder       ErrorCondition = "out-of-order"
	ErrTieBreak         ErrorCondition = "tie-break"
	ErrUnknownSession   ErrorCondition = "unknown-session"
	ErrUnsupportedInfo  ErrorCondition = "unsupported-info"
	ErrSecurityRequired ErrorCondition = "security-required"
)

// Error is a stanza error as it appears in an IQ of type error, with the
// Jingle-specific condition when there is one. It is what the session layer
// answers a bad request with, and what a caller gets (wrapped) when the peer
// refuses one of its requests; errors.Is matches it against an
// ErrorCondition or a mellium stanza.Error.
type Error struct {
	Type      stanza.ErrorType `json:"type"`
	By        string           `json:"by,omitempty"`
	Condition stanza.Condition `json:"condition"`
	// ConditionText is character data inside the condition element, as in
	// <redirect>xmpp:…</redirect> and <gone/>.
	ConditionText string         `json:"condition_text,omitempty"`
	Text          string         `json:"text,omitempty"`
	TextLang      string         `json:"text_lang,omitempty"`
	Jingle        ErrorCondition `json:"jingle,omitempty"`
	// Extra holds other application-specific conditions.
	Extra []Element `json:"extra,omitempty"`
}

// The XMPP condition and type each Jingle condition goes with (XEP-0166 §8).
var jingleConditions = map[ErrorCondition]struct {
	cond stanza.Condition
	typ  stanza.ErrorType
}{
	ErrOutOfOrder:       {stanza.UnexpectedRequest, stanza.Wait},
	ErrTieBreak:         {stanza.Conflict, stanza.Cancel},
	ErrUnknownSession:   {stanza.ItemNotFound, stanza.Cancel},
	ErrUnsupportedInfo:  {stanza.FeatureNotImplemented, stanza.Modify},
	ErrSecurityRequired: {stanza.NotAcceptable, stanza.Cancel},
}

// NewError returns the error XEP-0166 pairs with a Jingle condition, with an
// optional human-readable text.
func NewError(c ErrorCondition, text string) *Error {
	m := jingleConditions[c]
	return &Error{Type: m.typ, Condition: m.cond, Jingle: c, Text: text}
}

// BadRequest returns a bad-request (modify) error with a text saying what is
// wrong.
func BadRequest(format string, args ...any) *Error {
	return &Error{Type: stanza.Modify, Condition: stanza.BadRequest, Text: fmt.Sprintf(format, args...)}
}

// StanzaError returns an error with an XMPP condition and no Jingle one.
func StanzaError(typ stanza.ErrorType, cond stanza.Condition, text string) *Error {
	return &Error{Type: typ, Condition: cond, Text: text}
}

// Error implements error.
func (e *Error) Error() string {
	s := "jingle: " + string(e.Condition)
	if e.Jingle != "" {
		s += " (" + string(e.Jingle) + ")"
	}
	if e.Text != "" {
		s += ": " + e.Text
	}
	return s
}

// Is reports whether target is the same Jingle condition, or a stanza.Error
// whose non-empty fields match.
func (e *Error) Is(target error) bool {
	switch t := target.(type) {
	case ErrorCondition:
		return e.Jingle == t
	case stanza.Error:
		return (t.Condition == "" || t.Condition == e.Condition) && (t.Type == "" || t.Type == e.Type)
	case *Error:
		return t.Condition == e.Condition && t.Jingle == e.Jingle
	}
	return false
}

// Error makes an ErrorCondition usable as an errors.Is target.
func (c ErrorCondition) Error() string { return "jingle: " + string(c) }

// MarshalXML implements xml.Marshaler; it writes the <error/> element.
func (e Error) MarshalXML(enc *xml.Encoder, _ xml.StartElement) error {
	start := xml.StartElement{Name: xml.Name{Local: "error"}}
	if e.Type != "" {
		start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: "type"}, Value: string(e.Type)})
	}
	if e.By != "" {
		start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: "by"}, Value: e.By})
	}
	if err := enc.EncodeToken(start); err != nil {
		return err
	}
	cond := e.Condition
	if cond == "" {
		cond = stanza.UndefinedCondition
	}
	if err := enc.EncodeElement(e.ConditionText, xml.StartElement{Name: xml.Name{Space: stanza.NSError, Local: string(cond)}}); err != nil {
		return err
	}
	if e.Text != "" {
		if err := enc.EncodeElement(xmlText{Lang: e.TextLang, Body: e.Text}, xml.StartElement{Name: xml.Name{Space: stanza.NSError, Local: "text"}}); err != nil {
			return err
		}
	}
	if e.Jingle != "" {
		if err := enc.EncodeElement("", xml.StartElement{Name: xml.Name{Space: NSErrors, Local: string(e.Jingle)}}); err != nil {
			return err
		}
	}
	for _, x := range e.Extra {
		if err := enc.Encode(x); err != nil {
			return err
		}
	}
	return enc.EncodeToken(start.End())
}

// UnmarshalXML implements xml.Unmarshaler for an <error/> element.
func (e *Error) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	for _, a := range start.Attr {
		switch {
		case a.Name.Space == "" && a.Name.Local == "type":
			e.Type = stanza.ErrorType(a.Value)
		case a.Name.Space == "" && a.Name.Local == "by":
			e.By = a.Value
		}
	}
	return DecodeChildren(d, func(t xml.StartElement) error {
		switch {
		case t.Name.Space == stanza.NSError && t.Name.Local == "text":
			var tx xmlText
			if err := d.DecodeElement(&tx, &t); err != nil {
				return err
			}
			e.Text, e.TextLang = tx.Body, tx.Lang
		case t.Name.Space == stanza.NSError && e.Condition == "":
			var body string
			if err := d.DecodeElement(&body, &t); err != nil {
				return err
			}
			e.Condition = stanza.Condition(t.Name.Local)
			e.ConditionText = body
		case t.Name.Space == NSErrors && e.Jingle == "":
			if err := d.Skip(); err != nil {
				return err
			}
			e.Jingle = ErrorCondition(t.Name.Local)
		default:
			var x Element
			if err := d.DecodeElement(&x, &t); err != nil {
				return err
			}
			e.Extra = append(e.Extra, x)
		}
		return nil
	})
}

// asError converts any error into the *Error to answer a request with.
func asError(err error) *Error {
	var je *Error
	if errors.As(err, &je) {
		return je
	}
	var se stanza.Error
	if errors.As(err, &se) {
		return &Error{Type: se.Type, Condition: se.Condition}
	}
	return &Error{Type: stanza.Cancel, Condition: stanza.UndefinedCondition, Text: err.Error()}
}
