package ice_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jingletest"
	"github.com/jinglekit/jinglekit/transports/ice"
	"github.com/jinglekit/jinglekit/xmpptest"
)

// ICE carries a content's bytes over a WebRTC data channel (DTLS, SCTP)
// between the peers' best candidate pair. Register one Method per dialect
// the peers may speak; here both are on one machine and gather loopback
// candidates only.
func ExampleMethod() {
	n := xmpptest.New("example.net")
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	party := func(addr string, app *jingletest.App) (*jingle.Manager, error) {
		m := &jingle.Manager{}
		cfg := ice.Config{IncludeLoopback: true, IPFilter: func(ip net.IP) bool { return ip.IsLoopback() }}
		dc := &ice.Method{Dialect: ice.DialectWebRTCDataChannel, Config: cfg}
		if err := m.RegisterApplication(app); err != nil {
			return nil, err
		}
		if err := m.RegisterTransport(dc); err != nil {
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
			_, _ = io.WriteString(c, "over a data channel")
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
	// "over a data channel" <nil> over urn:xmpp:jingle:transports:webrtc-datachannel:1
}
