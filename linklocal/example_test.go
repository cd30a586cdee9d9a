package linklocal_test

import (
	"context"
	"fmt"
	"time"

	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/linklocal"
	"github.com/jinglekit/jinglekit/xmppclient"
)

// Two nodes on one machine, without multicast: alice reaches bob by
// address and asks what he supports (XEP-0030 over a direct stream). With
// multicast, peers are found with Browse instead, and a jingle.Manager
// sends over a Node as over a server connection (it is a
// jingle.IQSender).
func ExampleNode() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bobCaps := xmppclient.Caps{Identities: []xmppclient.Identity{{Category: "client", Type: "pc", Name: "bob's laptop"}},
		Features: []string{"urn:xmpp:jingle:1"}}
	bob := &linklocal.Node{Name: "bob@forza", Listen: "127.0.0.1:0", NoMulticast: true, AcceptUnadvertised: true, Caps: bobCaps,
		Handler: mux.New(stanza.NSClient, xmppclient.HandleDisco(bobCaps))}
	alice := &linklocal.Node{Name: "alice@pronto", Listen: "127.0.0.1:0", NoMulticast: true}
	for _, n := range []*linklocal.Node{bob, alice} {
		if err := n.Start(ctx); err != nil {
			fmt.Println(err)
			return
		}
		defer n.Close()
	}
	p, err := alice.AddPeer(ctx, "", bob.Addr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	info, err := alice.Disco(ctx, p.Name)
	fmt.Println(p.Name, info.Features, err)
	// Output:
	// bob@forza [http://jabber.org/protocol/caps http://jabber.org/protocol/disco#info urn:xmpp:jingle:1] <nil>
}
