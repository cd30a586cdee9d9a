package jingle

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode"
)

// Element is an XML element that the session layer carries without
// interpreting it: an application's <description/>, a transport's
// <transport/>, a <security/> precondition, a session-info payload or an
// unknown child. It keeps the element as it came — name, attributes, child
// elements and text — so that it can be re-sent unchanged, decoded later by
// the plug-in that understands its namespace, or shown by jinglectl inspect.
//
// Namespace declarations are not kept as attributes: they are implied by the
// namespaces of the element and attribute names, which is what an XML
// infoset compares.
//
// An Element read by UnmarshalXML or made by NewElement keeps what is
// between its tags in a compact encoding, a fraction of the memory of
// the tokens; Tokens, TokenReader, Decode and MarshalXML read it.
type Element struct {
	XMLName xml.Name
	Attr    []xml.Attr
	// Inner holds the tokens between the start and end tags of an Element
	// built from tokens. It is nil in an Element read by UnmarshalXML or
	// made by NewElement (see Tokens); when set, it is what the Element
	// holds.
	Inner []xml.Token

	// enc is what is between the tags, encoded (see encodeToken), when
	// Inner is nil.
	enc []byte
}

// NewElement encodes v (a value with encoding/xml tags or an xml.Marshaler)
// into an Element.
func NewElement(v any) (Element, error) {
	var buf bytes.Buffer
	if err := xml.NewEncoder(&buf).Encode(v); err != nil {
		return Element{}, fmt.Errorf("jingle: encoding element: %w", err)
	}
	var e Element
	if err := xml.Unmarshal(buf.Bytes(), &e); err != nil {
		return Element{}, fmt.Errorf("jingle: re-reading element: %w", err)
	}
	return e, nil
}

// MustElement is NewElement for values known to encode; it panics otherwise.
// Use it only with constant, program-built values.
func MustElement(v any) Element {
	e, err := NewElement(v)
	if err != nil {
		panic(err)
	}
	return e
}

// IsZero reports whether e is the zero Element (no element at all).
func (e Element) IsZero() bool { return e.XMLName.Local == "" }

// Namespace returns the element's namespace.
func (e Element) Namespace() string { return e.XMLName.Space }

// AttrValue returns the value of the attribute with the given local name and
// no namespace, and whether it was present.
func (e Element) AttrValue(local string) (string, bool) {
	for _, a := range e.Attr {
		if a.Name.Space == "" && a.Name.Local == local {
			return a.Value, true
		}
	}
	return "", false
}

// Start returns the element's start tag.
func (e Element) Start() xml.StartElement {
	return xml.StartElement{Name: e.XMLName, Attr: e.Attr}
}

// Decode unmarshals the element into v, a value with encoding/xml tags
// (",innerxml" fields stay empty: the element is decoded from its tokens,
// not from text).
func (e Element) Decode(v any) error {
	if err := xml.NewTokenDecoder(e.TokenReader()).Decode(v); err != nil {
		return fmt.Errorf("jingle: decoding <%s xmlns='%s'>: %w", e.XMLName.Local, e.XMLName.Space, err)
	}
	return nil
}

// Tokens returns the tokens between the element's start and end tags: a
// copy of Inner, or those decoded from the compact form.
func (e Element) Tokens() []xml.Token {
	if e.Inner != nil || e.enc == nil {
		return slices.Clone(e.Inner)
	}
	var toks []xml.Token
	r := encReader{b: e.enc, stack: []xml.Name{e.XMLName}}
	for {
		t, err := r.Token()
		if err != nil {
			return toks
		}
		toks = append(toks, t)
	}
}

// TokenReader returns the element as a stream of tokens.
func (e Element) TokenReader() xml.TokenReader {
	var inner xml.TokenReader
	if e.Inner != nil || e.enc == nil {
		inner = &sliceReader{toks: e.Inner}
	} else {
		inner = &encReader{b: e.enc, stack: []xml.Name{e.XMLName}}
	}
	return &elementReader{start: e.Start(), inner: inner}
}

// elementReader yields start, the tokens of inner, then the end tag.
type elementReader struct {
	start xml.StartElement
	inner xml.TokenReader
	state int // 0: start next, 1: inner, 2: done
}

func (r *elementReader) Token() (xml.Token, error) {
	switch r.state {
	case 0:
		r.state = 1
		return r.start, nil
	case 1:
		t, err := r.inner.Token()
		if err == io.EOF {
			r.state = 2
			return xml.EndElement{Name: r.start.Name}, nil
		}
		if err != nil {
			return nil, err
		}
		return t, nil
	}
	return nil, io.EOF
}

// String returns the element serialized as XML.
func (e Element) String() string {
	b, err := xml.Marshal(e)
	if err != nil {
		return fmt.Sprintf("<!-- %v -->", err)
	}
	return string(b)
}

// ValidName reports whether local is an XML name without a colon (an
// NCName), such as an element may have. encoding/xml reads a prefixed
// name without checking the part after the colon ("<a:0/>"), and would
// write it back as is: what is not valid must not be kept, since it could
// not be written again.
func ValidName(local string) bool {
	if local == "" {
		return false
	}
	for i, r := range local {
		switch {
		case r == '_' || unicode.IsLetter(r):
		case i > 0 && (r == '-' || r == '.' || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Mc, r) || r == '\u00b7'):
		default:
			return false
		}
	}
	return true
}

