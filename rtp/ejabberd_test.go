package rtp_test

import (
	"context"
	"testing"
	"time"

	"github.com/jinglekit/jinglekit/internal/ejabberdtest"
)

// Servers of the ejabberd tests, started on first use.
var (
	ejabberd        ejabberdtest.Lazy
	ejabberdCluster ejabberdtest.LazyCluster
)

// TestEjabberdJMICall runs the full call scenario of
// TestProsodyJMICallHoldMuteVideo (XEP-0353 proposal to the bare JID,
// ringing, proceed, Opus both ways, hold, mute, video added and removed)
// between two clients of one ejabberd node with XEP-0280 carbons
// (mod_carboncopy), and across a two-node cluster: bob on node 2, alice on
// node 1.
func TestEjabberdJMICall(t *testing.T) {
	t.Run("node", func(t *testing.T) {
		srv := ejabberd.Get(t)
		fullCall(t, func(t *testing.T, who string, setup func(*party)) *party {
			bare, pass := srv.NewUser(t, who)
			return serverParty(t, srv.C2SAddr, srv.CAFile, bare+"/"+who[:1], pass, setup)
		})
	})
	t.Run("cluster", func(t *testing.T) {
		c := ejabberdCluster.Get(t)
		fullCall(t, func(t *testing.T, who string, setup func(*party)) *party {
			node := c.Nodes[0]
			if who == "bob" {
				node = c.Nodes[1]
			}
			bare, pass := c.NewUser(t, who)
			p := serverParty(t, node.C2SAddr, node.CAFile, bare+"/"+who[:1], pass, setup)
			// The proposal goes to bob's bare JID through node 1: wait
			// until node 1 knows bob's session is available.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := c.WaitAvailable(ctx, p.addr.String()); err != nil {
				t.Fatal(err)
			}
			return p
		})
	})
}
