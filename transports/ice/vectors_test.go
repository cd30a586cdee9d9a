package ice_test

import (
	"bytes"
	"encoding/xml"
	"testing"

	"github.com/jinglekit/jinglekit/internal/inspectmodels"
	"github.com/jinglekit/jinglekit/internal/stanzamodel"
	"github.com/jinglekit/jinglekit/internal/xmltest"
	"github.com/jinglekit/jinglekit/transports/ice"
)

var (
	nameICE         = xml.Name{Space: ice.NSICEUDP, Local: "transport"}
	nameDataChannel = xml.Name{Space: ice.NSWebRTCDataChannel, Local: "transport"}
	nameFingerprint = xml.Name{Space: ice.NSDTLS, Local: "fingerprint"}
	nameSCTPMap     = xml.Name{Space: ice.NSDTLSSCTP, Local: "sctpmap"}
	nameServices    = xml.Name{Space: ice.NSExtDisco, Local: "services"}
	nameCredentials = xml.Name{Space: ice.NSExtDisco, Local: "credentials"}
)

// TestVectorsRoundTrip: every well-formed example of XEP-0176, XEP-0320,
// XEP-0343 and XEP-0215 goes through this package's models and comes back
// with the same infoset, element by element and as whole stanzas parsed
// with the inspect registry (whose nested models must be this package's
// types). The minimum counts are those of the vectors of 2026-06-30; a
// vector that goes missing makes the test fail.
func TestVectorsRoundTrip(t *testing.T) {
	min := map[string]map[xml.Name]int{
		"xep-0176": {nameICE: 5},
		"xep-0320": {nameICE: 3, nameFingerprint: 3},
		"xep-0343": {nameICE: 3, nameFingerprint: 2, nameSCTPMap: 2},
		"xep-0215": {nameServices: 4, nameCredentials: 2},
	}
	reg := inspectmodels.Registry()
	xmltest.CountVectors(t, min, func(t *testing.T, v xmltest.Vector, got map[xml.Name]int) {
		got[nameICE] += xmltest.RoundTrip[ice.Transport](t, v.Data, nameICE)
		got[nameDataChannel] += xmltest.RoundTrip[ice.DataChannelTransport](t, v.Data, nameDataChannel)
		got[nameFingerprint] += xmltest.RoundTrip[ice.Fingerprint](t, v.Data, nameFingerprint)
		got[nameSCTPMap] += xmltest.RoundTrip[ice.SCTPMap](t, v.Data, nameSCTPMap)
		got[nameServices] += xmltest.RoundTrip[ice.Services](t, v.Data, nameServices)
		got[nameCredentials] += xmltest.RoundTrip[ice.ExtCredentials](t, v.Data, nameCredentials)
		checkStanzas(t, reg, v.Data)
	})
}

// checkStanzas parses data with the registry, checks that every ICE
// transport nested in a <jingle/> and every XEP-0215 payload became this
// package's model, and that the stanzas, written back, equal the input.
func checkStanzas(t *testing.T, reg *stanzamodel.Registry, data []byte) {
	t.Helper()
	xmltest.StanzasRoundTrip(t, reg, data, func(s *stanzamodel.Stanza) {
		for _, p := range s.Payload {
			switch p.Name {
			case nameServices:
				if _, ok := p.Model.(*ice.Services); !ok {
					t.Errorf("<services/>: model %T", p.Model)
				}
			case nameCredentials:
				if _, ok := p.Model.(*ice.ExtCredentials); !ok {
					t.Errorf("<credentials/>: model %T", p.Model)
				}
			}
			for _, n := range p.Nested {
				if n.Name == nameICE {
					m, ok := n.Model.(*ice.Transport)
					if !ok {
						t.Errorf("%s: model %T", n.Path, n.Model)
						continue
					}
					// The nested model writes back the element it came from.
					b, err := xml.Marshal(m)
					if err != nil {
						t.Fatal(err)
					}
					if _, err := xmltest.Infoset(bytes.NewReader(b)); err != nil {
						t.Errorf("%s: %v", n.Path, err)
					}
				}
			}
		}
	})
}

