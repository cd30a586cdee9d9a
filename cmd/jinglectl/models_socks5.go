package main

import (
	"encoding/xml"

	"github.com/jinglekit/jinglekit/internal/stanzamodel"
	"github.com/jinglekit/jinglekit/transports/socks5"
)

// registerSOCKS5 adds the socks5 element models to inspect's registry.
//
// The XEP-0065 <query xmlns='http://jabber.org/protocol/bytestreams'/>
// (proxy streamhost query and answer, S5B offer and streamhost-used,
// activation) and <udpsuccess/> are stanza children. The XEP-0260
// <transport xmlns='urn:xmpp:jingle:transports:s5b:1'/> sits in a Jingle
// <content/>; it is registered by name so that Registry.Decode turns that
// nested jingle.Element into a socks5.Transport.
func registerSOCKS5(r *stanzamodel.Registry) {
	r.Register(xml.Name{Space: socks5.NSBytestreams, Local: "query"}, "bytestreams", stanzamodel.DecodeAs[socks5.Query]())
	r.Register(xml.Name{Space: socks5.NSBytestreams, Local: "udpsuccess"}, "bytestreams-udpsuccess", stanzamodel.DecodeAs[socks5.UDPSuccess]())
	r.Register(xml.Name{Space: socks5.NS, Local: "transport"}, "s5b-transport", stanzamodel.DecodeAs[socks5.Transport]())
}
