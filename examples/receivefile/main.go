// Command receivefile receives files sent with Jingle file transfer
// (XEP-0234) from one contact, over SOCKS5 bytestreams (XEP-0260) or
// in-band bytestreams (XEP-0261), into a directory. It keeps receiving
// until interrupted, or stops after the first file with -once.
//
//	RECEIVEFILE_PASSWORD=secret receivefile -jid me@example.org/laptop -from you@example.org -dir ./incoming
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
	account := flag.String("jid", "", "your account, with a resource the sender addresses")
	from := flag.String("from", "", "the bare JID files are accepted from")
	dir := flag.String("dir", ".", "directory to store files in")
	server := flag.String("server", "", "host:port of the server (default: DNS SRV)")
	once := flag.Bool("once", false, "stop after the first file")
	loopback := flag.Bool("allow-loopback", false, "offer loopback addresses (both ends on one machine)")
	flag.Parse()
	if *account == "" || *from == "" {
		log.Fatal("usage: receivefile -jid ACCOUNT/RESOURCE -from BAREJID [-dir DIR]")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	cfg := xmppclient.Config{JID: jid.MustParse(*account), Password: os.Getenv("RECEIVEFILE_PASSWORD"), Server: *server}
	err := receiveFiles(ctx, cfg, socks5.Settings{AllowLoopback: *loopback}, jid.MustParse(*from), *dir, *once, nil)
	if err != nil && !errors.Is(err, context.Canceled) {
		log.Fatal(err)
	}
}

// receiveFiles logs in with cfg, tells its contacts it is online, and
// stores the files from's devices send into dir until ctx ends (or after
// the first one, with once). ready, when not nil, is called once the
// files can come.
func receiveFiles(ctx context.Context, cfg xmppclient.Config, s5 socks5.Settings, from jid.JID, dir string, once bool, ready func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	h := &filetransfer.Handler{Dir: dir, Policy: filetransfer.AcceptFrom(from.Bare()),
		Done: func(r filetransfer.Result) {
			if r.Err != nil {
				log.Printf("%s from %s: %v", r.Name, r.Peer, r.Err)
				return
			}
			log.Printf("received %s from %s (%d bytes over %s)", r.Path, r.Peer, r.Bytes, r.Transport)
			if once {
				cancel()
			}
		}}
	m := &jingle.Manager{}
	ibbm := &ibb.Method{}
	if err := errors.Join(m.RegisterApplication(h),
		m.RegisterTransport(socks5.NewMethod(s5)), m.RegisterTransport(ibbm)); err != nil {
		return err
	}
	cfg.Caps = xmppclient.Caps{Identities: []xmppclient.Identity{{Category: "client", Type: "bot", Name: "receivefile"}},
		Features: m.Features()}
	cfg.Handler = mux.New(stanza.NSClient, m.Handler(), ibbm.Handler(), xmppclient.HandleDisco(cfg.Caps))
	client, err := xmppclient.Dial(ctx, cfg)
	if err != nil {
		return err
	}
	defer client.Close()
	m.SetStream(client.Session())
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = m.Close(ctx)
	}()
	if err := client.SendPresence(ctx); err != nil {
		return err
	}
	if ready != nil {
		ready()
	}
	<-ctx.Done()
	return ctx.Err()
}
