package ibb_test

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
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

// FuzzDecodeBase64 checks DecodeBase64 against its definition: XML white
// space removed, then strict standard base64 (XEP-0047 §9). Its fast path
// hands the text to the decoder as it is, relying on the decoder to skip
// CR and LF the same way.
func FuzzDecodeBase64(f *testing.F) {
	for _, s := range []string{"", "QUJD", "QUJD\n", "QU\r\nJD", "QQ==", "QQ=\n=", "QQ==\n", "QR==", "QUJD RA==",
		"\tQUJD", "QUJ", "QUJD=", "Q===", "QU&amp;JD", "\nQ\nQ\n=\n=\n", "QUJDREVGR0g=", "QUJDREVGR0hJ\rSktM"} {
		f.Add([]byte(s))
	}
	// Long enough for the SIMD loop, with a fault or a line break at
	// every place of a 32-byte block and past it.
	long := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("jinglekit IBB "), 12))
	for i := 0; i < 80; i += 3 {
		for _, c := range []string{"\n", "\r\n", " ", "=", "*", "-", "\xff", "A"} {
			f.Add([]byte(long[:i] + c + long[i:]))
		}
		f.Add([]byte(long[:i*2]))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		var clean []byte
		for _, c := range src {
			if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
				clean = append(clean, c)
			}
		}
		want, wantErr := base64.StdEncoding.Strict().DecodeString(string(clean))
		got, err := ibb.DecodeBase64([]byte("x"), src)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("DecodeBase64(%q): error %v, want %v", src, err, wantErr)
		}
		if err != nil {
			if !errors.Is(err, ibb.ErrBadBase64) || string(got) != "x" {
				t.Fatalf("DecodeBase64(%q) = %q, %v", src, got, err)
			}
			return
		}
		if string(got) != "x"+string(want) {
			t.Fatalf("DecodeBase64(%q) = %q, want %q", src, got[1:], want)
		}
	})
}
