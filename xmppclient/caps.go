package xmppclient

import (
	"cmp"
	"crypto/sha1" // #nosec G505 -- XEP-0115 mandates sha-1 for the ver string.
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"slices"
	"strings"

	"mellium.im/xmlstream"
)

// Namespaces used by this package.
const (
	NSDiscoInfo = "http://jabber.org/protocol/disco#info"
	NSCaps      = "http://jabber.org/protocol/caps"
	NSDataForms = "jabber:x:data"

	nsXML = "http://www.w3.org/XML/1998/namespace"
)

// DefaultNode is the XEP-0115 node URI identifying jinglekit; Caps with an
// empty Node use it.
const DefaultNode = "https://github.com/jinglekit/jinglekit"

// capsHash is the only XEP-0115 hash function this package generates and
// verifies (the IANA name used in the hash attribute).
const capsHash = "sha-1"

// ErrInvalidInfo reports a disco#info result that XEP-0115 §5.4 calls
// ill-formed (duplicate identities, features or extension forms), for which
// no verification string can be computed.
var ErrInvalidInfo = errors.New("xmppclient: ill-formed disco#info result")

// Identity is a service discovery identity (XEP-0030), eg. category "client"
// with type "bot" or "pc".
type Identity struct {
	Category string `xml:"category,attr"`
	Type     string `xml:"type,attr"`
	Name     string `xml:"name,attr,omitempty"`
	Lang     string `xml:"http://www.w3.org/XML/1998/namespace lang,attr,omitempty"`
}

// TokenReader implements xmlstream.Marshaler.
func (i Identity) TokenReader() xml.TokenReader {
	start := xml.StartElement{
		Name: xml.Name{Space: NSDiscoInfo, Local: "identity"},
		Attr: []xml.Attr{
			{Name: xml.Name{Local: "category"}, Value: i.Category},
			{Name: xml.Name{Local: "type"}, Value: i.Type},
		},
	}
	if i.Name != "" {
		start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: "name"}, Value: i.Name})
	}
	if i.Lang != "" {
		start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Space: nsXML, Local: "lang"}, Value: i.Lang})
	}
	return xmlstream.Wrap(nil, start)
}

func compareIdentity(a, b Identity) int {
	return cmp.Or(
		strings.Compare(a.Category, b.Category),
		strings.Compare(a.Type, b.Type),
		strings.Compare(a.Lang, b.Lang),
		strings.Compare(a.Name, b.Name),
	)
}

// Field is a field of a XEP-0004 data form, as used by XEP-0128 extended
// service discovery information.
type Field struct {
	Var    string   `xml:"var,attr,omitempty"`
	Type   string   `xml:"type,attr,omitempty"`
	Values []string `xml:"value"`
}

// Form is a XEP-0004 data form (XEP-0128 service discovery extension) found
// in a disco#info result.
type Form struct {
	Type   string  `xml:"type,attr"`
	Fields []Field `xml:"field"`
}

// TokenReader implements xmlstream.Marshaler.
func (f Form) TokenReader() xml.TokenReader {
	var inner []xml.TokenReader
	for _, field := range f.Fields {
		var values []xml.TokenReader
		for _, v := range field.Values {
			values = append(values, xmlstream.Wrap(
				xmlstream.Token(xml.CharData(v)),
				xml.StartElement{Name: xml.Name{Space: NSDataForms, Local: "value"}},
			))
		}
		start := xml.StartElement{Name: xml.Name{Space: NSDataForms, Local: "field"}}
		if field.Var != "" {
			start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: "var"}, Value: field.Var})
		}
		if field.Type != "" {
			start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: "type"}, Value: field.Type})
		}
		inner = append(inner, xmlstream.Wrap(xmlstream.MultiReader(values...), start))
	}
	return xmlstream.Wrap(xmlstream.MultiReader(inner...), xml.StartElement{
		Name: xml.Name{Space: NSDataForms, Local: "x"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "type"}, Value: f.Type}},
	})
}

