package jingle_test

import (
	"encoding/xml"
	"runtime"
	"testing"

	"github.com/jinglekit/jinglekit/internal/xmltest"

	"github.com/jinglekit/jinglekit/jingle"
)

// s5bOffer is a XEP-0260 <transport/> as peers send it: indented, three
// candidates.
const s5bOffer = `<transport xmlns='urn:xmpp:jingle:transports:s5b:1' dstaddr='972b7bf47291ca609517f67f86b5081086052dad' mode='tcp' sid='vj3hs98y'>
  <candidate cid='hft54dqy' host='192.168.4.1' jid='romeo@montague.example/dr4hcr0st3lup4c' port='5086' priority='8257636' type='direct'/>
  <candidate cid='hutr46fe' host='24.24.24.1' jid='romeo@montague.example/dr4hcr0st3lup4c' port='5087' priority='8258636' type='direct'/>
  <candidate cid='ooi8p0gq' host='2001:db8::1' jid='streamer.shakespeare.example' port='7625' priority='7878787' type='proxy'/>
</transport>`

// TestElementRetainedSize checks that a decoded Element keeps what is
// between its tags compactly: at most one and a half times the size of
// its XML text, where a copy of every token took four times as much.
func TestElementRetainedSize(t *testing.T) {
	const n = 2000
	els := make([]jingle.Element, n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range els {
		if err := xml.Unmarshal([]byte(s5bOffer), &els[i]); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%.0f bytes per element of %d bytes of XML", per, len(s5bOffer))
	if per > 1.5*float64(len(s5bOffer)) {
		t.Errorf("a decoded element keeps %.0f bytes, more than 1.5 times its %d bytes of XML", per, len(s5bOffer))
	}
	runtime.KeepAlive(els)
}

// TestElementCompactRoundTrip reads an element whose children change
// namespace (a prefixed one, an unqualified one, namespaced attributes,
// text with markup characters) and checks that writing it, its tokens and
// decoding it give what was read.
func TestElementCompactRoundTrip(t *testing.T) {
	const in = `<description xmlns='urn:xmpp:jingle:apps:file-transfer:5' a='1'>` +
		`<file><name>a &amp; &lt;b&gt;.txt</name>` +
		`<h:hash xmlns:h='urn:xmpp:hashes:2' algo='sha-256'>2AfMGH8O7UNPTvUVAM9aK13mpCY=</h:hash>` +
		`<x xmlns='' xmlns:q='urn:q' q:attr='v'><y>text</y></x></file>` +
		`<other xmlns='urn:other'><z/></other></description>`
	var e jingle.Element
	if err := xml.Unmarshal([]byte(in), &e); err != nil {
		t.Fatal(err)
	}
	out, err := xml.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	xmltest.AssertEqual(t, out, []byte(in))

	// An Element built from its tokens writes the same.
	built := jingle.Element{XMLName: e.XMLName, Attr: e.Attr, Inner: e.Tokens()}
	out2, err := xml.Marshal(built)
	if err != nil {
		t.Fatal(err)
	}
	xmltest.AssertEqual(t, out2, []byte(in))

	var v struct {
		File struct {
			Name string `xml:"name"`
			Hash struct {
				Algo  string `xml:"algo,attr"`
				Value string `xml:",chardata"`
			} `xml:"urn:xmpp:hashes:2 hash"`
			X struct {
				Attr string `xml:"urn:q attr,attr"`
				Y    string `xml:"y"`
			} `xml:"x"`
		} `xml:"file"`
	}
	if err := e.Decode(&v); err != nil {
		t.Fatal(err)
	}
	if v.File.Name != "a & <b>.txt" || v.File.Hash.Algo != "sha-256" || v.File.X.Attr != "v" || v.File.X.Y != "text" {
		t.Errorf("decoded %+v", v)
	}
}
