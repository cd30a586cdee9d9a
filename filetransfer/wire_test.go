package filetransfer_test

import (
	"bytes"
	"encoding/xml"
	"slices"
	"strings"
	"testing"

	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/internal/inspectmodels"
	"github.com/jinglekit/jinglekit/internal/stanzamodel"
	"github.com/jinglekit/jinglekit/internal/xmltest"
	"github.com/jinglekit/jinglekit/jingle"
)

// The XEP-0234 examples the manifest has: 16 well-formed files with 5
// descriptions, 1 checksum and 1 received among them. Fewer means a
// vector went missing.
const (
	minVectors0234      = 16
	minDescriptions0234 = 5
	minChecksums0234    = 1
	minReceived0234     = 1
	minVectors0300      = 2
)

// TestVectors0234Elements decodes every <description/>, <checksum/> and
// <received/> of the XEP-0234 examples into the package's types and
// checks that encoding them gives the same infoset.
func TestVectors0234Elements(t *testing.T) {
	var files, descs, sums, recvd int
	for _, v := range xmltest.Vectors(t, "0234") {
		if !v.WellFormed {
			continue
		}
		files++
		for _, tc := range []struct {
			local string
			count *int
			model func() any
		}{
			{"description", &descs, func() any { return new(filetransfer.Description) }},
			{"checksum", &sums, func() any { return new(filetransfer.Checksum) }},
			{"received", &recvd, func() any { return new(filetransfer.Received) }},
		} {
			els, err := xmltest.FindAll(v.Data, xml.Name{Space: filetransfer.NS, Local: tc.local})
			if err != nil {
				t.Fatal(err)
			}
			for _, el := range els {
				m := tc.model()
				if err := xml.Unmarshal(el, m); err != nil {
					t.Fatalf("%s: %s: %v", v.Name(), tc.local, err)
				}
				out, err := xml.Marshal(m)
				if err != nil {
					t.Fatalf("%s: %s: %v", v.Name(), tc.local, err)
				}
				if !xmltest.AssertEqual(t, out, el) {
					t.Errorf("%s: %s does not round-trip", v.Name(), tc.local)
					continue
				}
				*tc.count++
			}
		}
	}
	if files < minVectors0234 || descs < minDescriptions0234 || sums < minChecksums0234 || recvd < minReceived0234 {
		t.Errorf("checked %d files, %d descriptions, %d checksums, %d received; want at least %d, %d, %d, %d",
			files, descs, sums, recvd, minVectors0234, minDescriptions0234, minChecksums0234, minReceived0234)
	}
}

// TestVectors0234Stanzas parses each XEP-0234 example with the stanza
// model, replaces every file-transfer element inside the Jingle payload
// by the package's model of it (through jingle.Element, as the session
// layer carries them) and checks the whole stanza still has the file's
// infoset.
func TestVectors0234Stanzas(t *testing.T) {
	reg := inspectmodels.Registry()
	var checked int
	for _, v := range xmltest.Vectors(t, "0234") {
		if !v.WellFormed {
			continue
		}
		t.Run(v.Name(), func(t *testing.T) {
			ss, err := reg.Parse(bytes.NewReader(v.Data))
			if err != nil {
				t.Fatal(err)
			}
			var out []byte
			for _, s := range ss {
				for _, p := range s.Payload {
					j, ok := p.Model.(*jingle.Jingle)
					if !ok {
						continue
					}
					for i, c := range j.Contents {
						if c.Description != nil && c.Description.Namespace() == filetransfer.NS {
							j.Contents[i].Description = remodel(t, reg, *c.Description)
						}
					}
					for i, x := range j.Info {
						if x.Namespace() == filetransfer.NS {
							j.Info[i] = *remodel(t, reg, x)
						}
					}
				}
				b, err := stanzamodel.Marshal(s)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, b...)
			}
			if xmltest.AssertEqual(t, out, v.Data) {
				checked++
			}
		})
	}
	if checked < minVectors0234 {
		t.Errorf("%d XEP-0234 vectors round-tripped, want at least %d", checked, minVectors0234)
	}
}