// formType returns the value of the form's FORM_TYPE field. ok is false when
// the form has no FORM_TYPE field of type hidden; err is set when the field
// has several different values (XEP-0115 §5.4).
func (f Form) formType() (formType string, ok bool, err error) {
	for _, field := range f.Fields {
		if field.Var != "FORM_TYPE" {
			continue
		}
		if field.Type != "hidden" || len(field.Values) == 0 {
			return "", false, nil
		}
		for _, v := range field.Values[1:] {
			if v != field.Values[0] {
				return "", false, fmt.Errorf("%w: FORM_TYPE with several values", ErrInvalidInfo)
			}
		}
		return field.Values[0], true, nil
	}
	return "", false, nil
}

// Info is the result of a disco#info query (XEP-0030): the identities and
// features of an entity, and any XEP-0128 extension forms.
type Info struct {
	// Node is the node the result is for ("" for the entity itself).
	Node       string
	Identities []Identity
	Features   []string
	Forms      []Form
}

// HasFeature reports whether ns is one of the features.
func (i Info) HasFeature(ns string) bool {
	return slices.Contains(i.Features, ns)
}

// clone returns a deep copy of i, so that cached values are never shared.
func (i Info) clone() Info {
	out := Info{
		Node:       i.Node,
		Identities: slices.Clone(i.Identities),
		Features:   slices.Clone(i.Features),
	}
	for _, f := range i.Forms {
		nf := Form{Type: f.Type}
		for _, field := range f.Fields {
			field.Values = slices.Clone(field.Values)
			nf.Fields = append(nf.Fields, field)
		}
		out.Forms = append(out.Forms, nf)
	}
	return out
}

// TokenReader returns the <query xmlns='http://jabber.org/protocol/disco#info'/>
// element for i.
func (i Info) TokenReader() xml.TokenReader {
	var inner []xml.TokenReader
	for _, id := range i.Identities {
		inner = append(inner, id.TokenReader())
	}
	for _, f := range i.Features {
		inner = append(inner, xmlstream.Wrap(nil, xml.StartElement{
			Name: xml.Name{Space: NSDiscoInfo, Local: "feature"},
			Attr: []xml.Attr{{Name: xml.Name{Local: "var"}, Value: f}},
		}))
	}
	for _, f := range i.Forms {
		inner = append(inner, f.TokenReader())
	}
	return xmlstream.Wrap(xmlstream.MultiReader(inner...), infoQueryStart(i.Node))
}

func infoQueryStart(node string) xml.StartElement {
	start := xml.StartElement{Name: xml.Name{Space: NSDiscoInfo, Local: "query"}}
	if node != "" {
		start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: "node"}, Value: node})
	}
	return start
}

// infoQuery mirrors the wire format of a disco#info result for decoding.
type infoQuery struct {
	XMLName    xml.Name   `xml:"http://jabber.org/protocol/disco#info query"`
	Node       string     `xml:"node,attr,omitempty"`
	Identities []Identity `xml:"identity"`
	Features   []struct {
		Var string `xml:"var,attr"`
	} `xml:"feature"`
	Forms []Form `xml:"jabber:x:data x"`
}

func (q infoQuery) info() Info {
	i := Info{Node: q.Node, Identities: q.Identities, Forms: q.Forms}
	for _, f := range q.Features {
		i.Features = append(i.Features, f.Var)
	}
	return i
}

