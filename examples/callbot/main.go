// Command callbot is a call echo bot: it answers every audio or video call
// (XEP-0167 over ICE-UDP and DTLS-SRTP, announced or not with XEP-0353)
// and sends the caller's own media back, video added mid-call included.
//
//	CALLBOT_PASSWORD=secret callbot -jid echo@example.org
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
	cfg := xmppclient.Config{JID: jid.MustParse(*addr), Password: os.Getenv("CALLBOT_PASSWORD"), Server: *server}
	if err := echoCalls(ctx, cfg, rtp.Config{}, nil); err != nil && !errors.Is(err, context.Canceled) {
		log.Fatal(err)
	}
}

// echoCalls logs in with cfg and echoes every call until ctx ends. ready,
// when not nil, is called once calls can come.
func echoCalls(ctx context.Context, cfg xmppclient.Config, calls rtp.Config, ready func()) error {
	m := &jingle.Manager{}
	proposals := &jmi.Manager{OnPropose: func(ctx context.Context, in *jmi.Incoming) {
		log.Printf("%s proposes a call", in.From)
		_ = in.Proceed(ctx) // the session-initiate follows
	}}
	h := &rtp.Handler{Config: calls, JMI: proposals, OnCall: func(ctx context.Context, c *rtp.Call) {
		log.Printf("call from %s", c.Peer())
		if err := c.Accept(ctx, rtp.NewEcho().Options()); err != nil {
			log.Printf("accept: %v", err)
			return
		}
		<-c.Done()
		log.Printf("call from %s ended: %v", c.Peer(), c.Reason())
	}}
	if err := h.Register(m); err != nil {
		return err
	}
	cfg.Caps = xmppclient.Caps{Identities: []xmppclient.Identity{{Category: "client", Type: "bot", Name: "callbot"}}, Features: m.Features()}
	cfg.Handler = mux.New(stanza.NSClient, m.Handler(), proposals.Handler(), xmppclient.HandleDisco(cfg.Caps))
	cl, err := xmppclient.Dial(ctx, cfg)
	if err != nil {
		return err
	}
	defer cl.Close()
	m.SetStream(cl.Session())
	proposals.SetStream(cl.Session())
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = h.Close(ctx)
		_ = m.Close(ctx)
		_ = proposals.Close(ctx)
	}()
	if err := cl.SendPresence(ctx); err != nil {
		return err
	}
	log.Printf("echoing calls to %s", cl.LocalAddr())
	if ready != nil {
		ready()
	}
	<-ctx.Done()
	return ctx.Err()
}
