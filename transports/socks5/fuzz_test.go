package socks5_test

import (
	"encoding/xml"
	"testing"

	"github.com/jinglekit/jinglekit/internal/xmltest"
	"github.com/jinglekit/jinglekit/transports/socks5"
)

// FuzzS5BElements decodes the S5B <transport/> of XEP-0260 and the
// bytestreams <query/> of XEP-0065 (streamhosts, activation) as a peer or
// a proxy sends them: no panic, what decodes round-trips unchanged, and
// candidate ports and priorities parse or fail cleanly.
func FuzzS5BElements(f *testing.F) {
	xmltest.SeedElements(f, xml.Name{Space: socks5.NS, Local: "transport"}, "0260")
	xmltest.SeedElements(f, xml.Name{Space: socks5.NSBytestreams, Local: "query"}, "0065", "0260")
	f.Fuzz(func(t *testing.T, data []byte) {
		if tr, ok := xmltest.FuzzRoundTrip[socks5.Transport](t, data); ok {
			for _, c := range tr.Candidates {
				_, _ = c.PortNumber()
				_, _ = c.PriorityValue()
				_, _ = c.Type.Preference()
			}
		}
		if q, ok := xmltest.FuzzRoundTrip[socks5.Query](t, data); ok {
			for _, sh := range q.StreamHosts {
				_, _ = sh.PortNumber()
			}
		}
	})
}
