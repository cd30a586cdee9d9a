package xmpptest_test

import (
	"context"
	"encoding/xml"
	"fmt"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/xmpptest"
)

// Two clients on an in-memory network: a message to bob's bare JID
// reaches his connected resource, with the sender's full JID as from.
func ExampleNetwork() {
	n := xmpptest.New("example.net")
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	got := make(chan string, 1)
	onChat := mux.MessageFunc(stanza.ChatMessage, xml.Name{Local: "body"}, func(m stanza.Message, r xmlstream.TokenReadEncoder) error {
		var msg struct {
			Body string `xml:"body"`
		}
		if err := xml.NewTokenDecoder(r).Decode(&msg); err != nil {
			return err
		}
		got <- m.From.String() + ": " + msg.Body
		return nil
	})
	if _, err := n.Client(ctx, jid.MustParse("bob@example.net/phone"), mux.New(stanza.NSClient, onChat)); err != nil {
		fmt.Println(err)
		return
	}
	alice, err := n.Client(ctx, jid.MustParse("alice@example.net/laptop"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	msg := struct {
		stanza.Message
		Body string `xml:"body"`
	}{Message: stanza.Message{To: jid.MustParse("bob@example.net"), Type: stanza.ChatMessage}, Body: "hi"}
	if err := alice.Encode(ctx, msg); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(<-got)
	// Output:
	// alice@example.net/laptop: hi
}
