// Command callbot is a call echo bot: it answers every audio or video call
// (XEP-0167 over ICE-UDP and DTLS-SRTP, announced or not with XEP-0353)
// and sends the caller's own media back, video added mid-call included.
//
//	CALLBOT_PASSWORD=secret callbot -jid echo@example.org
package main

import (
	"context"
	"flag"
	"log"
	"os"
	"os/signal"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jmi"
	"github.com/jinglekit/jinglekit/rtp"
	"github.com/jinglekit/jinglekit/xmppclient"
)

func main() {
	addr := flag.String("jid", "", "the bot's account")
	server := flag.String("server", "", "host:port of the server (default: DNS SRV)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	m := &jingle.Manager{}
	jmi := &jmi.Manager{OnPropose: func(ctx context.Context, in *jmi.Incoming) {
		log.Printf("%s proposes a call", in.From)
		_ = in.Proceed(ctx) // the session-initiate follows
	}}
	h := &rtp.Handler{JMI: jmi, OnCall: func(ctx context.Context, c *rtp.Call) {
		log.Printf("call from %s", c.Peer())
		if err := c.Accept(ctx, rtp.NewEcho().Options()); err != nil {
			log.Printf("accept: %v", err)
			return
		}
		<-c.Done()
		log.Printf("call from %s ended: %v", c.Peer(), c.Reason())
	}}
	h.Register(m)
	caps := xmppclient.Caps{Identities: []xmppclient.Identity{{Category: "client", Type: "bot", Name: "callbot"}}, Features: m.Features()}
	cl, err := xmppclient.Dial(ctx, xmppclient.Config{
		JID: jid.MustParse(*addr), Password: os.Getenv("CALLBOT_PASSWORD"), Server: *server, Caps: caps,
		Handler: mux.New(stanza.NSClient, m.Handler(), jmi.Handler(), xmppclient.HandleDisco(caps)),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	m.SetStream(cl.Session())
	jmi.SetStream(cl.Session())
	if err := cl.SendPresence(ctx); err != nil {
		log.Fatal(err)
	}
	log.Printf("echoing calls to %s", cl.LocalAddr())
	<-ctx.Done()
	_ = h.Close(context.Background())
	_ = m.Close(context.Background())
	_ = jmi.Close(context.Background())
}