// UnmarshalXML implements xml.Unmarshaler. An element or attribute whose
// name is not a valid XML name (see ValidName) is an error.
func (e *Element) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	if err := checkNames(start); err != nil {
		return err
	}
	e.XMLName = start.Name
	e.Attr = cleanAttrs(start.Attr)
	e.Inner = nil
	var w encWriter
	w.stack = append(w.stack, start.Name.Space)
	for {
		tok, err := d.Token()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if err := checkNames(t); err != nil {
				return err
			}
			w.start(t)
		case xml.EndElement:
			if len(w.stack) == 1 {
				e.enc = slices.Clone(w.b) // exactly its size
				return nil
			}
			w.end()
		case xml.CharData:
			w.text(t)
		case xml.Comment, xml.ProcInst, xml.Directive:
			// Not part of what a peer means; dropped.
		}
	}
}

// MarshalXML implements xml.Marshaler. The start argument is ignored: an
// Element always carries its own name. An element in no namespace is
// written with xmlns="", so that it does not fall into the namespace of
// the element around it when read again.
func (e Element) MarshalXML(enc *xml.Encoder, _ xml.StartElement) error {
	if e.IsZero() {
		return nil
	}
	r := e.TokenReader()
	for {
		tok, err := r.Token()
		if err == io.EOF {
			return enc.Flush()
		}
		if err != nil {
			return err
		}
		if t, ok := tok.(xml.StartElement); ok && t.Name.Space == "" {
			tok = undeclareDefault(t)
		}
		if err := enc.EncodeToken(tok); err != nil {
			return err
		}
	}
}

// checkNames refuses a start tag with an element or attribute name that
// is not a valid XML name.
func checkNames(t xml.StartElement) error {
	if !ValidName(t.Name.Local) {
		return fmt.Errorf("jingle: invalid element name %.64q", t.Name.Local)
	}
	for _, a := range t.Attr {
		if !ValidName(a.Name.Local) {
			return fmt.Errorf("jingle: invalid attribute name %.64q", a.Name.Local)
		}
	}
	return nil
}

// undeclareDefault adds xmlns="" to the start tag of an element in no
// namespace.
func undeclareDefault(t xml.StartElement) xml.StartElement {
	for _, a := range t.Attr {
		if a.Name.Space == "" && a.Name.Local == "xmlns" {
			return t
		}
	}
	attrs := make([]xml.Attr, 0, len(t.Attr)+1)
	attrs = append(attrs, xml.Attr{Name: xml.Name{Local: "xmlns"}, Value: ""})
	t.Attr = append(attrs, t.Attr...)
	return t
}

// DecodeChildren reads the children of the element whose start tag d has
// just returned, up to and including its end tag, calling child with each
// child's start tag; child must consume that child (DecodeElement or Skip).
// Text between the children is ignored. Input that ends before the end tag
// is io.ErrUnexpectedEOF. It is the loop of a custom UnmarshalXML that
// sorts children by name.
func DecodeChildren(d *xml.Decoder, child func(start xml.StartElement) error) error {
	for {
		tok, err := d.Token()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return nil
		case xml.StartElement:
			if err := child(t); err != nil {
				return err
			}
		}
	}
}

// jsonElement is the JSON form of an Element, for jinglectl inspect.
type jsonElement struct {
	Name     string            `json:"name"`
	NS       string            `json:"ns,omitempty"`
	Attrs    map[string]string `json:"attrs,omitempty"`
	Text     string            `json:"text,omitempty"`
	Children []jsonElement     `json:"children,omitempty"`
}

// MarshalJSON renders the element as a tree of {name, ns, attrs, text,
// children}; whitespace-only text is left out.
func (e Element) MarshalJSON() ([]byte, error) {
	if e.IsZero() {
		return []byte("null"), nil
	}
	root, _ := toJSONTree(e.Start(), e.Tokens())
	return json.Marshal(root)
}

func toJSONTree(start xml.StartElement, inner []xml.Token) (jsonElement, int) {
	je := jsonElement{Name: start.Name.Local, NS: start.Name.Space}
	for _, a := range start.Attr {
		if je.Attrs == nil {
			je.Attrs = map[string]string{}
		}
		k := a.Name.Local
		if a.Name.Space != "" {
			k = a.Name.Space + " " + k
		}
		je.Attrs[k] = a.Value
	}
	var text strings.Builder
	i := 0
	for i < len(inner) {
		switch t := inner[i].(type) {
		case xml.StartElement:
			child, n := toJSONTree(t, inner[i+1:])
			je.Children = append(je.Children, child)
			i += n + 1
			continue
		case xml.EndElement:
			je.Text = strings.TrimSpace(text.String())
			return je, i + 1
		case xml.CharData:
			text.Write(t)
		}
		i++
	}
	je.Text = strings.TrimSpace(text.String())
	return je, i
}

// cleanAttrs drops namespace declarations, which the names already carry.
func cleanAttrs(attrs []xml.Attr) []xml.Attr {
	out := make([]xml.Attr, 0, len(attrs))
	for _, a := range attrs {
		if isNSDecl(a) {
			continue
		}
		out = append(out, a)
	}
	return out
}

type sliceReader struct {
	toks []xml.Token
	i    int
}

func (r *sliceReader) Token() (xml.Token, error) {
	if r.i >= len(r.toks) {
		return nil, io.EOF
	}
	t := r.toks[r.i]
	r.i++
	return t, nil
}
