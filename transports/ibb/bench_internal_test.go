package ibb

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"testing"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// BenchmarkDataEncode measures what sending one chunk costs in this
// package and in encoding/xml: base64 and the <iq><data/></iq> tokens
// through an xml.Encoder, as mellium writes them. path=xml escapes the
// base64 text in the encoder; path=payloads puts it in past the encoder
// (Payloads.WriteFilter), as a stream with Method.Payloads does.
func BenchmarkDataEncode(b *testing.B) {
	for _, size := range []int{4096, 65535} {
		for _, path := range []string{"xml", "payloads"} {
			b.Run(fmt.Sprintf("block=%d/path=%s", size, path), func(b *testing.B) {
				benchEncode(b, size, path == "payloads")
			})
		}
	}
}

func benchEncode(b *testing.B, size int, payloads bool) {
	p := make([]byte, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	var pl *Payloads
	w := io.Discard
	if payloads {
		pl = NewPayloads()
		w = pl.WriteFilter(w)
	}
	e := xml.NewEncoder(w)
	for i := 0; i < b.N; i++ {
		enc := make([]byte, b64.EncodedLen(len(p)))
		b64.Encode(enc, p) // as Conn.Write does
		out := pl.send(enc)
		r := &dataReader{sid: "sid0123456789", seq: uint16(i), enc: out.text, eof: func() {}}
		iq := stanza.IQ{ID: "0123456789abcdef", To: jidBench, Type: stanza.SetIQ}
		if _, err := xmlstream.Copy(e, iq.Wrap(r)); err != nil {
			b.Fatal(err)
		}
		if err := e.Flush(); err != nil {
			b.Fatal(err)
		}
		if !out.done() {
			b.Fatal("reference not replaced")
		}
	}
}

// BenchmarkDataDecode measures what receiving one chunk costs: the
// stanza's tokens from an xml.Decoder, as mellium reads them, the
// handler's payload reading and the base64 decoding. path=xml is
// encoding/xml's text path; path=payloads takes the text out before the
// decoder (Payloads.Filter), as a stream with Method.Payloads does.
func BenchmarkDataDecode(b *testing.B) {
	for _, size := range []int{4096, 65535} {
		for _, path := range []string{"xml", "payloads"} {
			b.Run(fmt.Sprintf("block=%d/path=%s", size, path), func(b *testing.B) {
				benchDecode(b, size, path == "payloads")
			})
		}
	}
}

func benchDecode(b *testing.B, size int, payloads bool) {
	var buf bytes.Buffer
	e := xml.NewEncoder(&buf)
	r := &dataReader{sid: "sid0123456789", seq: 7, enc: []byte(base64.StdEncoding.EncodeToString(make([]byte, size))), eof: func() {}}
	iq := stanza.IQ{ID: "0123456789abcdef", To: jidBench, Type: stanza.SetIQ}
	if _, err := xmlstream.Copy(e, iq.Wrap(r)); err != nil {
		b.Fatal(err)
	}
	e.Flush()
	// One decoder over an endless stream of the same stanza, as a
	// session reads its stream.
	var in io.Reader = &cycleReader{raw: buf.Bytes()}
	p := NewPayloads()
	if payloads {
		in = p.Filter(in)
	}
	d := xml.NewDecoder(in)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		var start xml.StartElement
		for depth := 0; depth < 2; {
			tok, err := d.Token()
			if err != nil {
				b.Fatal(err)
			}
			if s, ok := tok.(xml.StartElement); ok {
				start = s
				depth++
			}
		}
		if _, ok := parseSeq(attrValue(&start, "seq")); !ok {
			b.Fatal("seq")
		}
		b64, tooBig, err := readPayload(d, payloadLimit(size))
		if _, err := d.Token(); err != nil { // </iq>
			b.Fatal(err)
		}
		if err != nil || tooBig {
			b.Fatal(err, tooBig)
		}
		out := b64
		if pl, ok := p.take(b64); ok && pl.decoded {
			out = pl.b
		} else if payloads {
			b.Fatal("no decoded payload")
		} else if out, err = DecodeBase64(nil, b64); err != nil {
			b.Fatal(err)
		}
		if len(out) != size {
			b.Fatal(len(out))
		}
	}
}

// cycleReader reads raw again and again.
type cycleReader struct {
	raw []byte
	off int
}

func (c *cycleReader) Read(p []byte) (int, error) {
	n := copy(p, c.raw[c.off:])
	c.off = (c.off + n) % len(c.raw)
	return n, nil
}

var jidBench = mustJID("juliet@capulet.lit/balcony")

func mustJID(s string) jid.JID { return jid.MustParse(s) }
