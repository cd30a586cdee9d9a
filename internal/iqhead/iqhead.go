// Package iqhead reads what the start element of an <iq/> says of it —
// its id, type and sender — for the code that matches answers to the IQs
// it sent: xmppclient's IQTracker and the answer checks of jingle and
// transports/ibb.
//
// Unlike mellium's stanza.NewIQ it does not parse the JIDs, which would
// fail the whole stanza on a to or from that is not a JID: here the caller
// decides what such a sender means (for an answer: not the peer).
package iqhead

import (
	"encoding/xml"
	"fmt"

	"mellium.im/xmpp/jid"
)

// Head holds the attributes of an <iq/> start element that say what it is
// and who sent it, as written ("" when absent).
type Head struct {
	ID, Type, From string
}

// Of returns the head of start. Attributes are matched by local name;
// of two with the same name, the last counts.
func Of(start xml.StartElement) Head {
	return Head{ID: attr(start, "id"), Type: attr(start, "type"), From: attr(start, "from")}
}

// attr returns the value of start's last attribute named local.
func attr(start xml.StartElement, local string) (v string) {
	for _, a := range start.Attr {
		if a.Name.Local == local {
			v = a.Value
		}
	}
	return v
}

// SentBy reports whether the stanza came from peer: its from is peer's
// JID, or it has none (the account's server answers without one). A from
// that is not a JID is no one's.
func (h Head) SentBy(peer jid.JID) bool {
	if h.From == "" {
		return true
	}
	f, err := jid.Parse(h.From)
	return err == nil && f.Equal(peer)
}

// ReadAnswer reads the start element of an IQ answer with d and returns
// its head, or an error when d does not begin with a start element or the
// answer is not SentBy peer. Its errors say what failed without saying
// who asked ("reading answer: …", "answer from …"): callers prefix their
// own name.
func ReadAnswer(d *xml.Decoder, peer jid.JID) (Head, error) {
	tok, err := d.Token()
	if err != nil {
		return Head{}, fmt.Errorf("reading answer: %w", err)
	}
	start, ok := tok.(xml.StartElement)
	if !ok {
		return Head{}, fmt.Errorf("reading answer: unexpected %T", tok)
	}
	h := Of(start)
	if !h.SentBy(peer) {
		return h, fmt.Errorf("answer from %q, not from the peer %s", h.From, peer)
	}
	return h, nil
}
