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
	"errors"
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
	o := options{}
	flag.StringVar(&o.name, "name", "", "link-local name, user@machine")
	flag.StringVar(&o.listen, "listen", fmt.Sprintf(":%d", linklocal.DefaultPort), "TCP address to accept streams on")
	peer := flag.String("peer", "", "host:port of a peer to reach without mDNS")
	flag.BoolVar(&o.noMDNS, "nomdns", false, "do not use multicast DNS")
	flag.StringVar(&o.iface, "iface", "", "network interface for mDNS (default: every multicast interface)")
	send := flag.String("send", "", "file to send")
	to := flag.String("to", "", "name of the peer to send to (default: the -peer's)")
	flag.StringVar(&o.recv, "recv", "", "directory to receive files into")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	o.done = func(r filetransfer.Result) { log.Printf("received %s from %s: %v", r.Path, r.Peer, r.Err) }
	p, err := start(ctx, o)
	if err != nil {
		log.Fatal(err)
	}
	defer p.close()
	log.Printf("%s listening on %s", o.name, p.node.Addr())
	if *peer != "" {
		pr, err := p.node.AddPeer(ctx, "", *peer)
		if err != nil {
			log.Fatal(err)
		}
		*to = pr.Name.String()
	}
	time.Sleep(2 * time.Second) // let mDNS answers arrive
	for _, pr := range p.node.Peers() {
		fmt.Printf("%-30s %-15s %5d  %s %q\n", pr.Name, pr.Addr, pr.Port, pr.TXT.Show(), pr.TXT.Msg)
	}
	if *send == "" {
		<-ctx.Done() // receive until interrupted
		return
	}
	if *to == "" {
		log.Fatal("-send needs -to or -peer")
	}
	r, err := p.send(ctx, jid.MustParse(*to), *send)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("sent %s: %d bytes over %s, verified %v", r.Name, r.Bytes, r.Transport, r.Verified)
}

// options configure a link-local peer.
type options struct {
	name, listen, iface string
	noMDNS              bool
	recv                string // directory to receive into; empty declines files
	loopback            bool   // offer loopback SOCKS5 candidates
	done                func(filetransfer.Result)
}

// peer is this side: a link-local node and the Jingle Manager it serves.
type peer struct {
	m    *jingle.Manager
	node *linklocal.Node
}

// start announces the node and serves file transfer over SOCKS5 (direct)
// or IBB, for every peer.
func start(ctx context.Context, o options) (*peer, error) {
	ft := &filetransfer.Handler{Dir: o.recv, Done: o.done}
	if o.recv != "" {
		ft.Policy = filetransfer.AcceptAll
	}
	m := &jingle.Manager{}
	ibbm := &ibb.Method{}
	if err := errors.Join(m.RegisterApplication(ft),
		m.RegisterTransport(socks5.NewMethod(socks5.Settings{NoProxyDiscovery: true, AllowLoopback: o.loopback})),
		m.RegisterTransport(ibbm)); err != nil {
		return nil, err
	}
	caps := xmppclient.Caps{Identities: []xmppclient.Identity{{Category: "client", Type: "pc", Name: "serverless"}}, Features: m.Features()}
	node := &linklocal.Node{
		Name: o.name, Nick: o.name, Listen: o.listen, NoMulticast: o.noMDNS, AcceptUnadvertised: o.noMDNS, Caps: caps,
		Handler: mux.New(stanza.NSClient, m.Handler(), ibbm.Handler(), xmppclient.HandleDisco(caps)),
	}
	if o.iface != "" {
		node.Interfaces = []string{o.iface}
	}
	m.SetStream(node)
	if err := node.Start(ctx); err != nil {
		return nil, err
	}
	return &peer{m: m, node: node}, nil
}

// send sends the file at path to the peer named to.
func (p *peer) send(ctx context.Context, to jid.JID, path string) (filetransfer.Result, error) {
	src, err := filetransfer.FileSource(path)
	if err != nil {
		return filetransfer.Result{}, err
	}
	res, err := filetransfer.Send(ctx, p.m, to, src)
	if len(res) == 0 {
		return filetransfer.Result{}, err
	}
	return res[0], err
}

// close ends the sessions, then the node.
func (p *peer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = p.m.Close(ctx)
	_ = p.node.Close()
}
