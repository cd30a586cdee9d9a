package ice_test

import (
	"encoding/xml"
	"testing"

	"github.com/jinglekit/jinglekit/internal/xmltest"
	"github.com/jinglekit/jinglekit/transports/ice"
)

// FuzzICETransport decodes an ICE <transport/> as a peer sends it
// (ICE-UDP of XEP-0176, with XEP-0320 fingerprints and XEP-0343's
// sctpmap, or the webrtc-datachannel wrapper): no panic, what decodes
// round-trips unchanged, and every candidate either converts to a pion
// candidate or is refused with an error.
func FuzzICETransport(f *testing.F) {
	xmltest.SeedElements(f, xml.Name{Space: ice.NSICEUDP, Local: "transport"}, "0176", "0320", "0343", "0167", "0338", "0339")
	// No XEP has an example of the webrtc-datachannel wrapper.
	f.Add([]byte(`<transport xmlns="` + ice.NSWebRTCDataChannel + `" sctp-port="5000" max-message-size="262144"><transport xmlns="` + ice.NSICEUDP + `" ufrag="u" pwd="p"/></transport>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		xmltest.FuzzRoundTrip[ice.DataChannelTransport](t, data)
		tr, ok := xmltest.FuzzRoundTrip[ice.Transport](t, data)
		if !ok {
			return
		}
		for _, c := range tr.Candidates {
			_ = c.ComponentNumber()
			if pc, err := c.Parse(); err == nil && pc == nil {
				t.Fatalf("candidate %+v: no error and no candidate", c)
			}
		}
		for _, fp := range tr.Fingerprints {
			_ = fp.Normalized()
		}
	})
}