// TestTransportModel checks what the models read from the examples.
func TestTransportModel(t *testing.T) {
	vs := map[string][]byte{}
	for _, xep := range []string{"xep-0176", "xep-0320", "xep-0343"} {
		for _, v := range xmltest.Vectors(t, xep) {
			vs[v.File] = v.Data
		}
	}
	first := func(file string) ice.Transport {
		t.Helper()
		data, ok := vs[file]
		if !ok {
			t.Fatalf("vector %s missing", file)
		}
		els, err := xmltest.FindAll(data, nameICE)
		if err != nil || len(els) == 0 {
			t.Fatalf("%s: no ICE transport (%v)", file, err)
		}
		var tr ice.Transport
		if err := xml.Unmarshal(els[0], &tr); err != nil {
			t.Fatal(err)
		}
		return tr
	}
	tr := first("xep-0176/ex01.xml")
	if tr.Ufrag != "8hhy" || tr.Pwd != "asd88fgpdd777uzjYhagZg" || len(tr.Candidates) != 2 {
		t.Fatalf("ex01: %+v", tr)
	}
	if c := tr.Candidates[1]; c.Type != ice.TypeSrflx || c.RelAddr != "10.0.1.1" || c.RelPort != "8998" || c.Network != "1" {
		t.Errorf("ex01 srflx candidate: %+v", c)
	}
	for _, c := range tr.Candidates {
		if _, err := c.Parse(); err != nil {
			t.Errorf("ex01 candidate %s: %v", c.ID, err)
		}
	}
	if tr := first("xep-0176/ex04.xml"); tr.RemoteCandidate == nil || tr.RemoteCandidate.IP != "10.0.1.2" || tr.RemoteCandidate.Port != "9001" {
		t.Errorf("ex04 remote-candidate: %+v", tr.RemoteCandidate)
	}
	if tr := first("xep-0176/ex07.xml"); tr.Ufrag != "g7qs" || tr.Candidates[0].Generation != "1" {
		t.Errorf("ex07 restart: %+v", tr)
	}
	tr = first("xep-0320/ex01.xml")
	if len(tr.Fingerprints) != 1 || tr.Fingerprints[0].Setup != ice.SetupActPass || tr.Fingerprints[0].Hash != "sha-256" ||
		tr.Fingerprints[0].Normalized() != "02:1A:CC:54:27:AB:EB:9C:53:3F:3E:4B:65:2E:7D:46:3F:54:42:CD:54:F1:7A:03:A2:7D:F9:B0:7F:46:19:B2" {
		t.Errorf("xep-0320 ex01 fingerprint: %+v", tr.Fingerprints)
	}
	tr = first("xep-0343/ex01.xml")
	if tr.SCTPMap == nil || tr.SCTPMap.Number != "5000" || tr.SCTPMap.Protocol != "webrtc-datachannel" || tr.SCTPMap.Streams != "1024" {
		t.Errorf("xep-0343 ex01 sctpmap: %+v", tr.SCTPMap)
	}
}

// TestWireOrder: a Transport read from XML keeps its children's order; one
// built in code, or whose children changed, is written in field order.
func TestWireOrder(t *testing.T) {
	in := `<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='u' pwd='p' extra='x'>` +
		`<candidate component='1' foundation='1' ip='192.0.2.1' port='1' priority='1' protocol='udp' type='host'/>` +
		`<gathering-complete/>` +
		`<unknown xmlns='urn:example'/>` +
		`<sctpmap xmlns='urn:xmpp:jingle:transports:dtls-sctp:1' number='5000' protocol='webrtc-datachannel'/>` +
		`<fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' setup='active'>AA:BB</fingerprint>` +
		`</transport>`
	var tr ice.Transport
	if err := xml.Unmarshal([]byte(in), &tr); err != nil {
		t.Fatal(err)
	}
	if !tr.GatheringComplete || len(tr.Extra) != 1 || len(tr.ExtraAttrs) != 1 {
		t.Fatalf("%+v", tr)
	}
	out, err := xml.Marshal(tr)
	if err != nil {
		t.Fatal(err)
	}
	xmltest.AssertEqual(t, out, []byte(in))
	tr.Candidates = append(tr.Candidates, tr.Candidates[0])
	out, err = xml.Marshal(tr)
	if err != nil {
		t.Fatal(err)
	}
	want := `<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='u' pwd='p' extra='x'>` +
		`<fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' setup='active'>AA:BB</fingerprint>` +
		`<sctpmap xmlns='urn:xmpp:jingle:transports:dtls-sctp:1' number='5000' protocol='webrtc-datachannel'/>` +
		`<candidate component='1' foundation='1' ip='192.0.2.1' port='1' priority='1' protocol='udp' type='host'/>` +
		`<candidate component='1' foundation='1' ip='192.0.2.1' port='1' priority='1' protocol='udp' type='host'/>` +
		`<gathering-complete/>` +
		`<unknown xmlns='urn:example'/>` +
		`</transport>`
	xmltest.AssertEqual(t, out, []byte(want))
	// Psi's namespace is read and written back as it came.
	psi := `<transport xmlns='urn:xmpp:jingle:transports:ice:0' ufrag='u' pwd='p'><candidate component='1' foundation='1' ip='192.0.2.1' port='1' priority='1' protocol='udp' type='host'/></transport>`
	var p ice.Transport
	if err := xml.Unmarshal([]byte(psi), &p); err != nil || len(p.Candidates) != 1 {
		t.Fatalf("%v %+v", err, p)
	}
	out, _ = xml.Marshal(p)
	xmltest.AssertEqual(t, out, []byte(psi))
}
