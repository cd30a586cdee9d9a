package omemo

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/jingle"
)

// IQSender sends IQs over an XMPP stream; *xmpp.Session implements it (as
// it does jingle.IQSender).
type IQSender interface {
	LocalAddr() jid.JID
	SendIQElement(ctx context.Context, payload xml.TokenReader, iq stanza.IQ) (xmlstream.TokenReadCloser, error)
}

const nsPubSub = "http://jabber.org/protocol/pubsub"

// ErrNotFound is wrapped when a PEP node or item does not exist.
var ErrNotFound = errors.New("omemo: not published")

type pubsubItems struct {
	XMLName xml.Name `xml:"http://jabber.org/protocol/pubsub pubsub"`
	Items   struct {
		Node     string `xml:"node,attr"`
		MaxItems int    `xml:"max_items,attr,omitempty"`
		Item     []struct {
			ID      string         `xml:"id,attr"`
			Payload jingle.Element `xml:",any"`
		} `xml:"item"`
	} `xml:"items"`
}

type iqResponse struct {
	XMLName xml.Name
	Type    string        `xml:"type,attr"`
	From    string        `xml:"from,attr"`
	PubSub  *pubsubItems  `xml:"http://jabber.org/protocol/pubsub pubsub"`
	Error   *stanza.Error `xml:"jabber:client error"`
}

// sendIQ sends payload in an IQ and decodes the answer.
func sendIQ(ctx context.Context, s IQSender, to jid.JID, typ stanza.IQType, payload any) (*iqResponse, error) {
	var buf bytes.Buffer
	if err := xml.NewEncoder(&buf).Encode(payload); err != nil {
		return nil, fmt.Errorf("omemo: encoding an IQ: %w", err)
	}
	resp, err := s.SendIQElement(ctx, xml.NewDecoder(&buf), stanza.IQ{To: to, Type: typ})
	if err != nil {
		return nil, fmt.Errorf("omemo: IQ to %s: %w", to.String(), err)
	}
	defer resp.Close()
	var r iqResponse
	if err := xml.NewTokenDecoder(resp).Decode(&r); err != nil {
		return nil, fmt.Errorf("omemo: reading the answer of %s: %w", to.String(), err)
	}
	if r.From != "" {
		f, err := jid.Parse(r.From)
		if err != nil || !(f.Equal(to) || (to.Equal(jid.JID{}) && f.Equal(s.LocalAddr().Bare()))) {
			return nil, fmt.Errorf("omemo: IQ to %s answered by %q", to.String(), r.From)
		}
	}
	if r.Type == string(stanza.ErrorIQ) {
		if r.Error != nil && r.Error.Condition == stanza.ItemNotFound {
			return nil, fmt.Errorf("%w (%s)", ErrNotFound, to.String())
		}
		if r.Error != nil {
			return nil, fmt.Errorf("omemo: IQ to %s: %w", to.String(), *r.Error)
		}
		return nil, fmt.Errorf("omemo: IQ to %s: error", to.String())
	}
	return &r, nil
}

// fetchItem returns the content of the newest item of a PEP node of
// owner's account, decoded into v.
func fetchItem(ctx context.Context, s IQSender, owner jid.JID, node string, v any) error {
	q := pubsubItems{}
	q.Items.Node = node
	q.Items.MaxItems = 1
	to := owner.Bare()
	if to.Equal(s.LocalAddr().Bare()) {
		to = jid.JID{} // one's own account: no 'to'
	}
	r, err := sendIQ(ctx, s, to, stanza.GetIQ, q)
	if err != nil {
		return err
	}
	if r.PubSub == nil || len(r.PubSub.Items.Item) == 0 {
		return fmt.Errorf("%w: node %s of %s is empty", ErrNotFound, node, owner.Bare().String())
	}
	it := r.PubSub.Items.Item[len(r.PubSub.Items.Item)-1]
	if it.Payload.IsZero() {
		return fmt.Errorf("%w: node %s of %s has an empty item", ErrNotFound, node, owner.Bare().String())
	}
	if err := it.Payload.Decode(v); err != nil {
		return fmt.Errorf("omemo: node %s of %s: %w", node, owner.Bare().String(), err)
	}
	return nil
}

type publish struct {
	XMLName xml.Name `xml:"http://jabber.org/protocol/pubsub pubsub"`
	Publish struct {
		Node string `xml:"node,attr"`
		Item struct {
			ID      string `xml:"id,attr"`
			Payload any
		} `xml:"item"`
	} `xml:"publish"`
	Options struct {
		Form dataForm `xml:"jabber:x:data x"`
	} `xml:"publish-options"`
}

type dataForm struct {
	Type   string      `xml:"type,attr"`
	Fields []formField `xml:"field"`
}

type formField struct {
	Var   string `xml:"var,attr"`
	Type  string `xml:"type,attr,omitempty"`
	Value string `xml:"value"`
}

// publishItem publishes v as the "current" item of one's own PEP node,
// readable by anyone (pubsub#access_model open), as OMEMO needs.
func publishItem(ctx context.Context, s IQSender, node string, v any) error {
	var p publish
	p.Publish.Node = node
	p.Publish.Item.ID = "current"
	p.Publish.Item.Payload = v
	p.Options.Form = dataForm{Type: "submit", Fields: []formField{
		{Var: "FORM_TYPE", Type: "hidden", Value: "http://jabber.org/protocol/pubsub#publish-options"},
		{Var: "pubsub#access_model", Value: "open"},
	}}
	_, err := sendIQ(ctx, s, jid.JID{}, stanza.SetIQ, p)
	return err
}
