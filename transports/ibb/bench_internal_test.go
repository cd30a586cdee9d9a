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
// through an xml.Encoder, as mellium writes them.
func BenchmarkDataEncode(b *testing.B) {
	for _, size := range []int{4096, 65535} {
		b.Run(fmt.Sprintf("block=%d", size), func(b *testing.B) {
			p := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			e := xml.NewEncoder(io.Discard)
			for i := 0; i < b.N; i++ {
				enc := make([]byte, base64.StdEncoding.EncodedLen(len(p)))
				base64.StdEncoding.Encode(enc, p)
				r := &dataReader{sid: "sid0123456789", seq: uint16(i), enc: enc, eof: func() {}}
				iq := stanza.IQ{ID: "0123456789abcdef", To: jidBench, Type: stanza.SetIQ}
				if _, err := xmlstream.Copy(e, iq.Wrap(r)); err != nil {
					b.Fatal(err)
				}
				if err := e.Flush(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDataDecode measures what receiving one chunk costs: the
// stanza's tokens from an xml.Decoder, as mellium reads them, the
// handler's payload reading and the base64 decoding.
func BenchmarkDataDecode(b *testing.B) {
	for _, size := range []int{4096, 65535} {
		b.Run(fmt.Sprintf("block=%d", size), func(b *testing.B) {
			var buf bytes.Buffer
			e := xml.NewEncoder(&buf)
			r := &dataReader{sid: "sid0123456789", seq: 7, enc: []byte(base64.StdEncoding.EncodeToString(make([]byte, size))), eof: func() {}}
			iq := stanza.IQ{ID: "0123456789abcdef", To: jidBench, Type: stanza.SetIQ}
			if _, err := xmlstream.Copy(e, iq.Wrap(r)); err != nil {
				b.Fatal(err)
			}
			e.Flush()
			raw := buf.Bytes()
			b.SetBytes(int64(size))
			b.ReportAllocs()
			rd := bytes.NewReader(raw)
			for i := 0; i < b.N; i++ {
				rd.Reset(raw)
				d := xml.NewDecoder(rd)
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
				if err != nil || tooBig {
					b.Fatal(err, tooBig)
				}
				out, err := DecodeBase64(nil, b64)
				if err != nil || len(out) != size {
					b.Fatal(err, len(out))
				}
			}
		})
	}
}

var jidBench = mustJID("juliet@capulet.lit/balcony")

func mustJID(s string) jid.JID { return jid.MustParse(s) }
