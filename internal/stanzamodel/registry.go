// Package stanzamodel is a generic model of XMPP stanzas for tools and
// tests: it reads any top-level element, decodes the children it has a
// model for into typed values (a Jingle element into a jingle.Jingle, a
// stanza error into a jingle.Error, and whatever later packages register)
// and keeps every other child as a jingle.Element, exactly as it came. A
// parsed Stanza can be written back as XML with the same infoset, or shown
// as JSON. It is what jinglectl inspect prints and what the XEP vector tests
// round-trip.
//
// # JSON
//
// A Stanza marshals to one JSON object with always the same four keys:
//
//	{
//	  "stanza": "iq",                       // local name of the top-level element
//	  "ns": "jabber:client",                // its namespace
//	  "attrs": {"from": "…", "id": "…"},    // its attributes, in document order
//	  "payload": [                          // its children, in document order
//	    {"type": "jingle", "name": "jingle", "ns": "urn:xmpp:jingle:1", "model": {…}},
//	    {"type": "element", "name": "query", "ns": "http://jabber.org/protocol/disco#info", "element": {…}},
//	    {"type": "text", "text": "…"}
//	  ]
//	}
//
// An attribute without a namespace is keyed by its local name, xml:lang by
// "xml:lang", and any other attribute in a namespace by "namespace local"
// (the convention of jingle.Element's JSON). Namespace declarations are not
// attributes and do not appear.
//
// A payload's "type" is the kind its element was registered with ("jingle",
// "error", …) and then "model" is the typed model in its own JSON form;
// "element" for an element without a model, and then "element" is the
// jingle.Element JSON tree ({"name", "ns", "attrs", "text", "children"});
// or "text" for character data that is not only white space, directly in
// the top-level element. "payload" is [] when there are no children.
package stanzamodel

import (
	"encoding/xml"
	"fmt"

	"github.com/jinglekit/jinglekit/jingle"
)

// Payload kinds that are not registered models.
const (
	// KindElement is the kind of a child element without a registered
	// model; the Payload keeps it in Element.
	KindElement = "element"
	// KindText is the kind of character data directly in a stanza that is
	// not only white space; the Payload keeps it in Text.
	KindText = "text"
)

// Kinds of the models NewDefault registers.
const (
	KindJingle = "jingle"
	KindError  = "error"
)

// NSClient and NSServer are the namespaces of stanzas; unprefixed elements
// that no xmlns declaration covers are in NSClient.
const (
	NSClient = "jabber:client"
	NSServer = "jabber:server"
)

// DecodeFunc decodes one element into a typed model. d is positioned just
// after start and yields exactly the element's content and end tag, as for
// an xml.Unmarshaler. The returned model must marshal back to the element
// with encoding/xml (xml.Marshaler or struct tags), and should be a pointer
// so that type assertions are predictable.
//
// A DecodeFunc should accept any values (an unknown action, a missing
// attribute): checking them is for the protocol layer. It returns an error
// only when the element's structure cannot be represented.
type DecodeFunc func(d *xml.Decoder, start xml.StartElement) (any, error)

// DecodeAs returns a DecodeFunc that decodes the element into a new T with
// xml.Decoder.DecodeElement and returns the *T.
func DecodeAs[T any]() DecodeFunc {
	return func(d *xml.Decoder, start xml.StartElement) (any, error) {
		v := new(T)
		if err := d.DecodeElement(v, &start); err != nil {
			return nil, err
		}
		return v, nil
	}
}

type model struct {
	kind   string
	decode DecodeFunc
}

// Registry maps element names to typed models. Register every model before
// parsing; after that a Registry is safe for concurrent use.
type Registry struct {
	models map[xml.Name]model
}

// NewRegistry returns an empty registry: every child is kept as a
// jingle.Element.
func NewRegistry() *Registry {
	return &Registry{models: map[xml.Name]model{}}
}

// NewDefault returns a new registry that knows the XEP-0166 elements:
// {urn:xmpp:jingle:1}jingle as a *jingle.Jingle (kind "jingle") and the
// <error/> child of a stanza, in jabber:client or jabber:server, as a
// *jingle.Error (kind "error").
func NewDefault() *Registry {
	r := NewRegistry()
	r.Register(xml.Name{Space: jingle.NS, Local: "jingle"}, KindJingle, DecodeAs[jingle.Jingle]())
	r.Register(xml.Name{Space: NSClient, Local: "error"}, KindError, DecodeAs[jingle.Error]())
	r.Register(xml.Name{Space: NSServer, Local: "error"}, KindError, DecodeAs[jingle.Error]())
	return r
}

// Register makes children named name decode with decode, and show as kind
// (a short lower-case word such as "jingle", "ibb-open", "file") in JSON.
// A later registration of the same name replaces the earlier one. Register
// panics if kind is empty or one of KindElement and KindText, if name has no
// local part or if decode is nil: those are programming errors.
func (r *Registry) Register(name xml.Name, kind string, decode DecodeFunc) {
	switch {
	case kind == "" || kind == KindElement || kind == KindText:
		panic(fmt.Sprintf("stanzamodel: Register %s: reserved or empty kind %q", clark(name), kind))
	case name.Local == "":
		panic("stanzamodel: Register: element name without a local part")
	case decode == nil:
		panic(fmt.Sprintf("stanzamodel: Register %s: nil DecodeFunc", clark(name)))
	}
	r.models[name] = model{kind: kind, decode: decode}
}

// Lookup returns the kind and decoder registered for name.
func (r *Registry) Lookup(name xml.Name) (kind string, decode DecodeFunc, ok bool) {
	m, ok := r.models[name]
	return m.kind, m.decode, ok
}

// Decode turns el into a Payload: its typed model if its name is
// registered, else el itself as a KindElement payload. Use it for elements
// the parser does not reach on its own, such as a content's description.
// The error, if any, is a *DecodeError without a position.
func (r *Registry) Decode(el jingle.Element) (Payload, error) {
	m, ok := r.models[el.XMLName]
	if !ok {
		return Payload{Kind: KindElement, Name: el.XMLName, Element: el}, nil
	}
	d := xml.NewTokenDecoder(el.TokenReader())
	tok, err := d.Token()
	if err != nil {
		return Payload{}, &DecodeError{Name: el.XMLName, Kind: m.kind, Err: err}
	}
	v, err := m.decode(d, tok.(xml.StartElement))
	if err != nil {
		return Payload{}, &DecodeError{Name: el.XMLName, Kind: m.kind, Err: err}
	}
	if v == nil {
		return Payload{}, &DecodeError{Name: el.XMLName, Kind: m.kind, Err: fmt.Errorf("decoder returned no model")}
	}
	return Payload{Kind: m.kind, Name: el.XMLName, Model: v}, nil
}

func clark(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return "{" + n.Space + "}" + n.Local
}
