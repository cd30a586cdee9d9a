package filetransfer_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jingletest"
	"github.com/jinglekit/jinglekit/xmpptest"
)

// exampleParty connects a Manager with a file-transfer Handler to an
// in-memory network. A real program connects to its server instead
// (xmppclient), and registers real transports (IBB, SOCKS5).
func exampleParty(n *xmpptest.Network, addr string, x *jingletest.Exchange, h *filetransfer.Handler) (*jingle.Manager, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return jingletest.Connect(ctx, n, addr, h, []jingle.TransportMethod{&jingletest.PipeMethod{X: x}})
}

// Receiving: a Handler with a directory and a policy, registered on the
// Manager. Done reports each file once it is verified and renamed.
func ExampleHandler() {
	n := xmpptest.New("example.net")
	defer n.Close()
	x := jingletest.NewExchange()
	dir, _ := os.MkdirTemp("", "ft-example")
	defer os.RemoveAll(dir)

	done := make(chan filetransfer.Result, 1)
	bob := &filetransfer.Handler{
		Dir:    dir,
		Policy: filetransfer.AcceptFrom(jid.MustParse("alice@example.net")),
		Limits: filetransfer.Limits{MaxFileSize: 100 << 20},
		Done:   func(r filetransfer.Result) { done <- r },
	}
	bm, err := exampleParty(n, "bob@example.net/b", x, bob)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer bm.Close(context.Background())
	am, err := exampleParty(n, "alice@example.net/a", x, &filetransfer.Handler{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer am.Close(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sent := make(chan error, 1)
	go func() {
		_, err := filetransfer.Send(ctx, am, jid.MustParse("bob@example.net/b"), filetransfer.BytesSource("../notes.txt", []byte("hello, bob")))
		sent <- err
	}()

	r := <-done
	<-sent
	data, _ := os.ReadFile(r.Path)
	fmt.Printf("%s -> %s: %q verified=%v err=%v\n", r.Name, filepath.Base(r.Path), data, r.Verified, r.Err)
	// Output:
	// ../notes.txt -> notes.txt: "hello, bob" verified=true err=<nil>
}

// Sending: Send offers the files in one session and returns when the
// receiver has verified them (or refused them).
func ExampleSender_Send() {
	n := xmpptest.New("example.net")
	defer n.Close()
	x := jingletest.NewExchange()
	dir, _ := os.MkdirTemp("", "ft-example")
	defer os.RemoveAll(dir)

	bm, err := exampleParty(n, "bob@example.net/b", x, &filetransfer.Handler{Dir: dir, Policy: filetransfer.AcceptAll})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer bm.Close(context.Background())
	am, err := exampleParty(n, "alice@example.net/a", x, &filetransfer.Handler{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer am.Close(context.Background())

	s := filetransfer.Sender{
		Transports: []string{jingletest.PipeNS}, // e.g. SOCKS5 first, IBB last
		Hashes:     []string{filetransfer.SHA256},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	results, err := s.Send(ctx, am, jid.MustParse("bob@example.net/b"),
		filetransfer.BytesSource("a.txt", []byte("first")),
		filetransfer.BytesSource("b.txt", []byte("second")))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range results {
		fmt.Println(r.Name, r.Bytes, r.Hash, r.Verified)
	}
	// Output:
	// a.txt 5 sha-256:a7937b64b8caa58f03721bb6bacf5c78cb235febe0e70b1b84cd99541461a08e true
	// b.txt 6 sha-256:16367aacb67a4a017c8da8ab95682ccb390863780f7114dda0a0e0c55644c7c4 true
}
