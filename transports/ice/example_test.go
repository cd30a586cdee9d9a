package ice_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"mellium.im/xmpp/jid"

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
	cfg := ice.Config{IncludeLoopback: true, IPFilter: func(ip net.IP) bool { return ip.IsLoopback() }}
	methods := func() []jingle.TransportMethod {
		return []jingle.TransportMethod{&ice.Method{Dialect: ice.DialectWebRTCDataChannel, Config: cfg},
			&ice.Method{Dialect: ice.DialectXEP0343, Config: cfg}}
	}
	app := jingletest.NewApp()
	bob, err := jingletest.Connect(ctx, n, "bob@example.net/b", app, methods())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer bob.Close(context.Background())
	alice, err := jingletest.Connect(ctx, n, "alice@example.net/a", jingletest.NewApp(), methods())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer alice.Close(context.Background())

	a, b, err := jingletest.Streams(ctx, alice, jid.MustParse("bob@example.net/b"), app, "data", ice.NSWebRTCDataChannel)
	if err != nil {
		fmt.Println(err)
		return
	}
	go func() {
		_, _ = io.WriteString(a, "over a data channel")
		_ = a.Close()
	}()
	got, err := io.ReadAll(b)
	fmt.Printf("%q %v\n", got, err)
	// Output:
	// "over a data channel" <nil>
}
