package e2e_test

import (
	"context"
	"testing"
	"time"

	"github.com/jinglekit/jinglekit/internal/ejabberdtest"
	"github.com/jinglekit/jinglekit/transports/ice"
)

// ejabberdSizes are the files of the ejabberd tables: the 1 B and the
// 32/256 MiB runs stay Prosody's, to keep CI short (each relayed session
// costs about 2 s of TURN allocations).
var ejabberdSizes = []int64{0, 1 << 20, 4 << 20}

// ejabberdCases are the transports of TestTransports plus ICE relayed by
// ejabberd's own TURN server, with the credentials mod_stun_disco hands
// out (XEP-0215). ICE runs in one data-channel dialect: the server only
// carries its signaling, which is the same in both.
func ejabberdCases() []transportCase {
	return append(oneICEDialect(transportCases()), transportCase{"ice-relay-only", ice.NSWebRTCDataChannel, func() peerOpts {
		// A Discovery per peer: each asks its own node.
		return peerOpts{ice: &ice.Config{
			RelayOnly: true, RelayTransports: []string{"udp"},
			Discovery: &ice.Discovery{}, DisableIPv6: true,
		}}
	}})
}

// TestEjabberdTransports runs the transfer table between two clients of
// one ejabberd node.
func TestEjabberdTransports(t *testing.T) {
	srv := ejabberd.Get(t)
	for _, tc := range ejabberdCases() {
		t.Run(tc.name, func(t *testing.T) {
			ao, bo := tc.opts(), tc.opts()
			a, apass := srv.NewUser(t, "alice")
			b, bpass := srv.NewUser(t, "bob")
			alice := newPeerAt(t, srv.C2SAddr, srv.CAFile, a+"/e2e", apass, ao)
			bob := newPeerAt(t, srv.C2SAddr, srv.CAFile, b+"/e2e", bpass, bo)
			sendTable(t, alice, bob, tc.transport, ejabberdSizes)
			checkRelayDiscovery(t, ao, bo)
		})
	}
}

// TestEjabberdClusterTransports runs the transfer table across a two-node
// ejabberd cluster: alice on node 1, bob on node 2. Through the proxy,
// each side offers its own node's proxy65; relayed, each side allocates
// on its own node's TURN server.
func TestEjabberdClusterTransports(t *testing.T) {
	c := ejabberdCluster.Get(t)
	n1, n2 := c.Nodes[0], c.Nodes[1]
	for _, tc := range ejabberdCases() {
		t.Run(tc.name, func(t *testing.T) {
			ao, bo := tc.opts(), tc.opts()
			if tc.name == "s5b-proxy65" {
				// Both nodes announce proxy65 as proxy.localhost, each at its
				// own address, and a streamhost query reaches the asker's own
				// node. A --no-direct receiver on node 2 cannot check that
				// alice's proxy candidate (node 1's address) is a proxy and
				// not a host she names, so it refuses it (privacy: it never
				// connects to an address the sender names). Only the sender
				// is private here: she offers only her node's proxy, which
				// bob uses, and she activates it through node 1.
				bo.s5b.NoDirect = false
			}
			a, apass := c.NewUser(t, "alice")
			b, bpass := c.NewUser(t, "bob")
			alice := newPeerAt(t, n1.C2SAddr, n1.CAFile, a+"/e2e", apass, ao)
			bob := newPeerAt(t, n2.C2SAddr, n2.CAFile, b+"/e2e", bpass, bo)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := c.WaitSession(ctx, bob.jid.String()); err != nil {
				t.Fatal(err)
			}
			sendTable(t, alice, bob, tc.transport, ejabberdSizes)
			checkRelayDiscovery(t, ao, bo)
		})
	}
}

// checkRelayDiscovery checks that relay-only peers did ask their server
// for its TURN service.
func checkRelayDiscovery(t *testing.T, opts ...peerOpts) {
	t.Helper()
	for _, o := range opts {
		if o.ice != nil && o.ice.Discovery != nil && o.ice.Discovery.Queries() == 0 {
			t.Error("a relay-only peer sent no XEP-0215 query")
		}
	}
}

// Servers of the ejabberd tests, started on first use.
var (
	ejabberd        ejabberdtest.Lazy
	ejabberdCluster ejabberdtest.LazyCluster
)
