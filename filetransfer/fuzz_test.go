package filetransfer_test

import (
	"encoding/xml"
	"testing"

	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/internal/xmltest"
)

// FuzzDescription decodes a file-transfer <description/> (with its
// <file/>, <range/> and hashes) as a peer offers it: no panic, and what
// decodes round-trips unchanged. Seeded with the XEP-0234 examples.
func FuzzDescription(f *testing.F) {
	for _, ns := range []string{filetransfer.NS, filetransfer.NS4, filetransfer.NS3} {
		// Each namespace version the package reads; the examples are :5.
		if ns == filetransfer.NS {
			xmltest.SeedElements(f, xml.Name{Space: ns, Local: "description"}, "0234")
		}
		f.Add([]byte(`<description xmlns="` + ns + `"><file><name>a</name><size>1</size></file></description>`))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, ok := xmltest.FuzzRoundTrip[filetransfer.Description](t, data)
		if !ok {
			return
		}
		// What the handler reads of an offer.
		f := d.File
		if f == nil {
			return
		}
		_, _ = f.Time(), f.Description()
		_, _ = f.SizeValue()
		_, _ = f.Range.LengthValue()
		_ = f.Range.OffsetValue()
	})
}

// FuzzChecksum decodes a <checksum/> session-info (XEP-0234 §8.1, hashes
// of XEP-0300): no panic, and what decodes round-trips unchanged.
func FuzzChecksum(f *testing.F) {
	xmltest.SeedElements(f, xml.Name{Space: filetransfer.NS, Local: "checksum"}, "0234")
	xmltest.SeedElements(f, xml.Name{Space: filetransfer.NS, Local: "received"}, "0234")
	f.Fuzz(func(t *testing.T, data []byte) {
		xmltest.FuzzRoundTrip[filetransfer.Checksum](t, data)
		xmltest.FuzzRoundTrip[filetransfer.Received](t, data)
	})
}
