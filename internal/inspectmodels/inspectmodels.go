// Package inspectmodels registers the element models of jinglekit's
// protocol packages (IBB, SOCKS5, file transfer, ICE, RTP and JMI) in a
// stanzamodel.Registry: the models jinglectl inspect decodes stanzas
// with, and those each package's vector tests round-trip the XEP
// examples through, so that both use the same registrations.
package inspectmodels

import (
	"encoding/xml"

	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/internal/stanzamodel"
	"github.com/jinglekit/jinglekit/jmi"
	"github.com/jinglekit/jinglekit/rtp"
	"github.com/jinglekit/jinglekit/transports/ibb"
	"github.com/jinglekit/jinglekit/transports/ice"
	"github.com/jinglekit/jinglekit/transports/socks5"
)

// Registry returns stanzamodel.NewDefault's registry with every model of
// this package registered: what jinglectl inspect knows.
func Registry() *stanzamodel.Registry {
	r := stanzamodel.NewDefault()
	RegisterIBB(r)
	RegisterSOCKS5(r)
	RegisterFileTransfer(r)
	RegisterICE(r)
	RegisterRTP(r)
	return r
}

// RegisterIBB adds the ibb element models to r: the
// XEP-0047 <open/>, <data/> and <close/> that IQs and messages carry. The
// XEP-0261 <transport/> sits inside a Jingle content; its model is
// ibb.Transport.
func RegisterIBB(r *stanzamodel.Registry) {
	r.Register(ibb.OpenName, "ibb-open", stanzamodel.DecodeAs[ibb.Open]())
	r.Register(ibb.DataName, "ibb-data", stanzamodel.DecodeAs[ibb.Data]())
	r.Register(ibb.CloseName, "ibb-close", stanzamodel.DecodeAs[ibb.Close]())
	r.Register(ibb.TransportName, "ibb-transport", stanzamodel.DecodeAs[ibb.Transport]())
}

// RegisterSOCKS5 adds the socks5 element models to r.
//
// The XEP-0065 <query xmlns='http://jabber.org/protocol/bytestreams'/>
// (proxy streamhost query and answer, S5B offer and streamhost-used,
// activation) and <udpsuccess/> are stanza children. The XEP-0260
// <transport xmlns='urn:xmpp:jingle:transports:s5b:1'/> sits in a Jingle
// <content/>; it is registered by name so that Registry.Decode turns that
// nested jingle.Element into a socks5.Transport.
func RegisterSOCKS5(r *stanzamodel.Registry) {
	r.Register(xml.Name{Space: socks5.NSBytestreams, Local: "query"}, "bytestreams", stanzamodel.DecodeAs[socks5.Query]())
	r.Register(xml.Name{Space: socks5.NSBytestreams, Local: "udpsuccess"}, "bytestreams-udpsuccess", stanzamodel.DecodeAs[socks5.UDPSuccess]())
	r.Register(xml.Name{Space: socks5.NS, Local: "transport"}, "s5b-transport", stanzamodel.DecodeAs[socks5.Transport]())
}

// RegisterFileTransfer adds the filetransfer element models to r.
//
// None of them is a stanza child: <description/> sits in a Jingle
// <content/>, <checksum/> and <received/> in a session-info <jingle/>.
// They are registered by name so that Registry.Decode turns those nested
// jingle.Elements into models, in every namespace version the package
// accepts (:5, :4, :3).
func RegisterFileTransfer(r *stanzamodel.Registry) {
	for _, ns := range filetransfer.Namespaces() {
		r.Register(xml.Name{Space: ns, Local: "description"}, "file-description", stanzamodel.DecodeAs[filetransfer.Description]())
		r.Register(xml.Name{Space: ns, Local: "checksum"}, "file-checksum", stanzamodel.DecodeAs[filetransfer.Checksum]())
		r.Register(xml.Name{Space: ns, Local: "received"}, "file-received", stanzamodel.DecodeAs[filetransfer.Received]())
	}
}

// RegisterICE adds the ICE transport models to r.
//
// The transports sit in a Jingle <content/> and are decoded there by name:
// the ICE-UDP <transport/> of XEP-0176 (with the XEP-0320 fingerprints,
// XEP-0343 sctpmap and channels it may carry), also in Psi's
// urn:xmpp:jingle:transports:ice:0, and the webrtc-datachannel:1 wrapper
// of Conversations and Libervia. A <fingerprint/> or <sctpmap/> outside a
// transport (an RTP description's, say) is decoded on its own. XEP-0215's
// <services/> and <credentials/> are IQ payloads, in both namespace
// versions.
func RegisterICE(r *stanzamodel.Registry) {
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

// RegisterRTP adds the RTP (XEP-0167) models and XEP-0353's Jingle Message
// Initiation to r.
//
// <description/> sits in a Jingle <content/> (or a JMI <propose/>), the
// session-info payloads and XEP-0338's <group/> in a <jingle/>, the
// RTP error conditions in a <reason/>; they are registered by name so that
// nested elements are decoded. The JMI elements are message children.
func RegisterRTP(r *stanzamodel.Registry) {
	r.Register(xml.Name{Space: rtp.NS, Local: "description"}, "rtp-description", stanzamodel.DecodeAs[rtp.Description]())
	r.Register(xml.Name{Space: rtp.NSGrouping, Local: "group"}, "group", stanzamodel.DecodeAs[rtp.Group]())
	r.Register(xml.Name{Space: rtp.NSInfo, Local: "active"}, "rtp-active", stanzamodel.DecodeAs[rtp.Active]())
	r.Register(xml.Name{Space: rtp.NSInfo, Local: "hold"}, "rtp-hold", stanzamodel.DecodeAs[rtp.Hold]())
	r.Register(xml.Name{Space: rtp.NSInfo, Local: "unhold"}, "rtp-unhold", stanzamodel.DecodeAs[rtp.Unhold]())
	r.Register(xml.Name{Space: rtp.NSInfo, Local: "ringing"}, "rtp-ringing", stanzamodel.DecodeAs[rtp.Ringing]())
	r.Register(xml.Name{Space: rtp.NSInfo, Local: "mute"}, "rtp-mute", stanzamodel.DecodeAs[rtp.Mute]())
	r.Register(xml.Name{Space: rtp.NSInfo, Local: "unmute"}, "rtp-unmute", stanzamodel.DecodeAs[rtp.Unmute]())
	r.Register(xml.Name{Space: rtp.NSErrors, Local: "crypto-required"}, "rtp-crypto-required", stanzamodel.DecodeAs[rtp.CryptoRequired]())
	r.Register(xml.Name{Space: rtp.NSErrors, Local: "invalid-crypto"}, "rtp-invalid-crypto", stanzamodel.DecodeAs[rtp.InvalidCrypto]())
	for _, local := range []string{"propose", "ringing", "proceed", "reject", "retract", "finish"} {
		r.Register(xml.Name{Space: jmi.NS, Local: local}, "jmi-"+local, stanzamodel.DecodeAs[jmi.Message]())
	}
}
