package linklocal

import (
	"bytes"
	"encoding/xml"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/jinglekit/jinglekit/internal/xmltest"
)

// FuzzStreamHeader reads what a link-local peer sends first: the stream
// header (XEP-0174 §4) and, for a 1.0 stream, its features. No panic;
// every failure is one of the package's errors (which carry the stream
// error condition to send); a header that is read is written back by
// writeHeader and read again to the same values.
func FuzzStreamHeader(f *testing.F) {
	n := 0
	for _, v := range xmltest.Vectors(f, "0174") {
		// The examples start with an "I: " or "R: " direction marker.
		data := v.Data
		if len(data) > 3 && (bytes.HasPrefix(data, []byte("I: ")) || bytes.HasPrefix(data, []byte("R: "))) {
			data = data[3:]
		}
		f.Add(data)
		n++
	}
	if n == 0 {
		f.Fatal("no XEP-0174 vectors")
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d := xml.NewDecoder(bytes.NewReader(data))
		h, err := readHeader(d)
		if err != nil {
			if !errors.Is(err, ErrNotStream) && !errors.Is(err, ErrInvalidFrom) && !errors.Is(err, ErrWrongPeer) && !errors.Is(err, ErrRefused) {
				t.Fatalf("header %q: untyped error %v", data, err)
			}
			return
		}
		if h.v1() {
			_, _ = readFeatures(d)
		}
		var b bytes.Buffer
		if err := writeHeader(&b, h.From, h.To, h.v1(), h.ID); err != nil {
			t.Fatal(err)
		}
		h2, err := readHeader(xml.NewDecoder(&b))
		if err != nil {
			t.Fatalf("header %q read as %+v, written as %q, does not read again: %v", data, h, b.String(), err)
		}
		if !h2.From.Equal(h.From) || !h2.To.Equal(h.To) || h2.ID != h.ID || h2.v1() != h.v1() {
			t.Fatalf("header %q read as %+v, written as %q, read again as %+v", data, h, b.String(), h2)
		}
	})
}

// FuzzTXT parses a peer's TXT record (the strings separated by NUL
// bytes here): no panic, and a record that parses and can be written
// back parses again to the same fields.
func FuzzTXT(f *testing.F) {
	// No XEP example has a TXT record; these are §5's keys.
	f.Add([]byte("txtvers=1\x00port.p2pj=5562\x00nick=Romeo\x00status=avail\x00msg=Hanging out\x00jid=romeo@montague.lit\x00node=http://example.org\x00hash=sha-1\x00ver=QgayPKawpkPSDYmwT/WM94uAlu0="))
	f.Add([]byte("txtvers=2"))
	f.Add([]byte("\x00=x\x00flag\x00NICK=a\x00nick=b"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ss := strings.Split(string(data), "\x00")
		txt, err := ParseTXT(ss)
		if err != nil {
			if !errors.Is(err, ErrTXTTooLarge) && !errors.Is(err, ErrTXTVersion) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		_ = txt.Show()
		out, err := txt.Strings()
		if err != nil {
			return // not everything a peer sends can be written by us
		}
		back, err := ParseTXT(out)
		if err != nil {
			t.Fatalf("%q parsed, written as %q, does not parse: %v", ss, out, err)
		}
		txt.TxtVers = "1" // Strings writes version 1
		if len(txt.Extra) == 0 {
			txt.Extra = nil
		}
		if len(back.Extra) == 0 {
			back.Extra = nil
		}
		if !reflect.DeepEqual(txt, back) {
			t.Fatalf("%q parsed as %+v, written as %q, parsed again as %+v", ss, txt, out, back)
		}
	})
}
