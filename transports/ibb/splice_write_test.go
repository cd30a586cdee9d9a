package ibb

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/stanza"
)

// chunkWriter passes each Write on as writes of a random small size, as
// an encoder's buffer may split its output anywhere.
type chunkWriter struct {
	w   io.Writer
	rnd *rand.Rand
}

func (c chunkWriter) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k := min(1+c.rnd.IntN(97), len(p)-n)
		if _, err := c.w.Write(p[n : n+k]); err != nil {
			return n, err
		}
		n += k
	}
	return n, nil
}

// writeStream writes, through an xml.Encoder to w, a stream of IQs with
// one <data/> each, as sendData does, and between them a message whose
// body holds text that looks like references. It returns the texts sent.
func writeStream(t *testing.T, w io.Writer, p *Payloads, texts [][]byte, noise string) {
	t.Helper()
	e := xml.NewEncoder(w)
	for i, enc := range texts {
		out := p.send(enc)
		r := &dataReader{sid: "s1", seq: uint16(i), enc: out.text, eof: func() {}}
		iq := stanza.IQ{ID: "id", Type: stanza.SetIQ}
		if _, err := xmlstream.Copy(e, iq.Wrap(r)); err != nil {
			t.Fatal(err)
		}
		msg := stanza.Message{Type: stanza.ChatMessage}
		body := xmlstream.Wrap(xmlstream.Token(xml.CharData(noise)), xml.StartElement{Name: xml.Name{Local: "body"}})
		if _, err := xmlstream.Copy(e, msg.Wrap(body)); err != nil {
			t.Fatal(err)
		}
		if err := e.Flush(); err != nil {
			t.Fatal(err)
		}
		if !out.done() {
			t.Fatalf("text %d was not put in by the filter", i)
		}
	}
}

// TestPayloadsWriteFilter: the bytes after the filter are exactly those
// an encoder writes without it, whatever the sizes of the writes, and no
// reference gets through.
func TestPayloadsWriteFilter(t *testing.T) {
	var texts [][]byte
	for _, n := range []int{65535, 1, 4096, 0, 3} {
		texts = append(texts, []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("jinglekit"), n)[:n])))
	}
	other := NewPayloads()
	_ = other.WriteFilter(io.Discard)
	otherRef := other.send([]byte("QUJD")).text
	writers := map[string]func(io.Writer) io.Writer{
		"whole":    func(w io.Writer) io.Writer { return w },
		"one-byte": func(w io.Writer) io.Writer { return oneByteWriter{w} },
		"chunks":   func(w io.Writer) io.Writer { return chunkWriter{w, rand.New(rand.NewPCG(1, 2))} },
	}
	for name, wrap := range writers {
		t.Run(name, func(t *testing.T) {
			p := NewPayloads()
			// Text that looks like a reference of p: its prefix alone, at
			// the end of a body, a reference to nothing, another's.
			noise := "#ibb- " + string(p.out.prefix[:10]) + " " + string(p.out.prefix) + "0000000000000fff " +
				string(otherRef) + " " + string(p.out.prefix)
			var want bytes.Buffer
			writeStream(t, &want, nil, texts, noise)
			var got bytes.Buffer
			writeStream(t, wrap(p.WriteFilter(&got)), p, texts, noise)
			if !bytes.Equal(got.Bytes(), want.Bytes()) {
				t.Errorf("the filtered stream differs (%d bytes, want %d)", got.Len(), want.Len())
			}
			if n := len(p.out.pending); n != 0 {
				t.Errorf("%d texts left pending", n)
			}
		})
	}
}

// oneByteWriter writes one byte at a time.
type oneByteWriter struct{ w io.Writer }

func (o oneByteWriter) Write(p []byte) (int, error) {
	for i := range p {
		if _, err := o.w.Write(p[i : i+1]); err != nil {
			return i, err
		}
	}
	return len(p), nil
}

// TestPayloadsWriteFilterHoldsOnlyReferences: a write that ends with what
// may begin a reference keeps it back; one that ends with '>' never does.
func TestPayloadsWriteFilterHoldsOnlyReferences(t *testing.T) {
	p := NewPayloads()
	var got bytes.Buffer
	w := p.WriteFilter(&got)
	for _, s := range []string{"<a>x#", "ib", "</a>", "<b>" + string(p.out.prefix[:20]), "#ibb-</b>", "<c>" + string(p.out.prefix)} {
		if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if want := "<a>x#ib</a><b>" + string(p.out.prefix[:20]) + "#ibb-</b><c>"; got.String() != want {
		t.Errorf("written %q, want %q", got.String(), want)
	}
	if _, err := w.Write([]byte("</c>")); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(got.String(), string(p.out.prefix)+"</c>") {
		t.Errorf("the held prefix was not written: %q", got.String())
	}
}

// TestPayloadsSendWithoutFilter: without a write filter, and for a nil
// Payloads, a <data/> carries its text itself.
func TestPayloadsSendWithoutFilter(t *testing.T) {
	enc := []byte("QUJD")
	for _, p := range []*Payloads{nil, NewPayloads()} {
		out := p.send(enc)
		if !bytes.Equal(out.text, enc) || !out.done() {
			t.Errorf("send(%q) = %q", enc, out.text)
		}
	}
}

// TestPayloadsSendNotWritten: a reference that no filter replaced is
// reported by done and forgotten, as is one whose stanza was never sent.
func TestPayloadsSendNotWritten(t *testing.T) {
	p := NewPayloads()
	_ = p.WriteFilter(io.Discard)
	out := p.send([]byte("QUJD"))
	if bytes.Equal(out.text, []byte("QUJD")) || len(out.text) != outRefLen {
		t.Fatalf("text %q is not a reference", out.text)
	}
	if _, err := base64.StdEncoding.DecodeString(string(out.text)); err == nil {
		t.Errorf("reference %q is valid base64: a peer could take it for data", out.text)
	}
	if out.done() {
		t.Errorf("done reports a reference no filter saw as written")
	}
	if n := len(p.out.pending); n != 0 {
		t.Errorf("%d texts left pending", n)
	}
}
