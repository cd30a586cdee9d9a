package iqhead

import (
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"
)

// TestOf: the id, type and from as written, "" when absent; a from that
// is not a JID is kept as it is; other attributes are not read.
func TestOf(t *testing.T) {
	for in, want := range map[string]Head{
		`<iq type="result" id="a" from="bob@example.net/b" to="x"/>`: {ID: "a", Type: "result", From: "bob@example.net/b"},
		`<iq type="error"/>`:                      {Type: "error"},
		`<iq id="a" from="bob@@example.net"/>`:    {ID: "a", From: "bob@@example.net"},
		`<iq xml:lang="en" lang="x" by="y"></iq>`: {},
	} {
		tok, err := xml.NewDecoder(strings.NewReader(in)).Token()
		if err != nil {
			t.Fatal(err)
		}
		if got := Of(tok.(xml.StartElement)); got != want {
			t.Errorf("Of(%s) = %+v, want %+v", in, got, want)
		}
	}
	twice := xml.StartElement{Attr: []xml.Attr{{Name: xml.Name{Local: "id"}, Value: "a"}, {Name: xml.Name{Local: "id"}, Value: "b"}}}
	if got := Of(twice); got.ID != "b" {
		t.Errorf("of two ids, Of kept %q, want the last", got.ID)
	}
}

// TestSentBy: a from that is the peer's JID, or none; not another JID,
// the peer's bare JID for a full one, or a from that is not a JID.
func TestSentBy(t *testing.T) {
	peer := jid.MustParse("bob@example.net/b")
	for from, want := range map[string]bool{
		"":                  true,
		"bob@example.net/b": true,
		"bob@example.net":   false,
		"bob@example.net/c": false,
		"bob@@example.net":  false,
		"@example.net":      false,
	} {
		if got := (Head{From: from}).SentBy(peer); got != want {
			t.Errorf("SentBy with from %q = %v, want %v", from, got, want)
		}
	}
}

// TestReadAnswer: the head of an answer the peer sent, with the decoder
// left after the start element; an error for another sender, a bad from,
// a stream that ends or does not begin with an element.
func TestReadAnswer(t *testing.T) {
	peer := jid.MustParse("bob@example.net/b")
	d := xml.NewDecoder(strings.NewReader(`<iq type="error" id="a" from="bob@example.net/b"><error/></iq>`))
	h, err := ReadAnswer(d, peer)
	if err != nil || h != (Head{ID: "a", Type: "error", From: "bob@example.net/b"}) {
		t.Fatalf("ReadAnswer = %+v, %v", h, err)
	}
	if tok, err := d.Token(); err != nil || tok.(xml.StartElement).Name.Local != "error" {
		t.Fatalf("after ReadAnswer: %v, %v; want the <error/>", tok, err)
	}
	for in, want := range map[string]string{
		`<iq type="result" from="carol@example.net/c"/>`: `answer from "carol@example.net/c", not from the peer bob@example.net/b`,
		`<iq type="result" from="bob@@example.net"/>`:    `answer from "bob@@example.net", not from the peer bob@example.net/b`,
		`text<iq/>`: "reading answer: unexpected xml.CharData",
		``:          "reading answer: EOF",
	} {
		_, err := ReadAnswer(xml.NewDecoder(strings.NewReader(in)), peer)
		if err == nil || err.Error() != want {
			t.Errorf("ReadAnswer(%s): %v, want %s", in, err, want)
		}
	}
	if _, err := ReadAnswer(xml.NewDecoder(strings.NewReader("")), peer); !errors.Is(err, io.EOF) {
		t.Errorf("ReadAnswer of nothing: %v, want it to wrap io.EOF", err)
	}
}
