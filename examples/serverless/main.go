// Command serverless sends or receives a file over XEP-0174 link-local
// messaging: no server, no account. Peers are found over mDNS, or given
// with -peer when multicast does not work.
//
//	serverless -name bob@forza -recv ./incoming
//	serverless -name alice@pronto -send notes.txt -to bob@forza
//	serverless -name alice@pronto -send notes.txt -peer 192.0.2.7:5298 -nomdns
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/linklocal"
	"github.com/jinglekit/jinglekit/transports/ibb"
	"github.com/jinglekit/jinglekit/transports/socks5"
	"github.com/jinglekit/jinglekit/xmppclient"
)

func main() {
	name := flag.String("name", "", "link-local name, user@machine")
	listen := flag.String("listen", fmt.Sprintf(":%d", linklocal.DefaultPort), "TCP address to accept streams on")
	peer := flag.String("peer", "", "host:port of a peer to reach without mDNS")
	noMDNS := flag.Bool("nomdns", false, "do not use multicast DNS")
	iface := flag.String("iface", "", "network interface for mDNS (default: every multicast interface)")
	send := flag.String("send", "", "file to send")
	to := flag.String("to", "", "name of the peer to send to (default: the -peer's)")
	recv := flag.String("recv", "", "directory to receive files into")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	// One Manager for every peer: file transfer over SOCKS5 (direct) or IBB.
	ft := &filetransfer.Handler{Dir: *recv, Done: func(r filetransfer.Result) { log.Printf("received %s from %s: %v", r.Path, r.Peer, r.Err) }}
	if *recv != "" {
		ft.Policy = filetransfer.AcceptAll
	}
	m := &jingle.Manager{}
	m.RegisterApplication(ft)
	m.RegisterTransport(socks5.NewMethod(socks5.Settings{NoProxyDiscovery: true}))
	ibbm := &ibb.Method{}
	m.RegisterTransport(ibbm)
	caps := xmppclient.Caps{Identities: []xmppclient.Identity{{Category: "client", Type: "pc", Name: "serverless"}}, Features: m.Features()}
	node := &linklocal.Node{
		Name: *name, Nick: *name, Listen: *listen, NoMulticast: *noMDNS, AcceptUnadvertised: *noMDNS, Caps: caps,
		Handler: mux.New(stanza.NSClient, m.Handler(), ibbm.Handler(), xmppclient.HandleDisco(caps)),
	}
	if *iface != "" {
		node.Interfaces = []string{*iface}
	}
	m.SetStream(node)
	if err := node.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer node.Close()
	defer m.Close(context.Background())
	log.Printf("%s listening on %s", *name, node.Addr())

	if *peer != "" {
		p, err := node.AddPeer(ctx, "", *peer)
		if err != nil {
			log.Fatal(err)
		}
		*to = p.Name.String()
	}
	time.Sleep(2 * time.Second) // let mDNS answers arrive
	for _, p := range node.Peers() {
		fmt.Printf("%-30s %-15s %5d  %s %q\n", p.Name, p.Addr, p.Port, p.TXT.Show(), p.TXT.Msg)
	}
	if *send == "" {
		<-ctx.Done() // receive until interrupted
		return
	}
	if *to == "" {
		log.Fatal("-send needs -to or -peer")
	}
	src, err := filetransfer.FileSource(*send)
	if err != nil {
		log.Fatal(err)
	}
	res, err := filetransfer.Send(ctx, m, jid.MustParse(*to), src)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("sent %s: %d bytes over %s, verified %v", res[0].Name, res[0].Bytes, res[0].Transport, res[0].Verified)
}
