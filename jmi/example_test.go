package jmi_test

import (
	"context"
	"encoding/xml"
	"fmt"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jmi"
	"github.com/jinglekit/jinglekit/xmpptest"
)

// A call proposal: alice proposes an audio call to bob's bare JID; bob's
// phone rings and proceeds, and alice learns which device answered (the
// one to send the session-initiate to, with the proposal's id as sid).
func ExampleManager_Propose() {
	n := xmpptest.New("example.net")
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	connect := func(addr string, m *jmi.Manager) error {
		xs, err := n.Client(ctx, jid.MustParse(addr), mux.New(stanza.NSClient, m.Handler()))
		if err == nil {
			m.SetStream(xs)
		}
		return err
	}

	bob := &jmi.Manager{OnPropose: func(ctx context.Context, in *jmi.Incoming) {
		fmt.Println("bob's phone: proposal from", in.From)
		_ = in.Ringing(ctx)
		_ = in.Proceed(ctx)
	}}
	alice := &jmi.Manager{}
	if err := connect("bob@example.net/phone", bob); err != nil {
		fmt.Println(err)
		return
	}
	if err := connect("alice@example.net/laptop", alice); err != nil {
		fmt.Println(err)
		return
	}
	defer bob.Close(context.Background())
	defer alice.Close(context.Background())

	audio := jingle.MustElement(struct {
		XMLName xml.Name `xml:"urn:xmpp:jingle:apps:rtp:1 description"`
		Media   string   `xml:"media,attr"`
	}{Media: "audio"})
	out, err := alice.Propose(ctx, jid.MustParse("bob@example.net"), "call-1", audio)
	if err != nil {
		fmt.Println(err)
		return
	}
	<-out.Ringing()
	fmt.Println("alice: ringing")
	device, err := out.Wait(ctx)
	fmt.Println("alice: answered by", device, err, "- session id", out.ID())
	// Output:
	// bob's phone: proposal from alice@example.net/laptop
	// alice: ringing
	// alice: answered by bob@example.net/phone <nil> - session id call-1
}
