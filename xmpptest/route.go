package xmpptest

import (
	"bytes"
	"encoding/xml"
	"fmt"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

const nsDiscoInfo = "http://jabber.org/protocol/disco#info"

// routedStanza is a stanza read from a client, re-encoded with a stamped from.
type routedStanza struct {
	name, typ, id, to string
	child             xml.Name // first child element, if any
	raw               []byte
}

// readStanza reads the rest of the stanza that begins with start and
// re-encodes it with the from attribute set to the sender's full JID.
func (c *conn) readStanza(start xml.StartElement) (*routedStanza, error) {
	s := &routedStanza{name: start.Name.Local}
	attrs := make([]xml.Attr, 0, len(start.Attr)+1)
	for _, a := range start.Attr {
		if a.Name.Space == "" {
			switch a.Name.Local {
			case "from":
				continue
			case "to":
				s.to = a.Value
			case "type":
				s.typ = a.Value
			case "id":
				s.id = a.Value
			}
		}
		attrs = append(attrs, a)
	}
	start.Attr = append(attrs, xml.Attr{Name: xml.Name{Local: "from"}, Value: c.j.String()})

	var buf bytes.Buffer
	w := &stanzaWriter{e: xml.NewEncoder(&buf)}
	if err := w.EncodeToken(start); err != nil {
		return nil, err
	}
	for depth := 1; depth > 0; {
		tok, err := c.d.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 1 && s.child.Local == "" {
				s.child = t.Name
			}
			depth++
		case xml.EndElement:
			depth--
		}
		if err := w.EncodeToken(tok); err != nil {
			return nil, err
		}
	}
	if err := w.e.Flush(); err != nil {
		return nil, err
	}
	s.raw = buf.Bytes()
	return s, nil
}

// route delivers s, sent by src, according to the rules in the package doc.
func (n *Network) route(src *conn, s *routedStanza) {
	request := s.name == "iq" && (s.typ == string(stanza.GetIQ) || s.typ == string(stanza.SetIQ))
	if s.to == "" {
		switch {
		case s.name == "presence":
			for _, c := range n.resources(jid.JID{}, src) {
				n.deliver(src.j, c, s.raw)
			}
		case request: // addressed to the sender's own account
			n.replyError(src.j.Bare(), src, s.id, stanza.ServiceUnavailable)
		}
		return
	}
	to, err := jid.Parse(s.to)
	if err != nil {
		if request {
			n.replyError(n.domain, src, s.id, stanza.JIDMalformed)
		}
		return
	}
	if to.Equal(n.domain) {
		if request && s.typ == string(stanza.GetIQ) && s.child == (xml.Name{Space: nsDiscoInfo, Local: "query"}) {
			n.replyDiscoInfo(src, s.id)
		} else if request {
			n.replyError(n.domain, src, s.id, stanza.ServiceUnavailable)
		}
		return
	}
	if c := n.client(to); c != nil {
		n.deliver(src.j, c, s.raw)
		return
	}
	if s.name == "message" || (s.name == "presence" && to.Resourcepart() == "") {
		for _, c := range n.resources(to.Bare(), nil) {
			n.deliver(src.j, c, s.raw)
		}
		return
	}
	if request {
		n.replyError(to, src, s.id, stanza.ServiceUnavailable)
	}
}

// deliver passes raw through the filter and queues it for c.
func (n *Network) deliver(from jid.JID, c *conn, raw []byte) {
	n.mu.Lock()
	f := n.filter
	n.mu.Unlock()
	if f != nil {
		if raw = f(from, c.j, raw); raw == nil {
			return
		}
	}
	c.enqueue(raw)
}

// replyError answers the IQ id sent by c with an error of type cancel, sent on
// behalf of from.
func (n *Network) replyError(from jid.JID, c *conn, id string, cond stanza.Condition) {
	iq := stanza.IQ{XMLName: xml.Name{Space: stanza.NSClient, Local: "iq"}, ID: id, Type: stanza.ErrorIQ, From: from, To: c.j}
	n.reply(from, c, iq.Wrap(stanza.Error{Type: stanza.Cancel, Condition: cond}.TokenReader()))
}

// replyDiscoInfo answers a disco#info query to the server domain.
func (n *Network) replyDiscoInfo(c *conn, id string) {
	iq := stanza.IQ{XMLName: xml.Name{Space: stanza.NSClient, Local: "iq"}, ID: id, Type: stanza.ResultIQ, From: n.domain, To: c.j}
	attr := func(k, v string) xml.Attr { return xml.Attr{Name: xml.Name{Local: k}, Value: v} }
	n.reply(n.domain, c, iq.Wrap(xmlstream.Wrap(
		xmlstream.MultiReader(
			xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Local: "identity"}, Attr: []xml.Attr{attr("category", "server"), attr("type", "im")}}),
			xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Local: "feature"}, Attr: []xml.Attr{attr("var", nsDiscoInfo)}}),
		),
		xml.StartElement{Name: xml.Name{Space: nsDiscoInfo, Local: "query"}},
	)))
}

func (n *Network) reply(from jid.JID, c *conn, r xml.TokenReader) {
	var buf bytes.Buffer
	w := &stanzaWriter{e: xml.NewEncoder(&buf)}
	if _, err := xmlstream.Copy(w, r); err != nil {
		n.log("xmpptest: encoding reply to %s: %v", c.j, err)
		return
	}
	if err := w.e.Flush(); err != nil {
		n.log("xmpptest: encoding reply to %s: %v", c.j, err)
		return
	}
	n.deliver(from, c, buf.Bytes())
}

// stanzaWriter re-encodes decoded tokens with encoding/xml without the
// duplicate or bogus namespace declarations xml.Encoder would otherwise
// produce from decoded xmlns attributes. An element in the same namespace as
// its parent (or in the empty namespace, as produced by mellium's stanza
// helpers) is written without xmlns and inherits it; any other element gets a
// single xmlns. Comments, processing instructions and directives, which XMPP
// forbids, are dropped.
type stanzaWriter struct {
	e      *xml.Encoder
	spaces []string // effective namespace of each open element
}

func (w *stanzaWriter) EncodeToken(t xml.Token) error {
	switch tok := t.(type) {
	case xml.StartElement:
		parent := ""
		if len(w.spaces) > 0 {
			parent = w.spaces[len(w.spaces)-1]
		}
		attrs := make([]xml.Attr, 0, len(tok.Attr))
		for _, a := range tok.Attr {
			if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
				continue
			}
			attrs = append(attrs, a)
		}
		tok.Attr = attrs
		if tok.Name.Space == "" || tok.Name.Space == parent {
			tok.Name.Space = ""
			w.spaces = append(w.spaces, parent)
		} else {
			w.spaces = append(w.spaces, tok.Name.Space)
		}
		return w.e.EncodeToken(tok)
	case xml.EndElement:
		k := len(w.spaces)
		if k == 0 {
			return fmt.Errorf("xmpptest: unbalanced end element %v", tok.Name)
		}
		parent := ""
		if k > 1 {
			parent = w.spaces[k-2]
		}
		if tok.Name.Space == "" || tok.Name.Space == parent {
			tok.Name.Space = ""
		}
		w.spaces = w.spaces[:k-1]
		return w.e.EncodeToken(tok)
	case xml.CharData:
		return w.e.EncodeToken(tok)
	default:
		return nil
	}
}
