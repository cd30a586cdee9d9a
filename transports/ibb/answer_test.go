package ibb

import (
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/xmpptest"
)

// TestReadAnswer: readAnswer takes a result from the peer or from no one
// (the account's server), gives an error answer's <error/> as a
// stanza.Error, and refuses an answer of another type or none, or from
// anyone else: also from something that is not a JID, which mellium's
// stanza.NewIQ would refuse to read at all. The id is mellium's to match.
func TestReadAnswer(t *testing.T) {
	iq := func(attrs, inner string) string { return "<iq " + attrs + ">" + inner + "</iq>" }
	notFound := `<error type="cancel"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error>`
	for in, want := range map[string]string{
		iq(`type="result" id="a" from="`+xmpptest.Bob+`"`, ""): "<nil>",
		iq(`type="result"`, ""):                                "<nil>",
		iq(`type="result" id="a" from="bob@@example.net"`, ""): `ibb: answer from "bob@@example.net", not from the peer ` + xmpptest.Bob,
		iq(`type="error" from="`+xmpptest.Alice+`"`, notFound): `ibb: answer from "` + xmpptest.Alice + `", not from the peer ` + xmpptest.Bob,
		iq(`id="a" from="`+xmpptest.Bob+`"`, ""):               `ibb: answer of type ""`,
		iq(`type="set" id="a"`, ""):                            `ibb: answer of type "set"`,
		iq(`type="error"`, notFound):                           "stanza.Error item-not-found",
		iq(`type="error"`, ""):                                 "stanza.Error undefined-condition",
		"":                                                     "ibb: reading answer: EOF",
	} {
		err := readAnswer(xml.NewDecoder(strings.NewReader(in)), jid.MustParse(xmpptest.Bob))
		got := fmt.Sprint(err)
		if se := (stanza.Error{}); errors.As(err, &se) {
			got = "stanza.Error " + string(se.Condition)
		}
		if got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}
