package socks5_test

import (
	"context"
	"fmt"
	"io"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

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
	party := func(addr string, app *jingletest.App) (*jingle.Manager, error) {
		m := &jingle.Manager{}
		s5b := socks5.NewMethod(socks5.Settings{AllowLoopback: true, Addresses: []string{"127.0.0.1"},
			ListenHost: "127.0.0.1", NoProxyDiscovery: true})
		if err := m.RegisterApplication(app); err != nil {
			return nil, err
		}
		if err := m.RegisterTransport(s5b); err != nil {
			return nil, err
		}
		xs, err := n.Client(ctx, jid.MustParse(addr), mux.New(stanza.NSClient, m.Handler()))
		if err != nil {
			return nil, err
		}
		m.SetStream(xs)
		return m, nil
	}
	bobApp := jingletest.NewApp()
	bob, err := party("bob@example.net/b", bobApp)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer bob.Close(context.Background())
	alice, err := party("alice@example.net/a", jingletest.NewApp())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer alice.Close(context.Background())

	as, err := alice.Initiate(ctx, jid.MustParse("bob@example.net/b"), jingle.Offer{Name: "data", Description: jingletest.Desc("data")})
	if err != nil {
		fmt.Println(err)
		return
	}
	bs := <-bobApp.Sessions
	_, _ = bs.NextEvent(ctx) // session-initiate
	if err := bs.Accept(ctx, nil); err != nil {
		fmt.Println(err)
		return
	}
	go func() {
		if c, err := as.Conn(ctx, "data"); err == nil {
			_, _ = io.WriteString(c, "straight from alice")
			_ = c.Close()
		}
	}()
	c, err := bs.Conn(ctx, "data")
	if err != nil {
		fmt.Println(err)
		return
	}
	b, err := io.ReadAll(c)
	ns, _ := bs.TransportNamespace("data")
	fmt.Printf("%q %v over %s\n", b, err, ns)
	// Output:
	// "straight from alice" <nil> over urn:xmpp:jingle:transports:s5b:1
}
