// Command sendfile sends one file to a full JID with Jingle file transfer
// (XEP-0234), over SOCKS5 bytestreams (XEP-0260) or, when no candidate
// connects, in-band bytestreams (XEP-0261), and waits for the receiver to
// verify its hash.
//
//	SENDFILE_PASSWORD=secret sendfile -jid me@example.org -to you@example.org/laptop notes.txt
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"os"
	"os/signal"
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

func main() {
	account := flag.String("jid", "", "your account")
	to := flag.String("to", "", "the receiver's full JID")
	server := flag.String("server", "", "host:port of the server (default: DNS SRV)")
	loopback := flag.Bool("allow-loopback", false, "offer loopback addresses (both ends on one machine)")
	flag.Parse()
	if *account == "" || *to == "" || flag.NArg() != 1 {
		log.Fatal("usage: sendfile -jid ACCOUNT -to FULLJID FILE")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	cfg := xmppclient.Config{JID: jid.MustParse(*account), Password: os.Getenv("SENDFILE_PASSWORD"), Server: *server}
	r, err := sendFile(ctx, cfg, socks5.Settings{AllowLoopback: *loopback}, jid.MustParse(*to), flag.Arg(0))
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("sent %s: %d bytes over %s, verified by the receiver", r.Name, r.Bytes, r.Transport)
}

// sendFile logs in with cfg, sends the file at path to peer and logs out.
func sendFile(ctx context.Context, cfg xmppclient.Config, s5 socks5.Settings, peer jid.JID, path string) (filetransfer.Result, error) {
	m := &jingle.Manager{}
	ibbm := &ibb.Method{}
	if err := errors.Join(m.RegisterApplication(&filetransfer.Handler{}),
		m.RegisterTransport(socks5.NewMethod(s5)), m.RegisterTransport(ibbm)); err != nil {
		return filetransfer.Result{}, err
	}
	cfg.Handler = mux.New(stanza.NSClient, m.Handler(), ibbm.Handler())
	client, err := xmppclient.Dial(ctx, cfg)
	if err != nil {
		return filetransfer.Result{}, err
	}
	defer client.Close()
	m.SetStream(client.Session())
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = m.Close(ctx)
	}()
	src, err := filetransfer.FileSource(path)
	if err != nil {
		return filetransfer.Result{}, err
	}
	results, err := filetransfer.Send(ctx, m, peer, src)
	if len(results) == 0 {
		return filetransfer.Result{}, err
	}
	return results[0], err
}
