package ibb_test

import (
	"context"
	"fmt"
	"io"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jingletest"
	"github.com/jinglekit/jinglekit/transports/ibb"
	"github.com/jinglekit/jinglekit/xmpptest"
)

// In-band bytestreams carry a content's bytes in IQs through the server:
// register the Method on the Manager and its Handler on the mux.
func ExampleMethod() {
	n := xmpptest.New("example.net")
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	app := jingletest.NewApp()
	bm := &ibb.Method{BlockSize: 4096}
	bob, err := jingletest.Connect(ctx, n, "bob@example.net/b", app, []jingle.TransportMethod{bm}, bm.Handler())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer bob.Close(context.Background())
	am := &ibb.Method{BlockSize: 4096}
	alice, err := jingletest.Connect(ctx, n, "alice@example.net/a", jingletest.NewApp(), []jingle.TransportMethod{am}, am.Handler())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer alice.Close(context.Background())

	a, b, err := jingletest.Streams(ctx, alice, jid.MustParse("bob@example.net/b"), app, "data", ibb.NSTransport)
	if err != nil {
		fmt.Println(err)
		return
	}
	go func() {
		_, _ = io.WriteString(a, "carried in <data/> IQs")
		_ = a.Close()
	}()
	got, err := io.ReadAll(b)
	fmt.Printf("%q %v\n", got, err)
	// Output:
	// "carried in <data/> IQs" <nil>
}
