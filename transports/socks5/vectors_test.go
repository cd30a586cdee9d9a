package socks5_test

import (
	"bytes"
	"encoding/xml"
	"testing"

	"github.com/jinglekit/jinglekit/internal/inspectmodels"
	"github.com/jinglekit/jinglekit/internal/stanzamodel"
	"github.com/jinglekit/jinglekit/internal/xmltest"
	"github.com/jinglekit/jinglekit/transports/socks5"
)

var (
	nameQuery      = xml.Name{Space: socks5.NSBytestreams, Local: "query"}
	nameUDPSuccess = xml.Name{Space: socks5.NSBytestreams, Local: "udpsuccess"}
	nameTransport  = xml.Name{Space: socks5.NS, Local: "transport"}
)

// The examples of the manifest of 2026-06-30: XEP-0065 has 8 bytestreams
// <query/> elements and one <udpsuccess/>, XEP-0260 five <transport/>
// elements and one <query/> (the activation). A vector that goes missing
// makes the tests fail.
const (
	minQueries    = 9
	minUDPSuccess = 1
	minTransports = 5
)

func vectors(t *testing.T) []xmltest.Vector {
	return append(xmltest.Vectors(t, "0065"), xmltest.Vectors(t, "0260")...)
}

// TestVectorsRoundTrip parses every well-formed XEP-0065 and XEP-0260
// example with the stanza models, checks that each bytestreams <query/>
// and <udpsuccess/> became this package's model, writes the stanzas back
// and compares the infosets.
func TestVectorsRoundTrip(t *testing.T) {
	var queries, udp, files, wellFormed int
	for _, v := range vectors(t) {
		if !v.WellFormed {
			continue
		}
		wellFormed++
		t.Run(v.XEP+"/"+v.Name(), func(t *testing.T) {
			ss, err := inspectmodels.Registry().Parse(bytes.NewReader(v.Data))
			if err != nil {
				t.Fatal(err)
			}
			var out []byte
			var q, u int
			for _, s := range ss {
				for _, p := range s.Payload {
					switch p.Name {
					case nameQuery:
						if _, ok := p.Model.(*socks5.Query); !ok {
							t.Errorf("<query/>: model %T", p.Model)
						}
						q++
					case nameUDPSuccess:
						if _, ok := p.Model.(*socks5.UDPSuccess); !ok {
							t.Errorf("<udpsuccess/>: model %T", p.Model)
						}
						u++
					}
				}
				b, err := stanzamodel.Marshal(s)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, b...)
			}
			if xmltest.AssertEqual(t, out, v.Data) {
				files++
				queries += q
				udp += u
			}
		})
	}
	if files != wellFormed {
		t.Errorf("%d of %d well-formed vectors round-tripped", files, wellFormed)
	}
	if queries < minQueries || udp < minUDPSuccess {
		t.Errorf("%d <query/> and %d <udpsuccess/> models checked, want at least %d and %d", queries, udp, minQueries, minUDPSuccess)
	}
}

// TestVectorsUnmarshal decodes each XEP-0260 <transport/> and XEP-0065
// <query/> and <udpsuccess/> of the examples with xml.Unmarshal alone
// (the <transport/> sits inside a Jingle content, where the stanza parser
// keeps it as an element) and checks that xml.Marshal gives the same
// subtree back.
func TestVectorsUnmarshal(t *testing.T) {
	counts := map[xml.Name]int{}
	for _, v := range vectors(t) {
		if !v.WellFormed {
			continue
		}
		t.Run(v.XEP+"/"+v.Name(), func(t *testing.T) {
			for _, c := range []struct {
				name xml.Name
				new  func() any
			}{
				{nameTransport, func() any { return new(socks5.Transport) }},
				{nameQuery, func() any { return new(socks5.Query) }},
				{nameUDPSuccess, func() any { return new(socks5.UDPSuccess) }},
			} {
				els, err := xmltest.FindAll(v.Data, c.name)
				if err != nil {
					t.Fatal(err)
				}
				for _, orig := range els {
					m := c.new()
					if err := xml.Unmarshal(orig, m); err != nil {
						t.Fatalf("Unmarshal: %v\n%s", err, orig)
					}
					out, err := xml.Marshal(m)
					if err != nil {
						t.Fatal(err)
					}
					if xmltest.AssertEqual(t, out, orig) {
						counts[c.name]++
					}
				}
			}
		})
	}
	if counts[nameTransport] < minTransports || counts[nameQuery] < minQueries || counts[nameUDPSuccess] < minUDPSuccess {
		t.Errorf("round-tripped %d <transport/>, %d <query/>, %d <udpsuccess/>; want at least %d, %d, %d",
			counts[nameTransport], counts[nameQuery], counts[nameUDPSuccess], minTransports, minQueries, minUDPSuccess)
	}
}