// remodel decodes el with the registry into the package's model and
// encodes it back into an Element.
func remodel(t *testing.T, reg *stanzamodel.Registry, el jingle.Element) *jingle.Element {
	t.Helper()
	p, err := reg.Decode(el)
	if err != nil {
		t.Fatal(err)
	}
	if p.Kind == stanzamodel.KindElement {
		t.Fatalf("no model for %s", el.XMLName.Local)
	}
	out, err := jingle.NewElement(p.Model)
	if err != nil {
		t.Fatal(err)
	}
	return &out
}

// TestVectors0300 round-trips the XEP-0300 examples (service discovery)
// and checks the package advertises the features they show in the form
// they show them.
func TestVectors0300(t *testing.T) {
	reg := inspectmodels.Registry()
	features := filetransfer.HashFeatures()
	var checked int
	for _, v := range xmltest.Vectors(t, "0300") {
		if !v.WellFormed {
			continue
		}
		ss, err := reg.Parse(bytes.NewReader(v.Data))
		if err != nil {
			t.Fatal(err)
		}
		var out []byte
		for _, s := range ss {
			b, err := stanzamodel.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b...)
		}
		if xmltest.AssertEqual(t, out, v.Data) {
			checked++
		}
		feats, err := xmltest.FindAll(v.Data, xml.Name{Space: "http://jabber.org/protocol/disco#info", Local: "feature"})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range feats {
			var feat struct {
				Var string `xml:"var,attr"`
			}
			if err := xml.Unmarshal(f, &feat); err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(features, feat.Var) {
				t.Errorf("%s: the example advertises %s, the package does not", v.Name(), feat.Var)
			}
		}
	}
	if checked < minVectors0300 {
		t.Errorf("%d XEP-0300 vectors round-tripped, want at least %d", checked, minVectors0300)
	}
}

