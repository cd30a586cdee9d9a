package ice_test

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/internal/prosodytest"
	"github.com/jinglekit/jinglekit/internal/turntest"
	"github.com/jinglekit/jinglekit/transports/ice"
	"github.com/jinglekit/jinglekit/xmppclient"
	"github.com/jinglekit/jinglekit/xmpptest"
)

// turnSecret is shared by the test coturn and Prosody's mod_turn_external.
const turnSecret = "jinglekit-test-turn-secret"

// turnTTL is the lifetime of the TURN credentials Prosody hands out.
const turnTTL = 3600

var configureProsody sync.Once

// integration starts coturn, then Prosody configured to announce it with
// XEP-0215 (mod_turn_external, which loads mod_external_services), over
// UDP and TCP.
func integration(t *testing.T) (*prosodytest.Server, *turntest.Server) {
	t.Helper()
	coturn.Options.Secret = turnSecret
	turn := coturn.Get(t)
	configureProsody.Do(func() {
		module, conf := turn.ProsodyConfig(turnTTL)
		prosody.Options.Modules, prosody.Options.HostConfig = []string{module}, conf
	})
	return prosody.Get(t), turn
}

// prosodySide logs a new account in and wires a Manager with the ICE
// methods on it.
func prosodySide(t *testing.T, srv *prosodytest.Server, name string, cfg ice.Config) (*side, jid.JID) {
	t.Helper()
	bare, pass := srv.NewUser(t, name)
	addr := jid.MustParse(bare + "/jinglekit")
	return wireSide(t, cfg, func(h xmpp.Handler) *xmpp.Session {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c, err := xmppclient.Dial(ctx, xmppclient.Config{
			JID: addr, Password: pass, Server: srv.C2SAddr, CAFile: srv.CAFile, Handler: h,
		})
		if err != nil {
			t.Fatalf("login %s: %v", addr, err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c.Session()
	}, addr.String()), addr
}

// TestRelayOnly transfers 1 MiB (256 MiB with JINGLEKIT_BIG=1) between two
// clients of a real Prosody
// that offer relayed candidates only, through a real coturn on loopback,
// with the TURN credentials discovered through XEP-0215 — once with TURN
// over UDP, once over TCP, in each dialect.
func TestRelayOnly(t *testing.T) {
	srv, turn := integration(t)
	for _, transport := range []string{"udp", "tcp"} {
		for _, ns := range []string{ice.NSWebRTCDataChannel, ice.NSICEUDP} {
			t.Run(transport+"/"+ns, func(t *testing.T) {
				disco := &ice.Discovery{}
				cfg := ice.Config{
					RelayOnly: true, RelayTransports: []string{transport},
					Discovery: disco, DisableIPv6: true, Logger: testLogger(t),
				}
				alice, _ := prosodySide(t, srv, "alice", cfg)
				bob, bobJID := prosodySide(t, srv, "bob", cfg)
				as, bs, ca, cb := session(t, alice, bob, bobJID.String(), ns)
				size := 1 << 20
				if os.Getenv("JINGLEKIT_BIG") == "1" {
					size = 256 << 20 // CI runs this without the race detector
				}
				transfer(t, ca, cb, randomBytes(t, size))
				for side, s := range map[string]*ice.Link{"alice": transportOf(t, as), "bob": transportOf(t, bs)} {
					pi, ok := s.SelectedPair()
					if !ok || pi.LocalType != ice.TypeRelay || pi.RelayProtocol != transport {
						t.Errorf("%s: selected pair %+v, want a relayed one over %s", side, pi, transport)
					}
					// Nothing in this side's offer or answer names a host
					// address: relayed candidates of coturn only, without
					// related addresses.
					local := localTransport(t, s)
					if len(local.Candidates) == 0 {
						t.Errorf("%s: no candidate in %v", side, s.Local())
					}
					for _, c := range local.Candidates {
						if c.Type != ice.TypeRelay || c.IP != turn.Host || c.RelAddr != "" || c.RelPort != "" {
							t.Errorf("%s: candidate %+v in relay-only mode", side, c)
						}
					}
				}
				if disco.Queries() == 0 {
					t.Error("no XEP-0215 query was sent")
				}
			})
		}
	}
}

// localTransport decodes the ICE-UDP part of a link's offer or answer.
func localTransport(t *testing.T, l *ice.Link) ice.Transport {
	t.Helper()
	el := l.Local()
	if el.Namespace() == ice.NSWebRTCDataChannel {
		var dt ice.DataChannelTransport
		if err := el.Decode(&dt); err != nil || dt.ICE == nil {
			t.Fatalf("%v %s", err, el)
		}
		return *dt.ICE
	}
	var tr ice.Transport
	if err := el.Decode(&tr); err != nil {
		t.Fatal(err)
	}
	return tr
}

// TestProsodyExternalServices checks what Prosody 0.12's mod_turn_external
// announces through XEP-0215, and that the credentials are those coturn
// accepts (the REST scheme with the shared secret).
func TestProsodyExternalServices(t *testing.T) {
	srv, turn := integration(t)
	bare, pass := srv.NewUser(t, "dave")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := xmppclient.Dial(ctx, xmppclient.Config{JID: jid.MustParse(bare + "/x"), Password: pass, Server: srv.C2SAddr, CAFile: srv.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	disco := &ice.Discovery{}
	servers, err := disco.Servers(ctx, c.Session())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{
		fmt.Sprintf("stun:%s:%d", turn.Host, turn.Port):               false,
		fmt.Sprintf("turn:%s:%d?transport=udp", turn.Host, turn.Port): false,
		fmt.Sprintf("turn:%s:%d?transport=tcp", turn.Host, turn.Port): false,
	}
	for _, s := range servers {
		if _, ok := want[s.URL]; !ok {
			continue
		}
		want[s.URL] = true
		if !strings.HasPrefix(s.URL, "turn:") {
			continue
		}
		// The REST scheme: username "expiry", password HMAC-SHA1 of it
		// under the secret coturn has.
		if s.Password != turn.Password(s.Username) {
			t.Errorf("%s: password %q is not the HMAC of %q", s.URL, s.Password, s.Username)
		}
		exp := time.Until(s.Expires)
		if exp < time.Duration(turnTTL-60)*time.Second || exp > time.Duration(turnTTL+60)*time.Second {
			t.Errorf("%s expires in %v, want about %ds", s.URL, exp, turnTTL)
		}
	}
	for url, seen := range want {
		if !seen {
			t.Errorf("Prosody did not announce %s (got %+v)", url, servers)
		}
	}
	// A second call is answered from the cache.
	if _, err := disco.Servers(ctx, c.Session()); err != nil || disco.Queries() != 1 {
		t.Errorf("second call: %v, %d queries", err, disco.Queries())
	}
}

// TestTrickle: with host, server-reflexive and relayed candidates (coturn
// is also the STUN server) and no wait for gathering, candidates reach the
// peer in the offer, the answer or transport-info, each exactly once; the
// initiator trickles only after session-accept, the responder only after
// accepting.
func TestTrickle(t *testing.T) {
	turn := coturn.Get(t)
	user, pass := turn.Credentials("", time.Hour)
	for _, ns := range []string{ice.NSWebRTCDataChannel, ice.NSICEUDP} {
		t.Run(ns, func(t *testing.T) {
			n := xmpptest.NewNetwork(t)
			var (
				mu       sync.Mutex
				accepted bool
				early    []string
				trickled int
				seen     = map[string]map[string]int{}
			)
			n.SetFilter(func(from, to jid.JID, st []byte) []byte {
				mu.Lock()
				defer mu.Unlock()
				s := string(st)
				if strings.Contains(s, "session-accept") {
					accepted = true
				}
				if strings.Contains(s, "transport-info") && strings.Contains(s, "<candidate") {
					trickled++
					if !accepted {
						early = append(early, from.String())
					}
				}
				for _, m := range candidateRE.FindAllString(s, -1) {
					if seen[from.String()] == nil {
						seen[from.String()] = map[string]int{}
					}
					seen[from.String()][candidateKey(m)]++
				}
				return st
			})
			cfg := loopbackConfig(t)
			cfg.GatherWait = time.Nanosecond
			cfg.DisableIPv6 = true
			cfg.Servers = []ice.Server{
				{URL: fmt.Sprintf("stun:%s", turn.Addr)},
				{URL: turn.URL("udp"), Username: user, Password: pass},
			}
			alice := newSide(t, n, xmpptest.Alice, cfg)
			bob := newSide(t, n, xmpptest.Bob, cfg)
			_, _, ca, cb := session(t, alice, bob, xmpptest.Bob, ns)
			transfer(t, ca, cb, randomBytes(t, 1<<20))
			// Wait for the relayed candidates, gathered last, to be sent.
			waitFor(t, func() bool {
				mu.Lock()
				defer mu.Unlock()
				for _, who := range []string{xmpptest.Alice, xmpptest.Bob} {
					types := map[string]bool{}
					for k := range seen[who] {
						types[strings.Fields(k)[0]] = true
					}
					if !types["host"] || !types["srflx"] || !types["relay"] {
						return false
					}
				}
				return true
			})
			mu.Lock()
			defer mu.Unlock()
			if trickled == 0 {
				t.Error("no candidate was trickled")
			}
			t.Logf("%d transport-info with candidates", trickled)
			if len(early) > 0 {
				t.Errorf("transport-info with candidates before session-accept from %v", early)
			}
			for who, cs := range seen {
				for k, n := range cs {
					if n != 1 {
						t.Errorf("%s sent candidate %s %d times", who, k, n)
					}
				}
			}
		})
	}
}

var candAttrRE = regexp.MustCompile(`(ip|port|type)=["']([^"']*)["']`)

// candidateKey identifies a candidate element by type, ip and port.
func candidateKey(el string) string {
	var typ, ip, port string
	for _, m := range candAttrRE.FindAllStringSubmatch(el, -1) {
		switch m[1] {
		case "ip":
			ip = m[2]
		case "port":
			port = m[2]
		case "type":
			typ = m[2]
		}
	}
	return typ + " " + ip + ":" + port
}
