package xmppclient_test

import (
	"context"
	"errors"
	"log"
	"os"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/transports/ibb"
	"github.com/jinglekit/jinglekit/transports/socks5"
	"github.com/jinglekit/jinglekit/xmppclient"
)

// Sending a file from a program: log in, plug Jingle file transfer with
// SOCKS5 and IBB into the stream, send. (It needs a server and a
// receiver, so it is not run; examples/sendfile is the same as a command,
// with a test.)
func ExampleDial() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m := &jingle.Manager{}
	ibbm := &ibb.Method{}
	if err := errors.Join(m.RegisterApplication(&filetransfer.Handler{}),
		m.RegisterTransport(socks5.NewMethod(socks5.Settings{})), m.RegisterTransport(ibbm)); err != nil {
		log.Fatal(err)
	}
	client, err := xmppclient.Dial(ctx, xmppclient.Config{
		JID:      jid.MustParse("alice@example.org"),
		Password: os.Getenv("XMPP_PASSWORD"),
		Handler:  mux.New(stanza.NSClient, m.Handler(), ibbm.Handler()),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	m.SetStream(client.Session())
	defer m.Close(context.Background())
	results, err := filetransfer.Send(ctx, m, jid.MustParse("bob@example.org/laptop"),
		filetransfer.BytesSource("hello.txt", []byte("hello, bob")))
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("sent %d bytes, verified: %v", results[0].Bytes, results[0].Verified)
}
