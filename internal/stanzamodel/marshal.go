package stanzamodel

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jinglekit/jinglekit/internal/xmlscope"
)

// MarshalXML implements xml.Marshaler: it writes the start tag as it came,
// then each payload (a typed model with encoding/xml, an Element token by
// token, text as character data), then the end tag. The start argument is
// ignored. The output of encoding/xml repeats namespace declarations; use
// Marshal or MarshalIndent for tidy XML.
func (s Stanza) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	if s.Name.Local == "" {
		return fmt.Errorf("stanzamodel: stanza without a name")
	}
	start := xml.StartElement{Name: s.Name, Attr: s.Attr}
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	for i, p := range s.Payload {
		if err := p.encode(e); err != nil {
			return fmt.Errorf("stanzamodel: payload %d of <%s>: %w", i, s.Name.Local, err)
		}
	}
	return e.EncodeToken(start.End())
}

func (p Payload) encode(e *xml.Encoder) error {
	switch p.Kind {
	case KindText:
		return e.EncodeToken(xml.CharData(p.Text))
	case KindElement:
		return e.Encode(p.Element)
	}
	if p.Model == nil {
		return fmt.Errorf("%s payload without a model", p.Kind)
	}
	if p.Name.Local == "" {
		return e.Encode(p.Model)
	}
	// The element's own name, in case the model's type does not carry it.
	return e.EncodeElement(p.Model, xml.StartElement{Name: p.Name})
}

// Marshal returns s as XML that has the same infoset as the input it was
// parsed from: each namespace is declared once where it starts, white space
// between elements is dropped, character data is kept as it is.
func Marshal(s *Stanza) ([]byte, error) {
	return marshal(s, "", "")
}

// MarshalIndent is like Marshal but puts each element that only contains
// elements on its own lines, indented with prefix and indent as in
// json.MarshalIndent. Elements with character data are written on one line,
// so that no text changes.
func MarshalIndent(s *Stanza, prefix, indent string) ([]byte, error) {
	return marshal(s, prefix, indent)
}

// String returns the stanza as compact XML, or an XML comment with the
// error if it cannot be marshalled.
func (s *Stanza) String() string {
	b, err := Marshal(s)
	if err != nil {
		return fmt.Sprintf("<!-- %v -->", err)
	}
	return string(b)
}

func marshal(s *Stanza, prefix, indent string) ([]byte, error) {
	root, err := s.tree()
	if err != nil {
		return nil, err
	}
	w := &writer{prefix: prefix, indent: indent, pretty: prefix != "" || indent != ""}
	w.element(root, "", nil, 0, w.pretty)
	return w.buf.Bytes(), nil
}

// node is an element of the tree the writer writes. Children are *node or
// string (character data).
type node struct {
	name     xml.Name
	attr     []xml.Attr
	children []any
}