// ComputeVer returns the XEP-0115 verification string (sha-1, base64) of a
// disco#info result, following XEP-0115 §5.1 and the validity rules of §5.4:
// it returns an error wrapping ErrInvalidInfo when identities, features or
// extension forms are duplicated; extension forms without a hidden
// FORM_TYPE field are ignored.
func ComputeVer(i Info) (string, error) {
	ids := slices.Clone(i.Identities)
	slices.SortFunc(ids, compareIdentity)
	for k := 1; k < len(ids); k++ {
		if ids[k] == ids[k-1] {
			return "", fmt.Errorf("%w: duplicate identity %s/%s", ErrInvalidInfo, ids[k].Category, ids[k].Type)
		}
	}
	features := slices.Clone(i.Features)
	slices.Sort(features)
	for k := 1; k < len(features); k++ {
		if features[k] == features[k-1] {
			return "", fmt.Errorf("%w: duplicate feature %q", ErrInvalidInfo, features[k])
		}
	}

	type extension struct {
		formType string
		fields   []Field
	}
	var exts []extension
	for _, f := range i.Forms {
		formType, ok, err := f.formType()
		if err != nil {
			return "", err
		}
		if !ok {
			continue
		}
		if slices.ContainsFunc(exts, func(e extension) bool { return e.formType == formType }) {
			return "", fmt.Errorf("%w: duplicate extension form %q", ErrInvalidInfo, formType)
		}
		var fields []Field
		for _, field := range f.Fields {
			if field.Var == "FORM_TYPE" {
				continue
			}
			field.Values = slices.Clone(field.Values)
			slices.Sort(field.Values)
			fields = append(fields, field)
		}
		slices.SortFunc(fields, func(a, b Field) int { return strings.Compare(a.Var, b.Var) })
		exts = append(exts, extension{formType: formType, fields: fields})
	}
	slices.SortFunc(exts, func(a, b extension) int { return strings.Compare(a.formType, b.formType) })

	var s strings.Builder
	for _, id := range ids {
		s.WriteString(id.Category + "/" + id.Type + "/" + id.Lang + "/" + id.Name + "<")
	}
	for _, f := range features {
		s.WriteString(f + "<")
	}
	for _, e := range exts {
		s.WriteString(e.formType + "<")
		for _, field := range e.fields {
			s.WriteString(field.Var + "<")
			for _, v := range field.Values {
				s.WriteString(v + "<")
			}
		}
	}
	sum := sha1.Sum([]byte(s.String())) // #nosec G401 -- mandated by XEP-0115.
	return base64.StdEncoding.EncodeToString(sum[:]), nil
}

// Caps describes what this client advertises: its XEP-0115 entity
// capabilities and, from the same data, its disco#info answer. Features
// are plain namespace strings assembled by the caller (for example from
// the Jingle manager).
type Caps struct {
	// Node is the URI identifying the software; DefaultNode if empty.
	Node string
	// Identities of the client; if empty, one identity of category
	// "client" and type "bot" is used. Use type "pc" for a desktop client.
	Identities []Identity
	// Features are the supported namespaces. NSDiscoInfo and NSCaps are
	// always added.
	Features []string
}

// node returns the node URI in use.
func (c Caps) node() string {
	if c.Node == "" {
		return DefaultNode
	}
	return c.Node
}

// Info returns the disco#info answer that Caps stands for: the identities
// (or the default one) and the features plus NSDiscoInfo and NSCaps,
// de-duplicated and sorted. The responder of HandleDisco serves exactly this
// and Ver hashes exactly this.
func (c Caps) Info() Info {
	ids := slices.Clone(c.Identities)
	if len(ids) == 0 {
		ids = []Identity{{Category: "client", Type: "bot"}}
	}
	slices.SortFunc(ids, compareIdentity)
	ids = slices.Compact(ids)

	features := append(slices.Clone(c.Features), NSDiscoInfo, NSCaps)
	slices.Sort(features)
	features = slices.Compact(features)
	return Info{Identities: ids, Features: features}
}

// Ver returns the XEP-0115 verification string of Info().
func (c Caps) Ver() string {
	ver, err := ComputeVer(c.Info())
	if err != nil {
		// Info() removes every duplicate and has no forms.
		panic("xmppclient: caps of normalised info: " + err.Error())
	}
	return ver
}

// CapsNode returns "node#ver", the node a peer queries to learn the
// features behind the caps advertised in presence.
func (c Caps) CapsNode() string {
	return c.node() + "#" + c.Ver()
}

// TokenReader returns the
// <c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='…' ver='…'/>
// element to include in presence.
func (c Caps) TokenReader() xml.TokenReader {
	return xmlstream.Wrap(nil, xml.StartElement{
		Name: xml.Name{Space: NSCaps, Local: "c"},
		Attr: []xml.Attr{
			{Name: xml.Name{Local: "hash"}, Value: capsHash},
			{Name: xml.Name{Local: "node"}, Value: c.node()},
			{Name: xml.Name{Local: "ver"}, Value: c.Ver()},
		},
	})
}
