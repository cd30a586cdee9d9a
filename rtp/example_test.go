package rtp_test

import (
	"context"
	"fmt"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/rtp"
	"github.com/jinglekit/jinglekit/xmpptest"
)

// A call: bob's handler answers with an echo of what it receives; alice
// places an audio call, waits until media can flow, and hangs up. A real
// program sends media (NewOggSource, or any MediaSource) and reads the
// peer's tracks (Options.OnTrack); here both are on one machine and
// gather loopback candidates only.
func ExampleHandler_Place() {
	n := xmpptest.New("example.net")
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := rtp.Config{IncludeLoopback: true, DisableIPv6: true, InterfaceFilter: func(name string) bool { return name == "lo" }}
	party := func(addr string, h *rtp.Handler) error {
		m := &jingle.Manager{}
		if err := h.Register(m); err != nil {
			return err
		}
		xs, err := n.Client(ctx, jid.MustParse(addr), mux.New(stanza.NSClient, m.Handler()))
		if err != nil {
			return err
		}
		m.SetStream(xs)
		return nil
	}
	bob := &rtp.Handler{Config: cfg, OnCall: func(ctx context.Context, c *rtp.Call) {
		fmt.Println("bob: call from", c.Peer())
		_ = c.Accept(ctx, rtp.NewEcho().Options())
	}}
	alice := &rtp.Handler{Config: cfg}
	if err := party("bob@example.net/b", bob); err != nil {
		fmt.Println(err)
		return
	}
	if err := party("alice@example.net/a", alice); err != nil {
		fmt.Println(err)
		return
	}
	defer bob.Close(context.Background())
	defer alice.Close(context.Background())

	c, err := alice.Place(ctx, jid.MustParse("bob@example.net/b"), rtp.Options{ReceiveAudio: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	for {
		ev, err := c.NextEvent(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		if ev.Kind == rtp.EventAccepted || ev.Kind == rtp.EventConnected {
			fmt.Println("alice:", ev.Kind)
		}
		if ev.Kind == rtp.EventConnected {
			break
		}
	}
	_ = c.HangUp(ctx)
	<-c.Done()
	fmt.Println("alice: ended,", c.Reason().Condition)
	// Output:
	// bob: call from alice@example.net/a
	// alice: accepted
	// alice: connected
	// alice: ended, success
}
