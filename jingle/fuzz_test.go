package jingle_test

import (
	"encoding/xml"
	"testing"

	"github.com/jinglekit/jinglekit/internal/xmltest"
	"github.com/jinglekit/jinglekit/jingle"
)

// FuzzJingle decodes a <jingle/> element as a peer may send it: no panic,
// and what decodes encodes and round-trips unchanged. Seeded with every
// <jingle/> of the XEP examples.
func FuzzJingle(f *testing.F) {
	name := xml.Name{Space: jingle.NS, Local: "jingle"}
	xmltest.SeedElements(f, name, "0166", "0167", "0176", "0177", "0234", "0260", "0261", "0293", "0294", "0320", "0338", "0339", "0343")
	f.Fuzz(func(t *testing.T, data []byte) {
		j, ok := xmltest.FuzzRoundTrip[jingle.Jingle](t, data)
		if !ok {
			return
		}
		for _, c := range j.Contents {
			_ = c.Key()
		}
	})
}

// TestElementRefusesInvalidNames: encoding/xml reads a prefixed name
// without checking what follows the colon; such an element could not be
// written back, so it is refused when read.
func TestElementRefusesInvalidNames(t *testing.T) {
	for _, s := range []string{`<a:0 xmlns:a="urn:a"/>`, `<x xmlns="urn:a"><a:1b xmlns:a="urn:b"/></x>`, `<x xmlns="urn:a" a:-="1" xmlns:a="urn:b"/>`} {
		var e jingle.Element
		if err := xml.Unmarshal([]byte(s), &e); err == nil {
			t.Errorf("%s read as %s", s, e)
		}
	}
	var e jingle.Element
	if err := xml.Unmarshal([]byte(`<a:x-1.b xmlns:a="urn:a" b:c_d="1" xmlns:b="urn:b"><é/></a:x-1.b>`), &e); err != nil {
		t.Errorf("valid names refused: %v", err)
	}
}
