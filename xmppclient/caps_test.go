package xmppclient

import (
	"bytes"
	"encoding/xml"
	"errors"
	"slices"
	"strings"
	"testing"

	"mellium.im/xmlstream"
)

// The "simple generation example" of XEP-0115 §5.2.
const (
	xepSimpleVer  = "QgayPKawpkPSDYmwT/WM94uAlu0="
	xepComplexVer = "q07IKJEyjvHSyhy//CH0CxmKi8w="
)

var xepSimpleFeatures = []string{
	"http://jabber.org/protocol/caps",
	"http://jabber.org/protocol/disco#info",
	"http://jabber.org/protocol/disco#items",
	"http://jabber.org/protocol/muc",
}

func TestComputeVerXEPSimpleExample(t *testing.T) {
	info := Info{
		Identities: []Identity{{Category: "client", Type: "pc", Name: "Exodus 0.9.1"}},
		// Deliberately not sorted: sorting is part of the algorithm.
		Features: []string{xepSimpleFeatures[3], xepSimpleFeatures[1], xepSimpleFeatures[0], xepSimpleFeatures[2]},
	}
	ver, err := ComputeVer(info)
	if err != nil {
		t.Fatal(err)
	}
	if ver != xepSimpleVer {
		t.Errorf("ver = %q, want %q", ver, xepSimpleVer)
	}
	if info.Features[0] != xepSimpleFeatures[3] {
		t.Error("ComputeVer reordered the caller's features")
	}

	caps := Caps{
		Node:       "http://code.google.com/p/exodus",
		Identities: info.Identities,
		Features:   slices.Clone(xepSimpleFeatures),
	}
	if got := caps.Ver(); got != xepSimpleVer {
		t.Errorf("Caps.Ver() = %q, want %q", got, xepSimpleVer)
	}
	if got, want := caps.CapsNode(), "http://code.google.com/p/exodus#"+xepSimpleVer; got != want {
		t.Errorf("CapsNode() = %q, want %q", got, want)
	}
}

// The "complex generation example" of XEP-0115 §5.3, as it appears on the
// wire: two identities differing in xml:lang and a XEP-0128 form.
const xepComplexQuery = `<query xmlns='http://jabber.org/protocol/disco#info'
       node='http://psi-im.org#q07IKJEyjvHSyhy//CH0CxmKi8w='>
  <identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>
  <identity xml:lang='el' category='client' name='Ψ 0.11' type='pc'/>
  <feature var='http://jabber.org/protocol/caps'/>
  <feature var='http://jabber.org/protocol/disco#info'/>
  <feature var='http://jabber.org/protocol/disco#items'/>
  <feature var='http://jabber.org/protocol/muc'/>
  <x xmlns='jabber:x:data' type='result'>
    <field var='FORM_TYPE' type='hidden'>
      <value>urn:xmpp:dataforms:softwareinfo</value>
    </field>
    <field var='ip_version'>
      <value>ipv4</value>
      <value>ipv6</value>
    </field>
    <field var='os'>
      <value>Mac</value>
    </field>
    <field var='os_version'>
      <value>10.5.1</value>
    </field>
    <field var='software'>
      <value>Psi</value>
    </field>
    <field var='software_version'>
      <value>0.11</value>
    </field>
  </x>
</query>`

func decodeInfo(t *testing.T, s string) Info {
	t.Helper()
	var q infoQuery
	if err := xml.Unmarshal([]byte(s), &q); err != nil {
		t.Fatal(err)
	}
	return q.info()
}

func TestComputeVerXEPComplexExample(t *testing.T) {
	info := decodeInfo(t, xepComplexQuery)
	if len(info.Identities) != 2 || info.Identities[1].Lang != "el" || len(info.Forms) != 1 {
		t.Fatalf("decoded %+v", info)
	}
	ver, err := ComputeVer(info)
	if err != nil {
		t.Fatal(err)
	}
	if ver != xepComplexVer {
		t.Errorf("ver = %q, want %q", ver, xepComplexVer)
	}

	// A form without a hidden FORM_TYPE is ignored (XEP-0115 §5.4), so it
	// must change nothing.
	info.Forms = append(info.Forms, Form{Type: "result", Fields: []Field{{Var: "FORM_TYPE", Values: []string{"urn:example"}}}})
	if ver, err := ComputeVer(info); err != nil || ver != xepComplexVer {
		t.Errorf("with a non-hidden FORM_TYPE form: ver = %q, %v", ver, err)
	}
}