// TestWireRoundTrip covers what the vectors do not: the :3 wrapper, :4
// empty hashes, ranged checksums, several <desc/>, extra children, and
// that child order survives.
func TestWireRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name  string
		xml   string
		check func(t *testing.T, v any)
	}{
		{
			name: "ft:3 offer",
			xml:  `<description xmlns='urn:xmpp:jingle:apps:file-transfer:3'><offer><file><date>1969-07-21T02:56:15Z</date><name>test.txt</name><range/><size>1022</size><hash xmlns='urn:xmpp:hashes:1' algo='sha-1'>552da749930852c69ae5d2141d3766b1</hash></file></offer></description>`,
			check: func(t *testing.T, v any) {
				d := v.(*filetransfer.Description)
				if d.Legacy != "offer" || d.File == nil || d.File.Name != "test.txt" || *d.File.Size != 1022 || d.Namespace() != filetransfer.NS3 {
					t.Fatalf("%+v", d)
				}
				if d.File.Time().Year() != 1969 {
					t.Fatalf("date %v", d.File.Time())
				}
			},
		},
		{
			name: "ft:3 request",
			xml:  `<description xmlns='urn:xmpp:jingle:apps:file-transfer:3'><request><file><hash xmlns='urn:xmpp:hashes:1' algo='sha-1'>552da749930852c69ae5d2141d3766b1</hash></file></request></description>`,
			check: func(t *testing.T, v any) {
				if d := v.(*filetransfer.Description); d.Legacy != "request" || len(d.File.Hashes) != 1 {
					t.Fatalf("%+v", d)
				}
			},
		},
		{
			name: "ft:4 empty hash",
			xml:  `<description xmlns='urn:xmpp:jingle:apps:file-transfer:4'><file><media-type>text/plain</media-type><name>test.txt</name><size>6144</size><hash xmlns='urn:xmpp:hashes:1' algo='sha-1'/></file></description>`,
		},
		{
			name: "ranged checksum",
			xml:  `<checksum xmlns='urn:xmpp:jingle:apps:file-transfer:5' creator='initiator' name='a-file-offer'><file><range offset='2048' length='1024'><hash xmlns='urn:xmpp:hashes:2' algo='sha-1'>kHp5RSzW/h7Gm1etSf90Mr5PC/k=</hash></range></file></checksum>`,
			check: func(t *testing.T, v any) {
				c := v.(*filetransfer.Checksum)
				l, ok := c.File.Range.LengthValue()
				if c.File.Range.OffsetValue() != 2048 || !ok || l != 1024 || len(c.File.Range.Hashes) != 1 {
					t.Fatalf("%+v", c.File.Range)
				}
			},
		},
		{
			name: "languages, extras and odd order",
			xml: `<description xmlns='urn:xmpp:jingle:apps:file-transfer:5'><file><hash-used xmlns='urn:xmpp:hashes:2' algo='sha-256'/><thumbnail xmlns='urn:xmpp:thumbs:1' uri='cid:x'/>` +
				`<desc xml:lang='en'>hello</desc><desc xml:lang='fr'>bonjour</desc><size>0</size><name></name></file><x xmlns='urn:example'/></description>`,
			check: func(t *testing.T, v any) {
				d := v.(*filetransfer.Description)
				if len(d.File.Desc) != 2 || d.File.Description() != "hello" || len(d.File.Extra) != 1 || len(d.Extra) != 1 {
					t.Fatalf("%+v", d.File)
				}
			},
		},
		{
			name: "received",
			xml:  `<received xmlns='urn:xmpp:jingle:apps:file-transfer:4' creator='responder' name='x'/>`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v any
			switch {
			case strings.HasPrefix(tc.xml, "<description"):
				v = new(filetransfer.Description)
			case strings.HasPrefix(tc.xml, "<checksum"):
				v = new(filetransfer.Checksum)
			default:
				v = new(filetransfer.Received)
			}
			if err := xml.Unmarshal([]byte(tc.xml), v); err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t, v)
			}
			out, err := xml.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			xmltest.AssertEqual(t, out, []byte(tc.xml))
			// And through a jingle.Element, as the session layer carries it.
			el, err := jingle.NewElement(v)
			if err != nil {
				t.Fatal(err)
			}
			xmltest.AssertEqual(t, []byte(el.String()), []byte(tc.xml))
		})
	}
}

// TestWireNewFile checks the shape of what the package sends: a new File
// is written in the schema's order, and an offer always has <desc/>.
func TestWireNewFile(t *testing.T) {
	sz := int64(5)
	f := filetransfer.File{Name: "a", Size: &sz, Desc: []filetransfer.Text{{}}, Range: &filetransfer.Range{},
		HashUsed: []filetransfer.HashUsed{{Algo: "sha-256"}}, Date: "2020-01-02T03:04:05Z", MediaType: "text/plain"}
	out, err := xml.Marshal(filetransfer.Description{File: &f})
	if err != nil {
		t.Fatal(err)
	}
	want := `<description xmlns='urn:xmpp:jingle:apps:file-transfer:5'><file><date>2020-01-02T03:04:05Z</date><desc/><media-type>text/plain</media-type>` +
		`<name>a</name><size>5</size><range/><hash-used xmlns='urn:xmpp:hashes:2' algo='sha-256'/></file></description>`
	if ok, diff := xmltest.Equal(out, []byte(want)); !ok {
		t.Fatalf("%s\n%s", out, diff)
	}
}

// TestWireBadInput: malformed numbers are errors, not zeros.
func TestWireBadInput(t *testing.T) {
	for _, in := range []string{
		`<description xmlns='urn:xmpp:jingle:apps:file-transfer:5'><file><size>12x</size></file></description>`,
		`<description xmlns='urn:xmpp:jingle:apps:file-transfer:5'><file><range offset='-'/></file></description>`,
		`<description xmlns='urn:xmpp:jingle:apps:file-transfer:5'><file><size>99999999999999999999999</size></file></description>`,
	} {
		var d filetransfer.Description
		if err := xml.Unmarshal([]byte(in), &d); err == nil {
			t.Errorf("%s: decoded as %+v", in, d.File)
		}
	}
}