// tree builds the stanza's tree. An Element's tokens are used as they are,
// so that a child in no namespace (xmlns=”) stays there; a model is
// encoded with encoding/xml and read back with the stanza's namespace as
// the default, since models such as jingle.Error leave their names
// unqualified to take the stanza's namespace.
func (s *Stanza) tree() (*node, error) {
	if s.Name.Local == "" {
		return nil, fmt.Errorf("stanzamodel: stanza without a name")
	}
	root := &node{name: s.Name, attr: cleanAttrs(s.Attr)}
	for i, p := range s.Payload {
		var (
			n   *node
			err error
		)
		switch p.Kind {
		case KindText:
			root.addText(p.Text)
			continue
		case KindElement:
			if p.Element.IsZero() {
				return nil, fmt.Errorf("stanzamodel: payload %d of <%s>: element payload without an element", i, s.Name.Local)
			}
			n, err = readTree(p.Element.TokenReader())
		default:
			var b bytes.Buffer
			e := xml.NewEncoder(&b)
			if err = p.encode(e); err == nil {
				err = e.Close()
			}
			if err == nil {
				d := xml.NewDecoder(&b)
				d.DefaultSpace = s.Name.Space
				n, err = readTree(d)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("stanzamodel: payload %d (%s) of <%s>: %w", i, p.Kind, s.Name.Local, err)
		}
		root.children = append(root.children, n)
	}
	return root, nil
}

func (n *node) addText(s string) {
	if k := len(n.children); k > 0 {
		if prev, ok := n.children[k-1].(string); ok {
			n.children[k-1] = prev + s
			return
		}
	}
	n.children = append(n.children, s)
}

// readTree reads one element from r.
func readTree(r xml.TokenReader) (*node, error) {
	var stack []*node
	var root *node
	for {
		tok, err := r.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n := &node{name: t.Name, attr: cleanAttrs(t.Attr)}
			if len(stack) == 0 {
				if root != nil {
					return nil, fmt.Errorf("several elements")
				}
				root = n
			} else {
				parent := stack[len(stack)-1]
				parent.children = append(parent.children, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			if len(stack) == 0 {
				return nil, fmt.Errorf("unexpected end tag </%s>", t.Name.Local)
			}
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].addText(string(t))
			}
		}
	}
	if root == nil {
		return nil, fmt.Errorf("no element")
	}
	if len(stack) != 0 {
		return nil, io.ErrUnexpectedEOF
	}
	return root, nil
}

type writer struct {
	buf            bytes.Buffer
	prefix, indent string
	pretty         bool
	nextPrefix     int
}

// binding is a prefix the writer declared for attributes in a namespace.
type binding struct {
	prefix, uri string
	up          *binding
}

func (b *binding) lookup(uri string) (string, bool) {
	for ; b != nil; b = b.up {
		if b.uri == uri {
			return b.prefix, true
		}
	}
	return "", false
}

// element writes n. defaultNS is the default namespace in scope; pretty
// says whether n starts on its own indented line.
func (w *writer) element(n *node, defaultNS string, scope *binding, depth int, pretty bool) {
	if pretty {
		if depth > 0 || w.buf.Len() > 0 {
			w.buf.WriteByte('\n')
		}
		w.buf.WriteString(w.prefix)
		w.buf.WriteString(strings.Repeat(w.indent, depth))
	}
	w.buf.WriteByte('<')
	w.buf.WriteString(n.name.Local)
	if n.name.Space != defaultNS {
		w.attr("xmlns", n.name.Space)
	}
	for _, a := range n.attr {
		switch a.Name.Space {
		case "":
			w.attr(a.Name.Local, a.Value)
		case xmlscope.NSXML:
			w.attr("xml:"+a.Name.Local, a.Value)
		default:
			p, ok := scope.lookup(a.Name.Space)
			if !ok {
				w.nextPrefix++
				p = "ns" + strconv.Itoa(w.nextPrefix)
				scope = &binding{prefix: p, uri: a.Name.Space, up: scope}
				w.attr("xmlns:"+p, a.Name.Space)
			}
			w.attr(p+":"+a.Name.Local, a.Value)
		}
	}
	if len(n.children) == 0 {
		w.buf.WriteString("/>")
		return
	}
	// Element-only content: white space between children is not content.
	elementOnly, hasElement := true, false
	for _, c := range n.children {
		switch c := c.(type) {
		case *node:
			hasElement = true
		case string:
			if strings.TrimSpace(c) != "" {
				elementOnly = false
			}
		}
	}
	elementOnly = elementOnly && hasElement
	w.buf.WriteByte('>')
	for _, c := range n.children {
		switch c := c.(type) {
		case *node:
			w.element(c, n.name.Space, scope, depth+1, pretty && elementOnly)
		case string:
			if !elementOnly {
				writeText(&w.buf, c)
			}
		}
	}
	if pretty && elementOnly {
		w.buf.WriteByte('\n')
		w.buf.WriteString(w.prefix)
		w.buf.WriteString(strings.Repeat(w.indent, depth))
	}
	w.buf.WriteString("</")
	w.buf.WriteString(n.name.Local)
	w.buf.WriteByte('>')
}

