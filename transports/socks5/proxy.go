package socks5

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/jingle"
)

// Service discovery namespaces (XEP-0030).
const (
	nsDiscoInfo  = "http://jabber.org/protocol/disco#info"
	nsDiscoItems = "http://jabber.org/protocol/disco#items"
)

// maxDiscoItems bounds the items of the server queried for a proxy.
const maxDiscoItems = 32

// ErrUnexpectedSender is wrapped by the errors of IQ exchanges whose
// answer came from another entity than the one asked (mellium matches
// answers by id only).
var ErrUnexpectedSender = errors.New("socks5: answer from an unexpected sender")

// Proxy is a SOCKS5 bytestreams proxy (XEP-0065 streamhost): its JID, used
// to activate bytestreams, and the host:port of its SOCKS5 service.
type Proxy struct {
	JID jid.JID
	// Addr is "host:port". Empty means: ask the proxy (XEP-0065 §5.3.1).
	Addr string
}

// String returns the proxy's JID and address, for logs.
func (p Proxy) String() string { return p.JID.String() + " " + p.Addr }

// sendIQ sends an IQ with payload to to and, for a result, decodes its
// first child into resp (unless resp is nil). An error answer is returned
// as a wrapped stanza.Error.
func sendIQ(ctx context.Context, s jingle.IQSender, to jid.JID, typ stanza.IQType, payload, resp any) error {
	el, err := jingle.NewElement(payload)
	if err != nil {
		return err
	}
	r, err := s.SendIQElement(ctx, el.TokenReader(), stanza.IQ{To: to, Type: typ})
	if err != nil {
		return fmt.Errorf("socks5: iq to %s: %w", to, err)
	}
	defer r.Close()
	tok, err := r.Token()
	if err != nil {
		return fmt.Errorf("socks5: answer from %s: %w", to, err)
	}
	start, ok := tok.(xml.StartElement)
	if !ok {
		return fmt.Errorf("socks5: answer from %s: unexpected %T", to, tok)
	}
	iq, err := stanza.NewIQ(start)
	if err != nil {
		return fmt.Errorf("socks5: answer from %s: %w", to, err)
	}
	local := s.LocalAddr()
	if !iq.From.Equal(to) && !(iq.From.String() == "" && to.Equal(local.Bare())) {
		return fmt.Errorf("%w: iq to %s answered by %q", ErrUnexpectedSender, to, iq.From)
	}
	switch iq.Type {
	case stanza.ErrorIQ:
		se, err := stanza.UnmarshalError(r)
		if err != nil {
			return fmt.Errorf("socks5: error answer from %s: %w", to, err)
		}
		return fmt.Errorf("socks5: error answer from %s: %w", to, se)
	case stanza.ResultIQ:
	default:
		return fmt.Errorf("socks5: answer from %s has type %q", to, iq.Type)
	}
	if resp == nil {
		return nil
	}
	d := xml.NewTokenDecoder(xmlstream.Inner(r))
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return fmt.Errorf("socks5: empty result from %s", to)
		}
		if err != nil {
			return fmt.Errorf("socks5: result from %s: %w", to, err)
		}
		if st, ok := tok.(xml.StartElement); ok {
			if err := d.DecodeElement(resp, &st); err != nil {
				return fmt.Errorf("socks5: decoding result from %s: %w", to, err)
			}
			return nil
		}
	}
}

// QueryStreamHost asks a proxy for its SOCKS5 address (XEP-0065 §5.3.1)
// and returns it as a Proxy whose JID is the streamhost's.
func QueryStreamHost(ctx context.Context, s jingle.IQSender, proxy jid.JID) (Proxy, error) {
	var q Query
	if err := sendIQ(ctx, s, proxy, stanza.GetIQ, Query{}, &q); err != nil {
		return Proxy{}, err
	}
	if q.XMLName.Space != NSBytestreams {
		return Proxy{}, fmt.Errorf("socks5: %s answered with <%s xmlns='%s'>", proxy, q.XMLName.Local, q.XMLName.Space)
	}
	for _, sh := range q.StreamHosts {
		port, err := sh.PortNumber()
		if err != nil || sh.Host == "" {
			continue
		}
		j := proxy
		if sh.JID != "" {
			pj, err := jid.Parse(sh.JID)
			if err != nil {
				continue
			}
			j = pj
		}
		return Proxy{JID: j, Addr: net.JoinHostPort(sh.Host, strconv.Itoa(int(port)))}, nil
	}
	return Proxy{}, fmt.Errorf("socks5: %s gave no usable streamhost", proxy)
}

// ActivateProxy asks a proxy to activate the bytestream sid between this
// entity and target (XEP-0065 §5.3.3). Both must be connected to it.
func ActivateProxy(ctx context.Context, s jingle.IQSender, proxy jid.JID, sid string, target jid.JID) error {
	return sendIQ(ctx, s, proxy, stanza.SetIQ, Query{SID: sid, Activate: &Activate{JID: target.String()}}, nil)
}

type discoItems struct {
	XMLName xml.Name `xml:"http://jabber.org/protocol/disco#items query"`
	Items   []struct {
		JID  string `xml:"jid,attr"`
		Node string `xml:"node,attr"`
	} `xml:"item"`
}

type discoInfo struct {
	XMLName    xml.Name `xml:"http://jabber.org/protocol/disco#info query"`
	Identities []struct {
		Category string `xml:"category,attr"`
		Type     string `xml:"type,attr"`
	} `xml:"identity"`
	Features []struct {
		Var string `xml:"var,attr"`
	} `xml:"feature"`
}

// isProxy reports whether a disco#info answer describes a bytestreams
// proxy: identity proxy/bytestreams, or the bytestreams feature.
func (i discoInfo) isProxy() bool {
	for _, id := range i.Identities {
		if id.Category == "proxy" && id.Type == "bytestreams" {
			return true
		}
	}
	for _, f := range i.Features {
		if f.Var == NSBytestreams {
			return true
		}
	}
	return false
}

// DiscoverProxies looks for bytestreams proxies on a server (XEP-0065
// §5.2): disco#items of the domain, disco#info of each item (at most 32)
// for identity proxy/bytestreams or the bytestreams feature, then the
// streamhost of each proxy found. Items that fail are skipped; an error is
// returned when the items cannot be listed or ctx ends before all were
// asked (with the proxies found so far).
func DiscoverProxies(ctx context.Context, s jingle.IQSender, domain jid.JID) ([]Proxy, error) {
	var items discoItems
	if err := sendIQ(ctx, s, domain, stanza.GetIQ, struct {
		XMLName xml.Name `xml:"http://jabber.org/protocol/disco#items query"`
	}{}, &items); err != nil {
		return nil, err
	}
	var out []Proxy
	for i, it := range items.Items {
		if i >= maxDiscoItems {
			break
		}
		if err := ctx.Err(); err != nil {
			return out, fmt.Errorf("socks5: proxy discovery on %s: %w", domain, err)
		}
		if it.Node != "" {
			continue
		}
		j, err := jid.Parse(it.JID)
		if err != nil {
			continue
		}
		var info discoInfo
		if err := sendIQ(ctx, s, j, stanza.GetIQ, struct {
			XMLName xml.Name `xml:"http://jabber.org/protocol/disco#info query"`
		}{}, &info); err != nil || !info.isProxy() {
			continue
		}
		p, err := QueryStreamHost(ctx, s, j)
		if err != nil {
			continue
		}
		out = append(out, p)
	}
	return out, nil
}
