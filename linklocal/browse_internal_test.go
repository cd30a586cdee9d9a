package linklocal

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
)

func startTestNode(t *testing.T, name string) *Node {
	t.Helper()
	n := &Node{Name: name, Listen: "127.0.0.1:0", NoMulticast: true, AcceptUnadvertised: true, Logger: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// The advertisements below come "over loopback".
	n.mdnsLoopback = true
	t.Cleanup(func() { _ = n.Close() })
	return n
}

func peerNamed(n *Node, name string) (Peer, bool) {
	for _, p := range n.Peers() {
		if p.Name.String() == name {
			return p, true
		}
	}
	return Peer{}, false
}

// TestAdvertisementHostile feeds the browse handler what a hostile or
// broken peer may advertise.
func TestAdvertisementHostile(t *testing.T) {
	n := startTestNode(t, "alice@pronto")
	lo := netip.MustParseAddr("127.0.0.1")
	huge := make([]string, 0, 30)
	for i := 0; i < 30; i++ {
		huge = append(huge, "x"+strconv.Itoa(i)+"="+strings.Repeat("v", 200))
	}
	for _, tc := range []struct {
		name   string
		ev     browseEvent
		listed bool
		txtErr error
	}{
		{"huge TXT: listed without it", browseEvent{instance: "big@host", addr: lo, port: 5298, txt: huge}, true, ErrTXTTooLarge},
		{"txtvers 9: listed without TXT", browseEvent{instance: "v9@host", addr: lo, port: 5298, txt: []string{"txtvers=9", "nick=x"}}, true, ErrTXTVersion},
		{"no TXT at all", browseEvent{instance: "bare@host", addr: lo, port: 5298}, true, nil},
		{"invalid name", browseEvent{instance: "no-at-sign", addr: lo, port: 5298}, false, nil},
		{"name with a dot", browseEvent{instance: "a.b@host", addr: lo, port: 5298}, false, nil},
		{"our own name", browseEvent{instance: "alice@pronto", addr: lo, port: 5298}, false, nil},
		{"port 0", browseEvent{instance: "p0@host", addr: lo, port: 0}, false, nil},
		{"multicast address", browseEvent{instance: "mc@host", addr: netip.MustParseAddr("224.0.0.251"), port: 5298}, false, nil},
		{"unspecified address", browseEvent{instance: "un@host", addr: netip.MustParseAddr("0.0.0.0"), port: 5298}, false, nil},
		{"broadcast address", browseEvent{instance: "bc@host", addr: netip.MustParseAddr("255.255.255.255"), port: 5298}, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n.onBrowse(tc.ev)
			p, ok := peerNamed(n, strings.ToLower(tc.ev.instance))
			if ok != tc.listed {
				t.Fatalf("listed %v, want %v (%+v)", ok, tc.listed, p)
			}
			if ok && !errors.Is(p.TXTErr, tc.txtErr) || ok && tc.txtErr != nil && p.TXT.Nick != "" {
				t.Fatalf("TXTErr %v, TXT %+v; want %v", p.TXTErr, p.TXT, tc.txtErr)
			}
		})
	}

	// A loopback address advertised on a real interface is refused.
	n.mdnsLoopback = false
	n.onBrowse(browseEvent{instance: "sneaky@host", addr: lo, port: 22})
	if _, ok := peerNamed(n, "sneaky@host"); ok {
		t.Fatal("a loopback address from the network was accepted")
	}
	n.mdnsLoopback = true

	// A goodbye removes a browsed peer.
	n.onBrowse(browseEvent{instance: "bare@host", gone: true})
	if _, ok := peerNamed(n, "bare@host"); ok {
		t.Fatal("peer still listed after its goodbye")
	}
}

// TestPortP2PJIgnored: a TXT port.p2pj pointing elsewhere is never dialled;
// the SRV port is (XEP-0174 §10).
func TestPortP2PJIgnored(t *testing.T) {
	alice := startTestNode(t, "alice@pronto")
	bob := startTestNode(t, "bob@forza")
	decoy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hits := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := decoy.Accept()
			if err != nil {
				return
			}
			hits <- struct{}{}
			_ = c.Close()
		}
	}()
	defer func() { _ = decoy.Close(); <-done }()

	bobPort := bob.Addr().(*net.TCPAddr).Port
	decoyPort := decoy.Addr().(*net.TCPAddr).Port
	alice.onBrowse(browseEvent{
		instance: "bob@forza", host: "forza.local.", addr: netip.MustParseAddr("127.0.0.1"), port: uint16(bobPort),
		txt: []string{"txtvers=1", "port.p2pj=" + strconv.Itoa(decoyPort), "nick=Bob"},
	})
	p, ok := peerNamed(alice, "bob@forza")
	if !ok || p.Port != bobPort || p.TXT.PortP2PJ != decoyPort || p.TXT.Nick != "Bob" {
		t.Fatalf("peer %+v", p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := alice.Disco(ctx, jid.MustParse("bob@forza")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-hits:
		t.Fatal("the port.p2pj port was dialled")
	default:
	}
}

// TestMaxPeers: advertisements beyond Limits.MaxPeers are ignored.
func TestMaxPeers(t *testing.T) {
	n := &Node{Name: "alice@pronto", Listen: "127.0.0.1:0", NoMulticast: true, Limits: Limits{MaxPeers: 3}, Logger: slog.New(slog.DiscardHandler)}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	n.mdnsLoopback = true
	for i := 0; i < 10; i++ {
		n.onBrowse(browseEvent{instance: "p" + strconv.Itoa(i) + "@host", addr: netip.MustParseAddr("127.0.0.1"), port: 5298})
	}
	if got := len(n.Peers()); got != 3 {
		t.Fatalf("%d peers, want 3", got)
	}
}

// TestBrowseEvents: a subscriber sees the peers known, then changes, and
// its channel closes with its context.
func TestBrowseEvents(t *testing.T) {
	n := startTestNode(t, "alice@pronto")
	lo := netip.MustParseAddr("127.0.0.1")
	n.onBrowse(browseEvent{instance: "one@host", addr: lo, port: 1})
	ctx, cancel := context.WithCancel(context.Background())
	ch := n.Browse(ctx)
	if ev := <-ch; ev.Type != PeerAdded || ev.Peer.Name.String() != "one@host" {
		t.Fatalf("first event %+v", ev)
	}
	n.onBrowse(browseEvent{instance: "two@host", addr: lo, port: 2})
	if ev := <-ch; ev.Type != PeerAdded || ev.Peer.Name.String() != "two@host" {
		t.Fatalf("event %+v", ev)
	}
	n.onBrowse(browseEvent{instance: "two@host", addr: lo, port: 3})
	if ev := <-ch; ev.Type != PeerUpdated || ev.Peer.Port != 3 {
		t.Fatalf("event %+v", ev)
	}
	n.onBrowse(browseEvent{instance: "one@host", gone: true})
	if ev := <-ch; ev.Type != PeerRemoved || ev.Peer.Name.String() != "one@host" {
		t.Fatalf("event %+v", ev)
	}
	cancel()
	for range ch {
	}
}