func (w *writer) attr(name, value string) {
	w.buf.WriteByte(' ')
	w.buf.WriteString(name)
	w.buf.WriteString(`="`)
	// EscapeText escapes quotes and white-space characters that attribute
	// normalisation would otherwise change.
	_ = xml.EscapeText(&w.buf, []byte(value))
	w.buf.WriteByte('"')
}

// writeText escapes character data, keeping newlines and tabs as they are
// (xml.EscapeText would turn them into character references).
func writeText(b *bytes.Buffer, s string) {
	for _, r := range s {
		switch {
		case r == '&':
			b.WriteString("&amp;")
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r == '\r':
			b.WriteString("&#xD;")
		case r == '\t' || r == '\n' || (r >= 0x20 && r <= 0xD7FF) || (r >= 0xE000 && r <= 0xFFFD && r != utf8.RuneError) || (r >= 0x10000 && r <= 0x10FFFF):
			b.WriteRune(r)
		default:
			b.WriteRune('\uFFFD')
		}
	}
}

// MarshalJSON implements json.Marshaler with the shape in the package
// documentation.
func (s Stanza) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"stanza":`)
	writeJSONString(&b, s.Name.Local)
	b.WriteString(`,"ns":`)
	writeJSONString(&b, s.Name.Space)
	b.WriteString(`,"attrs":{`)
	for i, a := range s.Attr {
		if i > 0 {
			b.WriteByte(',')
		}
		writeJSONString(&b, attrKey(a.Name))
		b.WriteByte(':')
		writeJSONString(&b, a.Value)
	}
	b.WriteString(`},"payload":[`)
	for i, p := range s.Payload {
		if i > 0 {
			b.WriteByte(',')
		}
		pj, err := json.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("stanzamodel: payload %d of <%s>: %w", i, s.Name.Local, err)
		}
		b.Write(pj)
	}
	b.WriteString(`]}`)
	return b.Bytes(), nil
}

// MarshalJSON implements json.Marshaler: {"type", "name", "ns"} and "model",
// "element" or "text" according to the kind.
func (p Payload) MarshalJSON() ([]byte, error) {
	switch p.Kind {
	case KindText:
		return json.Marshal(struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}{KindText, p.Text})
	case KindElement:
		return json.Marshal(struct {
			Type    string `json:"type"`
			Name    string `json:"name"`
			NS      string `json:"ns"`
			Element any    `json:"element"`
		}{KindElement, p.Name.Local, p.Name.Space, p.Element})
	}
	return json.Marshal(struct {
		Type   string   `json:"type"`
		Name   string   `json:"name"`
		NS     string   `json:"ns"`
		Model  any      `json:"model"`
		Nested []Nested `json:"nested,omitempty"`
	}{p.Kind, p.Name.Local, p.Name.Space, p.Model, p.Nested})
}

// MarshalJSON implements json.Marshaler: the payload's JSON with its "path".
func (n Nested) MarshalJSON() ([]byte, error) {
	inner, err := n.Payload.MarshalJSON()
	if err != nil {
		return nil, err
	}
	path, err := json.Marshal(n.Path)
	if err != nil {
		return nil, err
	}
	// {"path": …, <the payload's fields>}
	out := append([]byte(`{"path":`), path...)
	if len(inner) > 2 {
		out = append(out, ',')
		out = append(out, inner[1:]...)
	} else {
		out = append(out, '}')
	}
	return out, nil
}

func attrKey(n xml.Name) string {
	switch n.Space {
	case "":
		return n.Local
	case xmlscope.NSXML:
		return "xml:" + n.Local
	}
	return n.Space + " " + n.Local
}

func writeJSONString(b *bytes.Buffer, s string) {
	q, _ := json.Marshal(s) // a string always marshals
	b.Write(q)
}
