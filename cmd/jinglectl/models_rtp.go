package main

import (
	"encoding/xml"

	"github.com/jinglekit/jinglekit/internal/stanzamodel"
	"github.com/jinglekit/jinglekit/jmi"
	"github.com/jinglekit/jinglekit/rtp"
)

// registerRTP adds the RTP (XEP-0167) models and XEP-0353's Jingle Message
// Initiation to inspect's registry.
//
// <description/> sits in a Jingle <content/> (or a JMI <propose/>), the
// session-info payloads and XEP-0338's <group/> in a <jingle/>, the
// RTP error conditions in a <reason/>; they are registered by name so that
// nested elements are decoded. The JMI elements are message children.
func registerRTP(r *stanzamodel.Registry) {
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
