package jingle

import (
	"encoding/xml"
	"fmt"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"
)

// TestReadIQResult: readIQResult takes any answer but an error, from the
// peer or from no one (the account's server); it gives an error answer's
// <error/> as an *Error, and refuses an answer from anyone else: also
// from something that is not a JID, which mellium's stanza.NewIQ would
// refuse to read at all. The id is mellium's to match.
func TestReadIQResult(t *testing.T) {
	peer := jid.MustParse("bob@example.net/b")
	cases := [][2]string{
		{`<iq type="result" id="a" from="bob@example.net/b"/>`, "<nil>"},
		{`<iq/>`, "<nil>"},
		{`<iq type="result" from="@example.net"/>`, `jingle: answer from "@example.net", not from the peer bob@example.net/b`},
		{`<iq type="error" from="carol@example.net/c"><error type="cancel"/></iq>`, `jingle: answer from "carol@example.net/c", not from the peer bob@example.net/b`},
		{`<iq type="error"><error type="modify"><bad-request xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`, "*Error bad-request"},
		{`<iq type="error"></iq>`, "*Error undefined-condition"},
		{`text`, "jingle: reading answer: unexpected xml.CharData"},
	}
	for _, c := range cases {
		err := readIQResult(xml.NewDecoder(strings.NewReader(c[0])), peer)
		got := fmt.Sprint(err)
		if je, ok := err.(*Error); ok {
			got = "*Error " + string(je.Condition)
		}
		if got != c[1] {
			t.Errorf("%s: %s, want %s", c[0], got, c[1])
		}
	}
}
