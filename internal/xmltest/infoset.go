// Package xmltest holds test helpers for XML: an infoset comparison that
// ignores what XML serialisations are free to change, and a loader for the
// XEP example stanzas in ../shared/testdata/xep.
package xmltest

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"testing"

	"github.com/jinglekit/jinglekit/internal/xmlscope"
)

// NSClient is the namespace of unprefixed elements that no xmlns declaration
// covers. The XEP examples are written without the stream around them, so,
// as the vectors' README says, they are read as if wrapped in
// <wrapper xmlns='jabber:client'>.
const NSClient = xmlscope.NSClient

// Node is an element of an XML infoset, reduced to what two equivalent
// serialisations must share.
//
// Namespace declarations are not attributes here: they only say how names
// are spelled. Prefixes, attribute order, comments and processing
// instructions are gone. Text is the element's own character data (not its
// descendants'), concatenated and trimmed of leading and trailing white
// space, so white space between child elements does not count.
type Node struct {
	// Name is the element's namespace URI and local name. The document node
	// returned by Infoset has the zero Name.
	Name xml.Name
	// Attr maps (namespace URI, local name) to value.
	Attr map[xml.Name]string
	// Text is the trimmed character data directly inside the element.
	Text string
	// Children are the child elements in document order.
	Children []*Node
}

// Infoset reads XML from r and returns a document node whose children are
// the top-level elements, in order (a vector file may hold several).
// Unprefixed names outside any default namespace declaration are in
// jabber:client. It fails on malformed XML, on an unbound namespace prefix,
// on character data outside elements and on input without any element.
func Infoset(r io.Reader) (*Node, error) {
	d := xml.NewDecoder(r)
	d.DefaultSpace = NSClient
	doc := &Node{}
	stack := []*Node{doc}
	var text []*strings.Builder
	scope := xmlscope.New()
	for {
		line, col := d.InputPos()
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, posError(d, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			scope.Push(t)
			if err := scope.Check(t); err != nil {
				return nil, fmt.Errorf("line %d, column %d: %w", line, col, err)
			}
			n := &Node{Name: t.Name, Attr: map[xml.Name]string{}}
			for _, a := range t.Attr {
				if xmlscope.IsNSDecl(a) {
					continue
				}
				n.Attr[a.Name] = a.Value
			}
			parent := stack[len(stack)-1]
			parent.Children = append(parent.Children, n)
			stack = append(stack, n)
			text = append(text, &strings.Builder{})
		case xml.EndElement:
			scope.Pop()
			n := stack[len(stack)-1]
			n.Text = strings.TrimSpace(text[len(text)-1].String())
			stack = stack[:len(stack)-1]
			text = text[:len(text)-1]
		case xml.CharData:
			if len(stack) == 1 {
				if len(bytes.TrimSpace(t)) != 0 {
					return nil, fmt.Errorf("line %d, column %d: character data outside elements", line, col)
				}
				continue
			}
			text[len(text)-1].Write(t)
		}
	}
	if len(doc.Children) == 0 {
		return nil, errors.New("no element in input")
	}
	return doc, nil
}

// Equal reports whether a and b have the same infoset (see Node). When they
// do not, diff names the path of the first difference, for example
//
//	/iq/jingle/content[1]/@creator: "initiator" vs (absent)
//
// If either input is not well-formed, Equal returns false and the error in
// diff.
func Equal(a, b []byte) (ok bool, diff string) {
	na, err := Infoset(bytes.NewReader(a))
	if err != nil {
		return false, "first input: " + err.Error()
	}
	nb, err := Infoset(bytes.NewReader(b))
	if err != nil {
		return false, "second input: " + err.Error()
	}
	diff = Compare(na, nb)
	return diff == "", diff
}

// AssertEqual fails t (without stopping it) when got and want differ as
// infosets, printing the difference and both documents.
func AssertEqual(t testing.TB, got, want []byte) bool {
	t.Helper()
	if ok, diff := Equal(got, want); !ok {
		t.Errorf("XML differs: %s\ngot:\n%s\nwant:\n%s", diff, got, want)
		return false
	}
	return true
}

// Compare returns "" if a and b are equal infosets, else the first
// difference, in the form Equal describes. Children are compared in order.
func Compare(a, b *Node) string {
	return compare("", a, b)
}

func compare(path string, a, b *Node) string {
	if a.Name != b.Name {
		return fmt.Sprintf("%s: element %s vs %s", orRoot(path), clark(a.Name), clark(b.Name))
	}
	keys := make([]xml.Name, 0, len(a.Attr)+len(b.Attr))
	for k := range a.Attr {
		keys = append(keys, k)
	}
	for k := range b.Attr {
		if _, ok := a.Attr[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Space != keys[j].Space {
			return keys[i].Space < keys[j].Space
		}
		return keys[i].Local < keys[j].Local
	})
	for _, k := range keys {
		va, oka := a.Attr[k]
		vb, okb := b.Attr[k]
		if va != vb || oka != okb {
			return fmt.Sprintf("%s/@%s: %s vs %s", path, attrName(k), quoteOpt(va, oka), quoteOpt(vb, okb))
		}
	}
	if a.Text != b.Text {
		return fmt.Sprintf("%s: text %q vs %q", orRoot(path), a.Text, b.Text)
	}
	namesA, namesB := stepNames(a.Children), stepNames(b.Children)
	for i := 0; i < len(a.Children) && i < len(b.Children); i++ {
		if d := compare(path+"/"+namesA[i], a.Children[i], b.Children[i]); d != "" {
			return d
		}
	}
	switch {
	case len(a.Children) > len(b.Children):
		i := len(b.Children)
		return fmt.Sprintf("%s/%s: element %s vs (absent): %d child elements vs %d", path, namesA[i], clark(a.Children[i].Name), len(a.Children), len(b.Children))
	case len(a.Children) < len(b.Children):
		i := len(a.Children)
		return fmt.Sprintf("%s/%s: (absent) vs element %s: %d child elements vs %d", path, namesB[i], clark(b.Children[i].Name), len(a.Children), len(b.Children))
	}
	return ""
}

// stepNames returns the path step of each child: its local name, with its
// index among same-named siblings when there are several.
func stepNames(children []*Node) []string {
	count := map[string]int{}
	for _, c := range children {
		count[c.Name.Local]++
	}
	seen := map[string]int{}
	out := make([]string, len(children))
	for i, c := range children {
		if count[c.Name.Local] > 1 {
			out[i] = fmt.Sprintf("%s[%d]", c.Name.Local, seen[c.Name.Local])
		} else {
			out[i] = c.Name.Local
		}
		seen[c.Name.Local]++
	}
	return out
}

func orRoot(path string) string {
	if path == "" {
		return "/"
	}
	return path
}

func clark(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return "{" + n.Space + "}" + n.Local
}

func attrName(n xml.Name) string {
	if n.Space == xmlscope.NSXML {
		return "xml:" + n.Local
	}
	return clark(n)
}

func quoteOpt(v string, ok bool) string {
	if !ok {
		return "(absent)"
	}
	return fmt.Sprintf("%q", v)
}

func posError(d *xml.Decoder, err error) error {
	var serr *xml.SyntaxError
	if errors.As(err, &serr) {
		line, col := d.InputPos()
		if line != serr.Line {
			return fmt.Errorf("line %d: %s", serr.Line, serr.Msg)
		}
		return fmt.Errorf("line %d, column %d: %s", line, col, serr.Msg)
	}
	return err
}
