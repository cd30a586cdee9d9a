package xmppclient

import (
	"encoding/xml"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"
)

// HandleDisco returns a mux option that answers disco#info queries for this
// client with c.Info(): queries without a node and queries for the caps node
// c.CapsNode() ("node#ver", as sent by peers verifying our presence caps).
// The answer echoes the queried node. Queries for any other node get an
// item-not-found error.
//
// It registers the IQ pattern (get, {NSDiscoInfo}query), so it cannot be
// combined with mellium's disco.Handle on the same mux (mux panics on the
// duplicate registration).
func HandleDisco(c Caps) mux.Option {
	return mux.IQ(stanza.GetIQ, xml.Name{Space: NSDiscoInfo, Local: "query"}, discoResponder{
		info:     c.Info(),
		capsNode: c.CapsNode(),
	})
}

// discoResponder answers disco#info queries from precomputed data. It only
// writes to the TokenReadEncoder it is given, never to the session.
type discoResponder struct {
	info     Info
	capsNode string
}

// HandleIQ implements mux.IQHandler.
func (h discoResponder) HandleIQ(iq stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	var node string
	for _, a := range start.Attr {
		if a.Name.Local == "node" && a.Name.Space == "" {
			node = a.Value
		}
	}
	if node != "" && node != h.capsNode {
		reply := iq.Error(stanza.Error{Type: stanza.Cancel, Condition: stanza.ItemNotFound})
		_, err := xmlstream.Copy(t, reply)
		return err
	}
	answer := h.info
	answer.Node = node
	_, err := xmlstream.Copy(t, iq.Result(answer.TokenReader()))
	return err
}
