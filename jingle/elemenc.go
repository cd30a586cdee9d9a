package jingle

import (
	"encoding/binary"
	"encoding/xml"
	"errors"
	"io"
)

// The compact form of what is between an Element's tags: one record per
// token, each starting with its kind. A start tag is its namespace (a 0
// byte when it is its parent's, else 1 and the namespace), its local name,
// and its attributes (count, then namespace, local name and value of
// each); an end tag is the kind alone (the reader knows which element it
// closes); text is its bytes. Strings and byte runs are prefixed with
// their length (uvarint). Namespace declarations are not kept: the names
// carry their namespaces, as in the tokens.
const (
	encStart byte = iota + 1
	encEnd
	encText
)

// errEncCorrupt reports a compact form that this package did not write.
var errEncCorrupt = errors.New("jingle: corrupt compact element")

// encWriter appends tokens to the compact form.
type encWriter struct {
	b     []byte
	stack []string // the namespaces of the open elements, the Element's first
}

func (w *encWriter) str(s string) {
	w.b = binary.AppendUvarint(w.b, uint64(len(s)))
	w.b = append(w.b, s...)
}

func (w *encWriter) start(t xml.StartElement) {
	w.b = append(w.b, encStart)
	if t.Name.Space == w.stack[len(w.stack)-1] {
		w.b = append(w.b, 0)
	} else {
		w.b = append(w.b, 1)
		w.str(t.Name.Space)
	}
	w.str(t.Name.Local)
	n := 0
	for _, a := range t.Attr {
		if !isNSDecl(a) {
			n++
		}
	}
	w.b = binary.AppendUvarint(w.b, uint64(n))
	for _, a := range t.Attr {
		if !isNSDecl(a) {
			w.str(a.Name.Space)
			w.str(a.Name.Local)
			w.str(a.Value)
		}
	}
	w.stack = append(w.stack, t.Name.Space)
}

func (w *encWriter) end() {
	w.b = append(w.b, encEnd)
	w.stack = w.stack[:len(w.stack)-1]
}

func (w *encWriter) text(c xml.CharData) {
	w.b = append(w.b, encText)
	w.b = binary.AppendUvarint(w.b, uint64(len(c)))
	w.b = append(w.b, c...)
}

// encReader reads the tokens of a compact form. Text is returned as a
// slice of the form, which must not be modified.
type encReader struct {
	b     []byte
	stack []xml.Name // the open elements, the Element first
	err   error
}

func (r *encReader) bytes() []byte {
	n, k := binary.Uvarint(r.b)
	if k <= 0 || n > uint64(len(r.b)-k) {
		r.err = errEncCorrupt
		return nil
	}
	v := r.b[k : k+int(n) : k+int(n)]
	r.b = r.b[k+int(n):]
	return v
}

func (r *encReader) str() string { return string(r.bytes()) }

// Token implements xml.TokenReader.
func (r *encReader) Token() (xml.Token, error) {
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) == 0 {
		return nil, io.EOF
	}
	kind := r.b[0]
	r.b = r.b[1:]
	switch kind {
	case encStart:
		return r.start()
	case encEnd:
		if len(r.stack) < 2 {
			r.err = errEncCorrupt
			return nil, r.err
		}
		name := r.stack[len(r.stack)-1]
		r.stack = r.stack[:len(r.stack)-1]
		return xml.EndElement{Name: name}, nil
	case encText:
		c := r.bytes()
		if r.err != nil {
			return nil, r.err
		}
		return xml.CharData(c), nil
	}
	r.err = errEncCorrupt
	return nil, r.err
}

func (r *encReader) start() (xml.Token, error) {
	if len(r.b) == 0 || len(r.stack) == 0 {
		r.err = errEncCorrupt
		return nil, r.err
	}
	var t xml.StartElement
	own := r.b[0]
	r.b = r.b[1:]
	if own == 0 {
		t.Name.Space = r.stack[len(r.stack)-1].Space
	} else {
		t.Name.Space = r.str()
	}
	t.Name.Local = r.str()
	n, k := binary.Uvarint(r.b)
	// Each attribute takes at least three bytes.
	if k <= 0 || n > uint64(len(r.b))/3+1 {
		r.err = errEncCorrupt
		return nil, r.err
	}
	r.b = r.b[k:]
	if n > 0 {
		t.Attr = make([]xml.Attr, n)
		for i := range t.Attr {
			t.Attr[i].Name.Space = r.str()
			t.Attr[i].Name.Local = r.str()
			t.Attr[i].Value = r.str()
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	r.stack = append(r.stack, t.Name)
	return t, nil
}

// isNSDecl reports whether a is a namespace declaration.
func isNSDecl(a xml.Attr) bool {
	return a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns")
}
