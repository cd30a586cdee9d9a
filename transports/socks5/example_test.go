package socks5_test

import (
	"context"
	"fmt"
	"io"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jingletest"
	"github.com/jinglekit/jinglekit/transports/socks5"
	"github.com/jinglekit/jinglekit/xmpptest"
)

// SOCKS5 bytestreams connect the peers directly (or through a proxy): each
// side offers its candidates, tries the other's, and the best pair wins.
// Here both are on one machine, so loopback candidates are allowed; a
// real program leaves proxy discovery on.
func ExampleNewMethod() {
	n := xmpptest.New("example.net")
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	set := socks5.Settings{AllowLoopback: true, Addresses: []string{"127.0.0.1"}, ListenHost: "127.0.0.1", NoProxyDiscovery: true}
	app := jingletest.NewApp()
	bob, err := jingletest.Connect(ctx, n, "bob@example.net/b", app, []jingle.TransportMethod{socks5.NewMethod(set)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer bob.Close(context.Background())
	alice, err := jingletest.Connect(ctx, n, "alice@example.net/a", jingletest.NewApp(), []jingle.TransportMethod{socks5.NewMethod(set)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer alice.Close(context.Background())

	a, b, err := jingletest.Streams(ctx, alice, jid.MustParse("bob@example.net/b"), app, "data", socks5.NS)
	if err != nil {
		fmt.Println(err)
		return
	}
	go func() {
		_, _ = io.WriteString(a, "straight from alice")
		_ = a.Close()
	}()
	got, err := io.ReadAll(b)
	fmt.Printf("%q %v\n", got, err)
	// Output:
	// "straight from alice" <nil>
}
