package jingle_test

import (
	"context"
	"fmt"
	"io"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jingletest"
	"github.com/jinglekit/jinglekit/xmpptest"
)

// exampleManager connects a Manager with the test application and the test
// pipe transport to an in-memory network. A real program registers a real
// application (filetransfer, rtp) and real transports (ibb, socks5, ice),
// and connects with xmppclient.
func exampleManager(n *xmpptest.Network, addr string, x *jingletest.Exchange, app *jingletest.App) (*jingle.Manager, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return jingletest.Connect(ctx, n, addr, app, []jingle.TransportMethod{&jingletest.PipeMethod{X: x}})
}

// A session from start to end: alice initiates it with one content, bob's
// application accepts it, and bytes go over the content's stream.
func ExampleManager() {
	n := xmpptest.New("example.net")
	defer n.Close()
	x := jingletest.NewExchange()
	bobApp := jingletest.NewApp()
	bob, err := exampleManager(n, "bob@example.net/b", x, bobApp)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer bob.Close(context.Background())
	alice, err := exampleManager(n, "alice@example.net/a", x, jingletest.NewApp())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer alice.Close(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	as, err := alice.Initiate(ctx, jid.MustParse("bob@example.net/b"),
		jingle.Offer{Name: "c", Description: jingletest.Desc("c"), Transports: []string{jingletest.PipeNS}})
	if err != nil {
		fmt.Println(err)
		return
	}

	// Bob's application gets the session (in HandleSession) and accepts it.
	bs := <-bobApp.Sessions
	ev, _ := bs.NextEvent(ctx)
	fmt.Println("bob:", ev.Action, "from", bs.Peer())
	if err := bs.Accept(ctx, nil); err != nil {
		fmt.Println(err)
		return
	}
	ev, _ = as.NextEvent(ctx)
	fmt.Println("alice:", ev.Action)

	go func() {
		c, err := as.Conn(ctx, "c")
		if err == nil {
			_, _ = io.WriteString(c, "hello")
		}
	}()
	c, err := bs.Conn(ctx, "c")
	if err != nil {
		fmt.Println(err)
		return
	}
	buf := make([]byte, 5)
	_, _ = io.ReadFull(c, buf)
	fmt.Printf("bob read %q\n", buf)

	_ = as.Terminate(ctx, jingle.Reason{Condition: jingle.ReasonSuccess})
	ev, _ = bs.NextEvent(ctx)
	fmt.Println("bob:", ev.Action, ev.Reason.Condition)
	// Output:
	// bob: session-initiate from alice@example.net/a
	// alice: session-accept
	// bob read "hello"
	// bob: session-terminate success
}

// An Observer sees what happens to the transports, for logs or metrics.
func ExampleObserverFunc() {
	m := &jingle.Manager{Observer: jingle.ObserverFunc(func(e jingle.TransportEvent) {
		if e.Kind != jingle.TransportBytes {
			fmt.Println(e.Kind, e.Content.Name, e.Namespace, e.Err)
		}
	})}
	_ = m
}

// Registering a namespace twice is an error.
func ExampleManager_RegisterTransport() {
	m := &jingle.Manager{}
	fmt.Println(m.RegisterTransport(&jingletest.PipeMethod{}))
	fmt.Println(m.RegisterTransport(&jingletest.PipeMethod{}))
	fmt.Println(m.Transports())
	// Output:
	// <nil>
	// jingle: transport "urn:jinglekit:test:transport:pipe:0": jingle: namespace already registered
	// [urn:jinglekit:test:transport:pipe:0]
}
