// Package xmlscope tracks the namespaces bound in the open elements of an
// XML document, to catch unbound prefixes, which encoding/xml lets through
// (it leaves the prefix where the URI should be). The stanza inspector
// (stanzamodel) and the test infoset (xmltest) read the XEP examples with
// it.
package xmlscope

import (
	"encoding/xml"
	"fmt"
	"slices"
)

// NSClient is the namespace of unprefixed elements that no xmlns
// declaration covers: the XEP examples are read as if wrapped in
// <wrapper xmlns='jabber:client'>.
const NSClient = "jabber:client"

// NSXML is the namespace of the xml: prefix, always bound.
const NSXML = "http://www.w3.org/XML/1998/namespace"

// Scope is the stack of namespace URIs declared by the open elements.
type Scope struct {
	frames [][]string
}

// New returns a Scope in which jabber:client and the xml: prefix are bound.
func New() *Scope {
	return &Scope{frames: [][]string{{NSClient, NSXML}}}
}

// IsNSDecl reports whether a is a namespace declaration.
func IsNSDecl(a xml.Attr) bool {
	return a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns")
}

// Push opens t: the namespaces it declares are bound until Pop.
func (s *Scope) Push(t xml.StartElement) {
	var uris []string
	for _, a := range t.Attr {
		if IsNSDecl(a) {
			uris = append(uris, a.Value)
		}
	}
	s.frames = append(s.frames, uris)
}

// Pop closes the innermost open element.
func (s *Scope) Pop() { s.frames = s.frames[:len(s.frames)-1] }

func (s *Scope) bound(uri string) bool {
	for _, f := range s.frames {
		if slices.Contains(f, uri) {
			return true
		}
	}
	return false
}

// Check reports a name of t (the element's or an attribute's) whose
// namespace is not bound; call it after Push.
func (s *Scope) Check(t xml.StartElement) error {
	if t.Name.Space != "" && !s.bound(t.Name.Space) {
		return fmt.Errorf("unbound namespace prefix %q on <%s>", t.Name.Space, t.Name.Local)
	}
	for _, a := range t.Attr {
		if !IsNSDecl(a) && a.Name.Space != "" && !s.bound(a.Name.Space) {
			return fmt.Errorf("unbound namespace prefix %q on attribute %s of <%s>", a.Name.Space, a.Name.Local, t.Name.Local)
		}
	}
	return nil
}
