package stanzamodel

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"

	"github.com/jinglekit/jinglekit/internal/xmlscope"
	"github.com/jinglekit/jinglekit/jingle"
)

// Stanza is one top-level element: its start tag kept as it came and its
// children in document order, each decoded into a typed model when its
// name is registered. Despite the name it may be any element (a fragment
// such as a bare <description/> too); only its children are looked up in
// the registry.
type Stanza struct {
	// Name is the element's namespace and local name ({jabber:client}iq).
	Name xml.Name
	// Attr holds the attributes in document order, without namespace
	// declarations, which Name and the attribute names already carry.
	Attr []xml.Attr
	// Payload holds the children in document order. White space between
	// them is not kept.
	Payload []Payload
	// Line and Column locate the start tag in the input (1-based); both are
	// 0 for a Stanza that was not parsed.
	Line, Column int
}

// AttrValue returns the value of the stanza's attribute with the given local
// name and no namespace, and whether it is present.
func (s *Stanza) AttrValue(local string) (string, bool) {
	for _, a := range s.Attr {
		if a.Name.Space == "" && a.Name.Local == local {
			return a.Value, true
		}
	}
	return "", false
}

// Payloads returns the payloads of the given kind, in order.
func (s *Stanza) Payloads(kind string) []Payload {
	var out []Payload
	for _, p := range s.Payload {
		if p.Kind == kind {
			out = append(out, p)
		}
	}
	return out
}

// Payload is one child of a Stanza.
type Payload struct {
	// Kind is the registered kind of the element, KindElement or KindText.
	Kind string
	// Name is the element's name (zero for KindText).
	Name xml.Name
	// Model is the typed model of a registered element, as its DecodeFunc
	// returned it (a *jingle.Jingle for kind "jingle", a *jingle.Error for
	// "error").
	Model any
	// Element is a KindElement child, as it came.
	Element jingle.Element
	// Text is the character data of a KindText payload, as it came.
	Text string
	// Nested holds the registered models found inside a <jingle/> payload:
	// descriptions, transports, security preconditions, informational and
	// reason payloads whose names are registered. They are shown by
	// inspect; the XML is always written from Model.
	Nested []Nested
}

// Nested is a registered element inside a typed model, with its path in the
// model (for example "contents[0].description").
type Nested struct {
	Path string
	Payload
}

// nested decodes the registered elements inside a <jingle/>.
func (r *Registry) nested(j *jingle.Jingle) ([]Nested, error) {
	var out []Nested
	add := func(path string, el *jingle.Element) error {
		if el == nil || el.IsZero() {
			return nil
		}
		if _, _, ok := r.Lookup(el.XMLName); !ok {
			return nil
		}
		pl, err := r.Decode(*el)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, Nested{Path: path, Payload: pl})
		return nil
	}
	for i, c := range j.Contents {
		for _, f := range []struct {
			name string
			el   *jingle.Element
		}{{"description", c.Description}, {"transport", c.Transport}, {"security", c.Security}} {
			if err := add(fmt.Sprintf("contents[%d].%s", i, f.name), f.el); err != nil {
				return nil, err
			}
		}
		for k := range c.Extra {
			if err := add(fmt.Sprintf("contents[%d].extra[%d]", i, k), &c.Extra[k]); err != nil {
				return nil, err
			}
		}
	}
	for i := range j.Info {
		if err := add(fmt.Sprintf("info[%d]", i), &j.Info[i]); err != nil {
			return nil, err
		}
	}
	if j.Reason != nil {
		for i := range j.Reason.Extra {
			if err := add(fmt.Sprintf("reason.extra[%d]", i), &j.Reason.Extra[i]); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// SyntaxError is malformed input: not well-formed XML, an unbound namespace
// prefix, text or a DTD outside elements, or a misplaced XML declaration.
type SyntaxError struct {
	Line   int // 1-based line
	Column int // 1-based column, 0 if unknown
	Msg    string
	// Err is the underlying error: an *xml.SyntaxError, or nil.
	Err error
}

func (e *SyntaxError) Error() string {
	if e.Column > 0 {
		return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Msg)
	}
	return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
}

// Unwrap returns the underlying error.
func (e *SyntaxError) Unwrap() error { return e.Err }

// DecodeError is a registered element whose DecodeFunc failed.
type DecodeError struct {
	Name         xml.Name
	Kind         string
	Line, Column int // position of the element's start tag; 0 if unknown
	Err          error
}

func (e *DecodeError) Error() string {
	what := fmt.Sprintf("decoding <%s xmlns='%s'> as %s: %v", e.Name.Local, e.Name.Space, e.Kind, e.Err)
	if e.Line > 0 {
		return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, what)
	}
	return what
}

// Unwrap returns the DecodeFunc's error.
func (e *DecodeError) Unwrap() error { return e.Err }

// Parser reads stanzas one after another from a stream of top-level
// elements, comments and processing instructions, as in the XEP example
// files. Unprefixed names that no xmlns declaration covers are in
// jabber:client, as if the input were wrapped in
// <wrapper xmlns='jabber:client'>.
type Parser struct {
	r     *Registry
	d     *xml.Decoder
	scope *xmlscope.Scope
	err   error
}

// NewParser returns a parser of the stanzas in rd that decodes the
// registered children with r.
func (r *Registry) NewParser(rd io.Reader) *Parser {
	d := xml.NewDecoder(rd)
	d.DefaultSpace = NSClient
	return &Parser{r: r, d: d, scope: xmlscope.New()}
}

