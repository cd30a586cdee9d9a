package agent

import (
	"testing"

	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/transports/ibb"
	"github.com/jinglekit/jinglekit/transports/ice"
	"github.com/jinglekit/jinglekit/transports/socks5"
)

// TestNoDirectICERelayOnly: no_direct makes ICE offer relayed candidates
// only, whatever ice_relay_only says, so that no address of this host
// reaches the peer over ICE either.
func TestNoDirectICERelayOnly(t *testing.T) {
	if c := (Config{NoDirect: true}).ICEConfig(nil); !c.RelayOnly || c.Discovery == nil {
		t.Errorf("no_direct: relay-only %v, discovery %v", c.RelayOnly, c.Discovery != nil)
	}
	if c := (Config{}).ICEConfig(nil); c.RelayOnly {
		t.Error("relay-only without no_direct nor ice_relay_only")
	}
}

// fakeS5B and fakeICE stand for connected transports.
type fakeS5B struct {
	jingle.Transport
	route socks5.CandidateType
}

func (f fakeS5B) Route() socks5.CandidateType { return f.route }

type fakeICE struct {
	jingle.Transport
	pair ice.PairInfo
	ok   bool
}

func (f fakeICE) SelectedPair() (ice.PairInfo, bool) { return f.pair, f.ok }

// TestRouteOf: the route label tells direct and proxied SOCKS5, direct
// and relayed ICE, and IBB apart.
func TestRouteOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		ns   string
		t    jingle.Transport
		want string
	}{
		{"ibb", ibb.NSTransport, nil, RouteIBB},
		{"s5b direct", socks5.NS, fakeS5B{route: socks5.TypeDirect}, RouteS5BDirect},
		{"s5b assisted", socks5.NS, fakeS5B{route: socks5.TypeAssisted}, RouteS5BDirect},
		{"s5b proxy", socks5.NS, fakeS5B{route: socks5.TypeProxy}, RouteS5BProxy},
		{"s5b unsettled", socks5.NS, fakeS5B{}, ""},
		{"ice host", ice.NSWebRTCDataChannel, fakeICE{pair: ice.PairInfo{LocalType: "host", RemoteType: "host"}, ok: true}, RouteICEHost},
		{"ice srflx", ice.NSICEUDP, fakeICE{pair: ice.PairInfo{LocalType: "srflx", RemoteType: "prflx"}, ok: true}, RouteICEHost},
		{"ice local relay", ice.NSICEUDP, fakeICE{pair: ice.PairInfo{LocalType: "relay", RemoteType: "host"}, ok: true}, RouteICERelay},
		{"ice remote relay", ice.NSWebRTCDataChannel, fakeICE{pair: ice.PairInfo{LocalType: "host", RemoteType: "relay"}, ok: true}, RouteICERelay},
		{"ice no pair", ice.NSICEUDP, fakeICE{}, ""},
		{"unknown", "urn:example:t", nil, ""},
	} {
		if got := RouteOf(tc.ns, tc.t); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
