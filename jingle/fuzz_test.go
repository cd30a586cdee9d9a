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
