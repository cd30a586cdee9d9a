package rtp_test

import (
	"encoding/xml"
	"strings"
	"testing"

	"github.com/jinglekit/jinglekit/internal/inspectmodels"
	"github.com/jinglekit/jinglekit/internal/stanzamodel"
	"github.com/jinglekit/jinglekit/internal/xmltest"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jmi"
	"github.com/jinglekit/jinglekit/rtp"
	"github.com/jinglekit/jinglekit/transports/ice"
)

var (
	nameDesc        = xml.Name{Space: rtp.NS, Local: "description"}
	nameGroup       = xml.Name{Space: rtp.NSGrouping, Local: "group"}
	nameFingerprint = xml.Name{Space: ice.NSDTLS, Local: "fingerprint"}
	nameICE         = xml.Name{Space: ice.NSICEUDP, Local: "transport"}
	nameCryptoReq   = xml.Name{Space: rtp.NSErrors, Local: "crypto-required"}
)

// infoNames are the session-info payloads with their model.
var infoNames = map[string]func(*testing.T, []byte) int{
	"active": func(t *testing.T, d []byte) int {
		return xmltest.RoundTrip[rtp.Active](t, d, xml.Name{Space: rtp.NSInfo, Local: "active"})
	},
	"hold": func(t *testing.T, d []byte) int {
		return xmltest.RoundTrip[rtp.Hold](t, d, xml.Name{Space: rtp.NSInfo, Local: "hold"})
	},
	"unhold": func(t *testing.T, d []byte) int {
		return xmltest.RoundTrip[rtp.Unhold](t, d, xml.Name{Space: rtp.NSInfo, Local: "unhold"})
	},
	"ringing": func(t *testing.T, d []byte) int {
		return xmltest.RoundTrip[rtp.Ringing](t, d, xml.Name{Space: rtp.NSInfo, Local: "ringing"})
	},
	"mute": func(t *testing.T, d []byte) int {
		return xmltest.RoundTrip[rtp.Mute](t, d, xml.Name{Space: rtp.NSInfo, Local: "mute"})
	},
	"unmute": func(t *testing.T, d []byte) int {
		return xmltest.RoundTrip[rtp.Unmute](t, d, xml.Name{Space: rtp.NSInfo, Local: "unmute"})
	},
}

// TestVectorsRoundTrip: every well-formed example of XEP-0167, 0293, 0294,
// 0320, 0338, 0339 and 0353 goes through this package's models (and the
// JMI model of package jingle) and comes back with the same infoset,
// element by element and as whole stanzas parsed with the inspect
// registry. The minimum counts are those of the vectors of 2026-06-30: a
// vector that goes missing makes the test fail.
func TestVectorsRoundTrip(t *testing.T) {
	min := map[string]map[string]int{
		"xep-0167": {"description": 13, "info": 8, "crypto-required": 2},
		"xep-0293": {"description": 5},
		"xep-0294": {"description": 4},
		"xep-0320": {"fingerprint": 3, "description": 2},
		"xep-0338": {}, // only disco examples; <group/> is tested in sdp_test.go
		"xep-0339": {}, // likewise for <source/> and <ssrc-group/>
		"xep-0353": {"description": 4, "jmi": 12},
	}
	reg := inspectmodels.Registry()
	xmltest.CountVectors(t, min, func(t *testing.T, v xmltest.Vector, got map[string]int) {
		got["description"] += xmltest.RoundTrip[rtp.Description](t, v.Data, nameDesc)
		got["group"] += xmltest.RoundTrip[rtp.Group](t, v.Data, nameGroup)
		got["fingerprint"] += xmltest.RoundTrip[ice.Fingerprint](t, v.Data, nameFingerprint)
		got["crypto-required"] += xmltest.RoundTrip[rtp.CryptoRequired](t, v.Data, nameCryptoReq)
		for _, f := range infoNames {
			got["info"] += f(t, v.Data)
		}
		for _, local := range []string{"propose", "ringing", "proceed", "reject", "retract", "finish"} {
			got["jmi"] += xmltest.RoundTrip[jmi.Message](t, v.Data, xml.Name{Space: jmi.NS, Local: local})
		}
		if strings.Contains(v.Note, "typo") {
			// The <jingle/> of XEP-0293's example 5 is closed before its
			// attributes, which become text; the jingle model keeps no
			// text, so only the elements above are compared.
			t.Logf("whole-stanza comparison skipped: %s", v.Note)
			return
		}
		checkStanzas(t, reg, v.Data)
	})
}

// checkStanzas parses data with the registry, checks that every RTP
// description nested in a <jingle/> became a *rtp.Description, and that
// the stanzas, written back, equal the input.
func checkStanzas(t *testing.T, reg *stanzamodel.Registry, data []byte) {
	t.Helper()
	xmltest.StanzasRoundTrip(t, reg, data, func(s *stanzamodel.Stanza) {
		for _, p := range s.Payload {
			j, ok := p.Model.(*jingle.Jingle)
			if !ok {
				continue
			}
			for _, c := range j.Contents {
				if c.Description == nil || c.Description.Namespace() != rtp.NS {
					continue
				}
				pl, err := reg.Decode(*c.Description)
				if err != nil {
					t.Fatal(err)
				}
				if _, ok := pl.Model.(*rtp.Description); !ok {
					t.Errorf("nested description decoded as %T", pl.Model)
				}
			}
		}
	})
}
