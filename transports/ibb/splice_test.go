package ibb

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"
)

// chunkReader returns at most a random small number of bytes per Read.
type chunkReader struct {
	r   io.Reader
	rnd *rand.Rand
}

func (c chunkReader) Read(p []byte) (int, error) {
	n := 1 + c.rnd.IntN(97)
	return c.r.Read(p[:min(n, len(p))])
}

// dataTexts decodes stream and returns the text of every element named
// data (any namespace) and of every body, with references claimed from p,
// as the handler sees it: "=" and the bytes it decodes to, or "!" and
// the text when DecodeBase64 refuses it.
func dataTexts(t *testing.T, r io.Reader, p *Payloads) []string {
	t.Helper()
	d := xml.NewDecoder(r)
	var out []string
	var cur *bytes.Buffer
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if tok.Name.Local == "data" || tok.Name.Local == "body" {
				cur = &bytes.Buffer{}
			}
		case xml.CharData:
			if cur != nil {
				cur.Write(tok)
			}
		case xml.EndElement:
			if cur != nil {
				text := cur.Bytes()
				pl, ok := p.take(text)
				switch {
				case ok && pl.decoded:
					out = append(out, "="+string(pl.b))
				case ok:
					text = pl.b
					fallthrough
				default:
					if b, err := DecodeBase64(nil, text); err == nil {
						out = append(out, "="+string(b))
					} else {
						out = append(out, "!"+string(text))
					}
				}
				cur = nil
			}
		}
	}
}

func TestPayloadsFilter(t *testing.T) {
	big := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("jinglekit"), 9000))
	stream := `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>` +
		`<iq type='set' id='1'><data xmlns='http://jabber.org/protocol/ibb' seq='0' sid='s1'>` + big + `</data></iq>` +
		`<iq type="set" id="2"><data seq="1" xmlns="http://jabber.org/protocol/ibb" sid="s1">QUJD` + "\n  " + `REVG</data></iq>` +
		// Not ours: another namespace, entities, a prefix, empty, a comment and CDATA that look like ours.
		`<message><data xmlns='urn:other'>QUJD</data></message>` +
		`<iq type='set' id='3'><data xmlns='http://jabber.org/protocol/ibb' seq='2' sid='s1'>QU&amp;JD</data></iq>` +
		`<iq type='set' id='4'><i:data xmlns:i='http://jabber.org/protocol/ibb' seq='3' sid='s1'>QUJD</i:data></iq>` +
		`<iq type='set' id='5'><data xmlns='http://jabber.org/protocol/ibb' seq='4' sid='s1'></data></iq>` +
		`<iq type='set' id='6'><data xmlns='http://jabber.org/protocol/ibb' seq='5' sid='s1'/></iq>` +
		`<message><body><![CDATA[<data xmlns='http://jabber.org/protocol/ibb'>QUJD]]></body></message>` +
		`<message><body>a > b</body><!-- <data xmlns='http://jabber.org/protocol/ibb'>QUJD --></message>` +
		`<iq type='set' id='7'><data sid='x>' xmlns='http://jabber.org/protocol/ibb' seq='6'>RUZH</data></iq>` +
		// Text in several pieces: CDATA, a comment, a child element.
		`<iq type='set' id='8'><data xmlns='http://jabber.org/protocol/ibb' seq='7' sid='s1'>QU<![CDATA[JD]]></data></iq>` +
		`<iq type='set' id='9'><data xmlns='http://jabber.org/protocol/ibb' seq='8' sid='s1'>QU<!-- x -->JD</data></iq>` +
		`<iq type='set' id='10'><data xmlns='http://jabber.org/protocol/ibb' seq='9' sid='s1'>QU<x/>JD</data></iq>` +
		`</stream:stream>`
	want := dataTexts(t, strings.NewReader(stream), nil)
	if len(want) != 13 {
		t.Fatalf("setup: %d texts", len(want))
	}
	readers := map[string]func(io.Reader) io.Reader{
		"whole":    func(r io.Reader) io.Reader { return r },
		"one-byte": iotest.OneByteReader,
		"chunks":   func(r io.Reader) io.Reader { return chunkReader{r, rand.New(rand.NewPCG(1, 2))} },
	}
	for name, wrap := range readers {
		t.Run(name, func(t *testing.T) {
			p := NewPayloads()
			var filtered bytes.Buffer
			got := dataTexts(t, io.TeeReader(p.Filter(wrap(strings.NewReader(stream))), &filtered), p)
			if len(got) != len(want) {
				t.Fatalf("%d texts after the filter, want %d", len(got), len(want))
			}
			for i := range got {
				if got[i] != want[i] {
					t.Errorf("text %d after the filter is %.40q…, want %.40q…", i, got[i], want[i])
				}
			}
			if strings.Contains(filtered.String(), big[:100]) {
				t.Errorf("the big payload reached the decoder")
			}
			for _, kept := range []string{"QU&amp;JD", "<i:data xmlns:i='http://jabber.org/protocol/ibb' seq='3' sid='s1'>QUJD",
				"<data xmlns='urn:other'>QUJD", "<![CDATA[<data xmlns='http://jabber.org/protocol/ibb'>QUJD]]>",
				"<!-- <data xmlns='http://jabber.org/protocol/ibb'>QUJD -->"} {
				if !strings.Contains(filtered.String(), kept) {
					t.Errorf("%q did not reach the decoder unchanged", kept)
				}
			}
			if n := strings.Count(filtered.String(), p.prefix); n != 3 {
				t.Errorf("%d references, want 3 (seq 0, 1, 6)", n)
			}
			if len(p.pending) != 0 {
				t.Errorf("%d payloads left unclaimed", len(p.pending))
			}
		})
	}
}

func TestPayloadsForgedReference(t *testing.T) {
	p, other := NewPayloads(), NewPayloads()
	ref := p.put(payload{b: []byte("QUJD")})
	if _, ok := other.take(ref); ok {
		t.Errorf("a reference of another Payloads was claimed")
	}
	if _, ok := p.take([]byte("#ibb-00000000000000000000000000000000-0")); ok {
		t.Errorf("a reference with a guessed key was claimed")
	}
	if b, ok := p.take(ref); !ok || string(b.b) != "QUJD" {
		t.Errorf("take = %q, %v", b.b, ok)
	}
	if _, ok := p.take(ref); ok {
		t.Errorf("a payload was claimed twice")
	}
}

func TestPayloadsBounded(t *testing.T) {
	p := NewPayloads()
	for range 10 * maxPending {
		p.put(payload{b: []byte("QUJD")})
	}
	if len(p.pending) > maxPending {
		t.Errorf("%d payloads pending, limit %d", len(p.pending), maxPending)
	}
}