// TestInfoRoundTrip encodes an Info with TokenReader, decodes it again and
// checks that nothing that enters the hash was lost.
func TestInfoRoundTrip(t *testing.T) {
	info := decodeInfo(t, xepComplexQuery)
	var buf bytes.Buffer
	e := xml.NewEncoder(&buf)
	if _, err := xmlstream.Copy(e, info.TokenReader()); err != nil {
		t.Fatal(err)
	}
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `xml:lang="el"`) {
		t.Errorf("encoded identity lost xml:lang: %s", buf.String())
	}
	again := decodeInfo(t, buf.String())
	if again.Node != info.Node {
		t.Errorf("node = %q, want %q", again.Node, info.Node)
	}
	ver, err := ComputeVer(again)
	if err != nil || ver != xepComplexVer {
		t.Errorf("round-tripped ver = %q, %v; encoded: %s", ver, err, buf.String())
	}
}

func TestComputeVerRejectsIllFormed(t *testing.T) {
	id := Identity{Category: "client", Type: "pc"}
	form := func(formType ...string) Form {
		return Form{Type: "result", Fields: []Field{{Var: "FORM_TYPE", Type: "hidden", Values: formType}}}
	}
	for name, info := range map[string]Info{
		"duplicate feature":  {Identities: []Identity{id}, Features: []string{"urn:a", "urn:b", "urn:a"}},
		"duplicate identity": {Identities: []Identity{id, {Category: "client", Type: "bot"}, id}},
		"duplicate form":     {Identities: []Identity{id}, Forms: []Form{form("urn:f"), form("urn:f")}},
		"FORM_TYPE values":   {Identities: []Identity{id}, Forms: []Form{form("urn:f", "urn:g")}},
	} {
		if ver, err := ComputeVer(info); !errors.Is(err, ErrInvalidInfo) {
			t.Errorf("%s: ver %q, err %v; want ErrInvalidInfo", name, ver, err)
		}
	}
	// Identities that differ only by name or language are distinct.
	ok := Info{Identities: []Identity{id, {Category: "client", Type: "pc", Name: "x"}, {Category: "client", Type: "pc", Lang: "en"}}}
	if _, err := ComputeVer(ok); err != nil {
		t.Errorf("distinct identities: %v", err)
	}
}

func TestCapsInfoNormalises(t *testing.T) {
	c := Caps{Features: []string{"urn:xmpp:jingle:1", "urn:xmpp:jingle:1", NSDiscoInfo}}
	info := c.Info()
	want := []string{NSCaps, NSDiscoInfo, "urn:xmpp:jingle:1"}
	if !slices.Equal(info.Features, want) {
		t.Errorf("features = %q, want %q", info.Features, want)
	}
	if len(info.Identities) != 1 || info.Identities[0] != (Identity{Category: "client", Type: "bot"}) {
		t.Errorf("identities = %+v, want the default client/bot", info.Identities)
	}
	if c.node() != DefaultNode {
		t.Errorf("node = %q", c.node())
	}
	// Ver is the hash of exactly what Info returns, so that the responder
	// and the advertised caps agree.
	ver, err := ComputeVer(info)
	if err != nil || ver != c.Ver() {
		t.Errorf("ComputeVer(Info()) = %q, %v; Ver() = %q", ver, err, c.Ver())
	}
	// Adding a feature changes the ver.
	c2 := c
	c2.Features = append(slices.Clone(c.Features), "urn:xmpp:jingle:apps:file-transfer:5")
	if c2.Ver() == c.Ver() {
		t.Error("ver did not change with the features")
	}
}

func TestCapsElement(t *testing.T) {
	c := Caps{Features: []string{"urn:xmpp:jingle:1"}}
	var buf bytes.Buffer
	e := xml.NewEncoder(&buf)
	if _, err := xmlstream.Copy(e, c.TokenReader()); err != nil {
		t.Fatal(err)
	}
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	var got struct {
		XMLName xml.Name
		Hash    string `xml:"hash,attr"`
		Node    string `xml:"node,attr"`
		Ver     string `xml:"ver,attr"`
	}
	if err := xml.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.XMLName != (xml.Name{Space: NSCaps, Local: "c"}) || got.Hash != "sha-1" ||
		got.Node != DefaultNode || got.Ver != c.Ver() {
		t.Errorf("caps element %s decoded as %+v", buf.String(), got)
	}
}

func TestLRU(t *testing.T) {
	c := newLRU[string, int](2)
	c.put("a", 1)
	c.put("b", 2)
	if v, ok := c.get("a"); !ok || v != 1 { // a is now the most recent
		t.Fatalf("get(a) = %d, %v", v, ok)
	}
	c.put("c", 3) // evicts b
	if _, ok := c.get("b"); ok {
		t.Error("b was not evicted")
	}
	if _, ok := c.get("a"); !ok {
		t.Error("a was evicted although recently used")
	}
	c.put("a", 4)
	if v, _ := c.get("a"); v != 4 || c.len() != 2 {
		t.Errorf("update: a = %d, len %d", v, c.len())
	}
	c.remove("a")
	if _, ok := c.get("a"); ok || c.len() != 1 {
		t.Errorf("remove: len %d", c.len())
	}
}