// Parse reads every stanza in rd. It fails if rd contains no element.
func (r *Registry) Parse(rd io.Reader) ([]*Stanza, error) {
	p := r.NewParser(rd)
	var out []*Stanza
	for {
		s, err := p.Next()
		if err == io.EOF {
			if len(out) == 0 {
				return nil, &SyntaxError{Line: 1, Msg: "no element in input"}
			}
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, s)
	}
}

// Next returns the next stanza, or io.EOF after the last one. The error is a
// *SyntaxError for malformed input, a *DecodeError when a registered model
// fails to decode, or the reader's error; after an error Next keeps
// returning it.
func (p *Parser) Next() (*Stanza, error) {
	if p.err != nil {
		return nil, p.err
	}
	s, err := p.next()
	if err != nil {
		p.err = err
	}
	return s, err
}

func (p *Parser) next() (*Stanza, error) {
	for {
		off := p.d.InputOffset()
		line, col := p.d.InputPos()
		tok, err := p.d.Token()
		if err != nil {
			return nil, p.wrap(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return p.stanza(t, line, col)
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				line, col = advance(line, col, t)
				return nil, &SyntaxError{Line: line, Column: col, Msg: "character data outside elements"}
			}
		case xml.ProcInst:
			if t.Target == "xml" && off != 0 {
				return nil, &SyntaxError{Line: line, Column: col, Msg: "XML declaration not at the start of the input"}
			}
		case xml.Directive:
			return nil, &SyntaxError{Line: line, Column: col, Msg: "DTDs and other <!…> declarations are not allowed in XMPP"}
		case xml.EndElement:
			// The decoder reports an unmatched end tag itself.
			return nil, &SyntaxError{Line: line, Column: col, Msg: "unexpected end tag </" + t.Name.Local + ">"}
		}
	}
}

// wrap turns a decoder error into a *SyntaxError with a position.
func (p *Parser) wrap(err error) error {
	if err == io.EOF {
		return io.EOF
	}
	var serr *xml.SyntaxError
	if errors.As(err, &serr) {
		line, col := p.d.InputPos()
		if line != serr.Line {
			col = 0
		}
		return &SyntaxError{Line: serr.Line, Column: col, Msg: serr.Msg, Err: err}
	}
	return err
}

func (p *Parser) stanza(start xml.StartElement, line, col int) (*Stanza, error) {
	p.scope.Push(start)
	if err := p.scope.Check(start); err != nil {
		return nil, &SyntaxError{Line: line, Column: col, Msg: err.Error()}
	}
	s := &Stanza{Name: start.Name, Attr: cleanAttrs(start.Attr), Line: line, Column: col}
	var text bytes.Buffer
	flush := func() {
		if len(bytes.TrimSpace(text.Bytes())) != 0 {
			s.Payload = append(s.Payload, Payload{Kind: KindText, Text: text.String()})
		}
		text.Reset()
	}
	for {
		line, col := p.d.InputPos()
		tok, err := p.d.Token()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, p.wrap(err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			text.Write(t)
		case xml.StartElement:
			flush()
			el, err := p.element(t, line, col)
			if err != nil {
				return nil, err
			}
			pl, err := p.r.Decode(el)
			if err != nil {
				var derr *DecodeError
				if errors.As(err, &derr) {
					derr.Line, derr.Column = line, col
				}
				return nil, err
			}
			if j, ok := pl.Model.(*jingle.Jingle); ok {
				if pl.Nested, err = p.r.nested(j); err != nil {
					return nil, &DecodeError{Name: el.XMLName, Kind: pl.Kind, Line: line, Column: col, Err: err}
				}
			}
			s.Payload = append(s.Payload, pl)
		case xml.EndElement:
			flush()
			p.scope.Pop()
			return s, nil
		}
	}
}

// element reads the rest of the element that start opens, keeping its
// tokens (without comments, processing instructions and namespace
// declarations) and checking its prefixes.
func (p *Parser) element(start xml.StartElement, line, col int) (jingle.Element, error) {
	p.scope.Push(start)
	if err := p.scope.Check(start); err != nil {
		return jingle.Element{}, &SyntaxError{Line: line, Column: col, Msg: err.Error()}
	}
	el := jingle.Element{XMLName: start.Name, Attr: cleanAttrs(start.Attr)}
	depth := 0
	for {
		line, col := p.d.InputPos()
		tok, err := p.d.Token()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return jingle.Element{}, p.wrap(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			p.scope.Push(t)
			if err := p.scope.Check(t); err != nil {
				return jingle.Element{}, &SyntaxError{Line: line, Column: col, Msg: err.Error()}
			}
			depth++
			t = t.Copy()
			t.Attr = cleanAttrs(t.Attr)
			el.Inner = append(el.Inner, t)
		case xml.EndElement:
			p.scope.Pop()
			if depth == 0 {
				return el, nil
			}
			depth--
			el.Inner = append(el.Inner, t)
		case xml.CharData:
			el.Inner = append(el.Inner, t.Copy())
		}
	}
}

// advance returns the position of the first character of text that is not
// white space, text starting at line, col.
func advance(line, col int, text []byte) (int, int) {
	for _, c := range text {
		switch c {
		case '\n':
			line, col = line+1, 1
		case ' ', '\t', '\r':
			col++
		default:
			return line, col
		}
	}
	return line, col
}

// cleanAttrs returns a copy of attrs without namespace declarations.
func cleanAttrs(attrs []xml.Attr) []xml.Attr {
	out := make([]xml.Attr, 0, len(attrs))
	for _, a := range attrs {
		if !xmlscope.IsNSDecl(a) {
			out = append(out, a)
		}
	}
	return out
}
