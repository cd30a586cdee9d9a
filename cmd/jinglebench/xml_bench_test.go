package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"testing"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/jingle"
)

// The hot stanzas of signalling: a transport-info is sent for every
// trickled ICE candidate and for each S5B candidate-used/activated, and a
// session-initiate carries every candidate at once. The benchmarks
// measure what this side spends per stanza: encoding as Session.send does
// (jingle.NewElement, then the tokens wrapped in an IQ through an
// xml.Encoder, as mellium writes them) and decoding as Manager.HandleIQ
// does (the IQ's tokens from an xml.Decoder, the <jingle/> decoded from
// them). The data stanzas of IBB have theirs in transports/ibb
// (BenchmarkDataEncode, BenchmarkDataDecode).

const (
	s5bCandidateUsed = `<transport xmlns='urn:xmpp:jingle:transports:s5b:1' sid='vj3hs98y'>` +
		`<candidate-used cid='hr65dqyd'/></transport>`
	iceCandidate = `<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' pwd='asd88fgpdd777uzjYhagZg' ufrag='8hhy'>` +
		`<candidate component='1' foundation='1' generation='0' id='el0747fg11' ip='10.0.1.1' network='1' ` +
		`port='8998' priority='2130706431' protocol='udp' type='host'/></transport>`
)

func s5bOffer(n int) string {
	var b bytes.Buffer
	b.WriteString(`<transport xmlns='urn:xmpp:jingle:transports:s5b:1' dstaddr='972b7bf47291ca609517f67f86b5081086052dad' mode='tcp' sid='vj3hs98y'>`)
	for i := range n {
		fmt.Fprintf(&b, `<candidate cid='cand%d' host='192.168.4.%d' jid='romeo@montague.example/dr4hcr0st3lup4c' port='5086' priority='%d' type='direct'/>`, i, i+1, 8257636-i)
	}
	b.WriteString(`</transport>`)
	return b.String()
}

func jingleMsg(b testing.TB, action jingle.Action, transport string) *jingle.Jingle {
	var tr jingle.Element
	if err := xml.Unmarshal([]byte(transport), &tr); err != nil {
		b.Fatal(err)
	}
	return &jingle.Jingle{Action: action, Initiator: "romeo@montague.example/dr4hcr0st3lup4c",
		SID: "a73sjjvkla37jfea", Contents: []jingle.Content{{Creator: jingle.CreatorInitiator, Name: "ex", Transport: &tr}}}
}

var jingleCases = []struct {
	name      string
	action    jingle.Action
	transport string
}{
	{"transport-info/s5b-candidate-used", jingle.ActionTransportInfo, s5bCandidateUsed},
	{"transport-info/ice-candidate", jingle.ActionTransportInfo, iceCandidate},
	{"session-initiate/s5b-8-candidates", jingle.ActionSessionInitiate, s5bOffer(8)},
}

var benchPeer = jid.MustParse("juliet@capulet.example/balcony")

// encodeIQ writes j as Session.send does.
func encodeIQ(w io.Writer, j *jingle.Jingle) error {
	el, err := jingle.NewElement(j)
	if err != nil {
		return err
	}
	e := xml.NewEncoder(w)
	iq := stanza.IQ{ID: "0123456789abcdef", To: benchPeer, Type: stanza.SetIQ}
	if _, err := xmlstream.Copy(e, iq.Wrap(el.TokenReader())); err != nil {
		return err
	}
	return e.Flush()
}

// decodeIQ reads an IQ holding a <jingle/> as Manager.HandleIQ does.
func decodeIQ(raw []byte) (*jingle.Jingle, error) {
	d := xml.NewDecoder(bytes.NewReader(raw))
	var start xml.StartElement
	for depth := 0; depth < 2; {
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		if s, ok := tok.(xml.StartElement); ok {
			start, depth = s, depth+1
		}
	}
	var j jingle.Jingle
	inner := xmlstream.InnerElement(d)
	if err := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(start), inner)).Decode(&j); err != nil {
		return nil, err
	}
	return &j, nil
}

func BenchmarkJingleEncode(b *testing.B) {
	for _, tc := range jingleCases {
		b.Run(tc.name, func(b *testing.B) {
			j := jingleMsg(b, tc.action, tc.transport)
			var buf bytes.Buffer
			if err := encodeIQ(&buf, j); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(buf.Len()))
			b.ReportAllocs()
			for b.Loop() {
				buf.Reset()
				if err := encodeIQ(&buf, j); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkJingleDecode(b *testing.B) {
	for _, tc := range jingleCases {
		b.Run(tc.name, func(b *testing.B) {
			var buf bytes.Buffer
			if err := encodeIQ(&buf, jingleMsg(b, tc.action, tc.transport)); err != nil {
				b.Fatal(err)
			}
			raw := buf.Bytes()
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decodeIQ(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestJingleRoundTrip checks what the benchmarks measure: the encoded IQ
// decodes back to the same action, sid and transport.
func TestJingleRoundTrip(t *testing.T) {
	for _, tc := range jingleCases {
		j := jingleMsg(t, tc.action, tc.transport)
		var buf bytes.Buffer
		if err := encodeIQ(&buf, j); err != nil {
			t.Fatal(err)
		}
		got, err := decodeIQ(buf.Bytes())
		if err != nil {
			t.Fatalf("%s: %v\n%s", tc.name, err, buf.Bytes())
		}
		if got.Action != tc.action || got.SID != j.SID || len(got.Contents) != 1 || got.Contents[0].Transport == nil {
			t.Fatalf("%s: decoded %+v", tc.name, got)
		}
		want, _ := xml.Marshal(j.Contents[0].Transport)
		have, _ := xml.Marshal(got.Contents[0].Transport)
		if !bytes.Equal(want, have) {
			t.Errorf("%s: transport\n%s\nbecame\n%s", tc.name, want, have)
		}
	}
}
