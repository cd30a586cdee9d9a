package xmppclient

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

const nsBind = "urn:ietf:params:xml:ns:xmpp-bind"

// bindIQ mirrors the resource binding result (RFC 6120 §7).
type bindIQ struct {
	XMLName xml.Name      `xml:"jabber:client iq"`
	ID      string        `xml:"id,attr"`
	Type    stanza.IQType `xml:"type,attr"`
	Bind    struct {
		JID string `xml:"jid"`
	} `xml:"urn:ietf:params:xml:ns:xmpp-bind bind"`
	Error *stanza.Error `xml:"jabber:client error"`
}

// bindFeature is the client side of resource binding. It replaces mellium's
// xmpp.BindResource, which (v0.23.0) sends the requested resource as an
// empty <resource/> element, so the server always picks one. resource may
// be empty to let the server generate one.
func bindFeature(resource string, account jid.JID) xmpp.StreamFeature {
	return xmpp.StreamFeature{
		Name:       xml.Name{Space: nsBind, Local: "bind"},
		Necessary:  xmpp.Authn,
		Prohibited: xmpp.Ready,
		Parse: func(_ context.Context, d *xml.Decoder, start *xml.StartElement) (bool, any, error) {
			return true, nil, d.Skip()
		},
		Negotiate: func(ctx context.Context, s *xmpp.Session, _ any) (xmpp.SessionState, io.ReadWriter, error) {
			id := randomID()
			var inner xml.TokenReader
			if resource != "" {
				inner = xmlstream.Wrap(xmlstream.Token(xml.CharData(resource)),
					xml.StartElement{Name: xml.Name{Space: nsBind, Local: "resource"}})
			}
			req := stanza.IQ{
				XMLName: xml.Name{Space: stanza.NSClient, Local: "iq"},
				ID:      id,
				Type:    stanza.SetIQ,
			}.Wrap(xmlstream.Wrap(inner, xml.StartElement{Name: xml.Name{Space: nsBind, Local: "bind"}}))

			w := s.TokenWriter()
			defer w.Close()
			if _, err := xmlstream.Copy(w, req); err != nil {
				return 0, nil, fmt.Errorf("xmppclient: sending bind request: %w", err)
			}
			if err := w.Flush(); err != nil {
				return 0, nil, fmt.Errorf("xmppclient: sending bind request: %w", err)
			}

			r := s.TokenReader()
			defer r.Close()
			d := xml.NewTokenDecoder(r)
			for {
				if err := ctx.Err(); err != nil {
					return 0, nil, err
				}
				tok, err := d.Token()
				if err != nil {
					return 0, nil, fmt.Errorf("xmppclient: reading bind response: %w", err)
				}
				start, ok := tok.(xml.StartElement)
				if !ok {
					continue
				}
				var resp bindIQ
				if err := d.DecodeElement(&resp, &start); err != nil {
					return 0, nil, fmt.Errorf("xmppclient: decoding bind response: %w", err)
				}
				if resp.ID != id {
					return 0, nil, fmt.Errorf("xmppclient: bind response with unexpected id %q", resp.ID)
				}
				switch resp.Type {
				case stanza.ResultIQ:
				case stanza.ErrorIQ:
					if resp.Error != nil {
						return 0, nil, fmt.Errorf("xmppclient: binding resource %q: %w", resource, *resp.Error)
					}
					return 0, nil, fmt.Errorf("xmppclient: binding resource %q failed", resource)
				default:
					return 0, nil, fmt.Errorf("xmppclient: bind response of type %q", resp.Type)
				}
				bound, err := jid.Parse(resp.Bind.JID)
				if err != nil {
					return 0, nil, fmt.Errorf("xmppclient: server bound invalid JID %q: %w", resp.Bind.JID, err)
				}
				if !bound.Bare().Equal(account.Bare()) || bound.Resourcepart() == "" {
					return 0, nil, fmt.Errorf("xmppclient: server bound %s, not a resource of %s", bound, account.Bare())
				}
				s.UpdateAddr(bound)
				return xmpp.Ready, nil, nil
			}
		},
	}
}

// randomID returns a random stanza id.
func randomID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails: the runtime aborts if the system RNG does
	return hex.EncodeToString(b)
}
