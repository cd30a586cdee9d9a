package socks5_test

import (
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/transports/socks5"
	"github.com/jinglekit/jinglekit/xmpptest"
)

// canary is a TCP listener that counts who connects to it: the address a
// hostile peer names as its candidate.
type canary struct {
	ln    net.Listener
	conns atomic.Int32
}

func newCanary(t *testing.T) *canary {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &canary{ln: ln}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			c.conns.Add(1)
			conn.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return c
}

func (c *canary) port() string { return strconv.Itoa(c.ln.Addr().(*net.TCPAddr).Port) }

// TestNoDirectRefusesNamedAddresses: a side with NoDirect connects to no
// address the peer names: not its direct candidates, and not a "proxy"
// candidate whose address the proxy's own JID does not confirm (a hostile
// peer calling any host a proxy). A real proxy of the peer's, confirmed
// by a streamhost query, is used, and Route says so.
func TestNoDirectRefusesNamedAddresses(t *testing.T) {
	portRe := regexp.MustCompile(`port="[0-9]+"`)
	for _, tc := range []struct {
		name    string
		rewrite func(raw, canaryPort string) string // alice's offer as bob gets it
		works   bool
	}{
		{"genuine proxy", nil, true},
		{"proxy candidate at another address", func(raw, p string) string {
			return portRe.ReplaceAllString(raw, `port="`+p+`"`)
		}, false},
		{"own host called a proxy", func(raw, p string) string {
			raw = portRe.ReplaceAllString(raw, `port="`+p+`"`)
			return strings.ReplaceAll(raw, `type="direct"`, `type="proxy"`)
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := xmpptest.NewNetwork(t)
			px := newFakeProxy(t, n, false)
			cn := newCanary(t)
			as, bs := loopback(), loopback()
			as.Proxies = []socks5.Proxy{px.proxy()} // direct and proxy candidates
			bs.NoDirect = true                      // and no proxy of its own
			as.NegotiationTimeout, bs.NegotiationTimeout = 5e9, 5e9
			n.SetFilter(func(from, to jid.JID, raw []byte) []byte {
				if tc.rewrite != nil && isAction(raw, jingle.ActionSessionInitiate) {
					return []byte(tc.rewrite(string(raw), cn.port()))
				}
				return raw
			})
			alice, bob := newSide(t, n, xmpptest.Alice, as, nil), newSide(t, n, xmpptest.Bob, bs, nil)
			sa, sb := accepted(t, alice, bob, offer("f"))
			da, db := dialAsync(t, sa, "f"), dialAsync(t, sb, "f")
			ra, rb := <-da, <-db
			if got := cn.conns.Load(); got != 0 {
				t.Errorf("bob connected %d times to an address alice named", got)
			}
			if !tc.works {
				wantFailed(t, "bob", rb)
				if ra.err == nil {
					ra.c.Close()
				}
				return
			}
			if ra.err != nil || rb.err != nil {
				t.Fatalf("dial: alice %v, bob %v", ra.err, rb.err)
			}
			defer ra.c.Close()
			defer rb.c.Close()
			send(t, ra.c, rb.c, 1000)
			for who, s := range map[string]*jingle.Session{"alice": sa, "bob": sb} {
				tr, _ := s.Transport("f")
				r, ok := tr.(interface{ Route() socks5.CandidateType })
				if !ok || r.Route() != socks5.TypeProxy {
					t.Errorf("%s: route %v, want proxy", who, r)
				}
			}
		})
	}
}

// TestRouteDirect: a bytestream straight between the parties says so.
func TestRouteDirect(t *testing.T) {
	_, alice, bob := newPair(t, loopback(), loopback(), false)
	sa, sb := accepted(t, alice, bob, offer("f"))
	ca, cb := conns(t, sa, sb, "f")
	defer ca.Close()
	defer cb.Close()
	for who, s := range map[string]*jingle.Session{"alice": sa, "bob": sb} {
		tr, _ := s.Transport("f")
		if r, ok := tr.(interface{ Route() socks5.CandidateType }); !ok || r.Route() != socks5.TypeDirect {
			t.Errorf("%s: route not direct", who)
		}
	}
}