// vectorElement returns the only element named name of one example.
func vectorElement(t *testing.T, xep, file string, name xml.Name) []byte {
	t.Helper()
	for _, v := range xmltest.Vectors(t, xep) {
		if v.Name() != file {
			continue
		}
		els, err := xmltest.FindAll(v.Data, name)
		if err != nil {
			t.Fatal(err)
		}
		if len(els) != 1 {
			t.Fatalf("%s: %d %s elements, want 1", v.File, len(els), name.Local)
		}
		return els[0]
	}
	t.Fatalf("%s/%s is not in the manifest", xep, file)
	return nil
}

// TestVectorValues checks what the models read from the examples.
func TestVectorValues(t *testing.T) {
	t.Run("0260 ex01 initiator's candidates", func(t *testing.T) {
		var tr socks5.Transport
		if err := xml.Unmarshal(vectorElement(t, "0260", "ex01", nameTransport), &tr); err != nil {
			t.Fatal(err)
		}
		if tr.SID != "vj3hs98y" || tr.Mode != "tcp" || tr.DstAddr != "972b7bf47291ca609517f67f86b5081086052dad" {
			t.Errorf("transport %+v", tr)
		}
		if len(tr.Candidates) != 3 {
			t.Fatalf("%d candidates", len(tr.Candidates))
		}
		c := tr.Candidates[2]
		port, err := c.PortNumber()
		if err != nil || port != 7625 {
			t.Errorf("port %d, %v", port, err)
		}
		prio, err := c.PriorityValue()
		if err != nil || prio != 7878787 {
			t.Errorf("priority %d, %v", prio, err)
		}
		if c.CID != "xmdh4b7i" || c.Type != socks5.TypeProxy || c.JID != "streamer.shakespeare.lit" || c.Host != "123.456.7.8" {
			t.Errorf("candidate %+v", c)
		}
		if tr.CandidateUsed != nil || tr.CandidateError != nil || tr.Activated != nil || tr.ProxyError != nil || len(tr.Extra) != 0 {
			t.Errorf("unexpected children: %+v", tr)
		}
	})
	t.Run("0260 notifications", func(t *testing.T) {
		for file, check := range map[string]func(socks5.Transport) bool{
			"ex07": func(tr socks5.Transport) bool { return tr.CandidateError != nil && tr.CandidateUsed == nil },
			"ex11": func(tr socks5.Transport) bool { return tr.Activated != nil && tr.Activated.CID == "xmdh4b7i" },
			"ex12": func(tr socks5.Transport) bool { return tr.ProxyError != nil && tr.Activated == nil },
		} {
			var tr socks5.Transport
			if err := xml.Unmarshal(vectorElement(t, "0260", file, nameTransport), &tr); err != nil {
				t.Fatal(err)
			}
			if !check(tr) || len(tr.Candidates) != 0 {
				t.Errorf("%s: %+v", file, tr)
			}
		}
	})
	t.Run("0065 activate and streamhost-used", func(t *testing.T) {
		var q socks5.Query
		if err := xml.Unmarshal(vectorElement(t, "0065", "ex23", nameQuery), &q); err != nil {
			t.Fatal(err)
		}
		if q.SID != "vxf9n471bn46" || q.Activate == nil || q.Activate.JID != "target@example.org/bar" {
			t.Errorf("query %+v", q)
		}
		q = socks5.Query{}
		if err := xml.Unmarshal(vectorElement(t, "0065", "ex08", nameQuery), &q); err != nil {
			t.Fatal(err)
		}
		if len(q.StreamHosts) != 1 || q.StreamHosts[0].JID != "streamer.example.com" || q.StreamHosts[0].Host != "24.24.24.1" {
			t.Fatalf("query %+v", q)
		}
		if p, err := q.StreamHosts[0].PortNumber(); err != nil || p != 7625 {
			t.Errorf("port %d, %v", p, err)
		}
		q = socks5.Query{}
		if err := xml.Unmarshal(vectorElement(t, "0065", "ex20", nameQuery), &q); err != nil {
			t.Fatal(err)
		}
		if q.StreamHostUsed == nil || q.StreamHostUsed.JID != "streamer.example.com" {
			t.Errorf("query %+v", q)
		}
		q = socks5.Query{}
		if err := xml.Unmarshal(vectorElement(t, "0065", "ex25", nameQuery), &q); err != nil {
			t.Fatal(err)
		}
		if q.DstAddr != "416781edf1ae50bad01cb8509ba35b43952bc345" || q.SID != "yia72g3v49j7" {
			t.Errorf("query %+v", q)
		}
	})
}
