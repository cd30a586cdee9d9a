package main

import (
	"encoding/xml"

	"github.com/jinglekit/jinglekit/internal/stanzamodel"
	"github.com/jinglekit/jinglekit/transports/ice"
)

// registerICE adds the ICE transport models to inspect's registry.
//
// The transports sit in a Jingle <content/> and are decoded there by name:
// the ICE-UDP <transport/> of XEP-0176 (with the XEP-0320 fingerprints,
// XEP-0343 sctpmap and channels it may carry), also in Psi's
// urn:xmpp:jingle:transports:ice:0, and the webrtc-datachannel:1 wrapper
// of Conversations and Libervia. A <fingerprint/> or <sctpmap/> outside a
// transport (an RTP description's, say) is decoded on its own. XEP-0215's
// <services/> and <credentials/> are IQ payloads, in both namespace
// versions.
func registerICE(r *stanzamodel.Registry) {
	for _, ns := range []string{ice.NSICEUDP, ice.NSICE0} {
		r.Register(xml.Name{Space: ns, Local: "transport"}, "ice-udp-transport", stanzamodel.DecodeAs[ice.Transport]())
	}
	r.Register(xml.Name{Space: ice.NSWebRTCDataChannel, Local: "transport"}, "webrtc-datachannel-transport", stanzamodel.DecodeAs[ice.DataChannelTransport]())
	r.Register(xml.Name{Space: ice.NSDTLS, Local: "fingerprint"}, "dtls-fingerprint", stanzamodel.DecodeAs[ice.Fingerprint]())
	r.Register(xml.Name{Space: ice.NSDTLSSCTP, Local: "sctpmap"}, "sctpmap", stanzamodel.DecodeAs[ice.SCTPMap]())
	for _, ns := range []string{ice.NSExtDisco, ice.NSExtDisco1} {
		r.Register(xml.Name{Space: ns, Local: "services"}, "extdisco-services", stanzamodel.DecodeAs[ice.Services]())
		r.Register(xml.Name{Space: ns, Local: "credentials"}, "extdisco-credentials", stanzamodel.DecodeAs[ice.ExtCredentials]())
	}
}
