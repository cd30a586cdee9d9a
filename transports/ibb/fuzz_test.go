package ibb_test

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"strings"
	"testing"

	"github.com/jinglekit/jinglekit/internal/xmltest"
	"github.com/jinglekit/jinglekit/transports/ibb"
)

// FuzzIBB decodes what a peer sends in-band — <open/>, <data/>, <close/>
// (XEP-0047) and the Jingle <transport/> (XEP-0261): no panic, what
// decodes round-trips unchanged, the payload of a <data/> decodes to the
// bytes the standard base64 decoder gives (white space aside), and those
// bytes re-encoded decode to the same.
func FuzzIBB(f *testing.F) {
	for _, local := range []string{"open", "data", "close"} {
		xmltest.SeedElements(f, xml.Name{Space: ibb.NS, Local: local}, "0047")
	}
	xmltest.SeedElements(f, xml.Name{Space: ibb.NSTransport, Local: "transport"}, "0261")
	f.Fuzz(func(t *testing.T, data []byte) {
		xmltest.FuzzRoundTrip[ibb.Open](t, data)
		xmltest.FuzzRoundTrip[ibb.Close](t, data)
		xmltest.FuzzRoundTrip[ibb.Transport](t, data)
		d, ok := xmltest.FuzzRoundTrip[ibb.Data](t, data)
		if !ok {
			return
		}
		p, err := d.Bytes()
		if err != nil {
			return
		}
		std, err := base64.StdEncoding.DecodeString(strings.Map(func(r rune) rune {
			if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
				return -1
			}
			return r
		}, d.Payload))
		if err != nil || !bytes.Equal(p, std) {
			t.Fatalf("payload %q decodes to %q, the standard decoder says %q, %v", d.Payload, p, std, err)
		}
		back := ibb.NewData(d.SID, uint16(d.Seq), p)
		p2, err := back.Bytes()
		if err != nil || !bytes.Equal(p, p2) {
			t.Fatalf("payload %q: %q, re-encoded %q gives %q, %v", d.Payload, p, back.Payload, p2, err)
		}
	})
}
