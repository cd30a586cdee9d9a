package ice_test

import (
	"context"
	"encoding/xml"
	"slices"
	"sync"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/transports/ice"
	"github.com/jinglekit/jinglekit/xmpptest"
)

// fakeServer answers XEP-0215 queries on the in-memory network.
type fakeServer struct {
	mu          sync.Mutex
	services    func() []ice.Service
	credentials []ice.Service
	fail        bool
	queries     int
	credQueries int
}

func (f *fakeServer) handler() []mux.Option {
	reply := func(iq stanza.IQ, t xmlstream.TokenReadEncoder, payload any) error {
		var r xml.TokenReader
		if payload != nil {
			r = jingle.MustElement(payload).TokenReader()
		}
		resp := stanza.IQ{ID: iq.ID, To: iq.From, Type: stanza.ResultIQ}
		_, err := xmlstream.Copy(t, resp.Wrap(r))
		return err
	}
	return []mux.Option{
		mux.IQFunc(stanza.GetIQ, xml.Name{Space: ice.NSExtDisco, Local: "services"}, func(iq stanza.IQ, t xmlstream.TokenReadEncoder, _ *xml.StartElement) error {
			f.mu.Lock()
			f.queries++
			fail, svcs := f.fail, f.services()
			f.mu.Unlock()
			if fail {
				e := stanza.Error{Type: stanza.Cancel, Condition: stanza.Forbidden}
				_, err := xmlstream.Copy(t, stanza.IQ{ID: iq.ID, To: iq.From, Type: stanza.ErrorIQ}.Wrap(e.TokenReader()))
				return err
			}
			return reply(iq, t, ice.Services{Services: svcs})
		}),
		mux.IQFunc(stanza.GetIQ, xml.Name{Space: ice.NSExtDisco, Local: "credentials"}, func(iq stanza.IQ, t xmlstream.TokenReadEncoder, _ *xml.StartElement) error {
			f.mu.Lock()
			f.credQueries++
			creds := f.credentials
			f.mu.Unlock()
			return reply(iq, t, ice.ExtCredentials{Services: creds})
		}),
	}
}

const fakeServerJID = "services@example.net/s"

func discoveryPair(t *testing.T, f *fakeServer) jingle.IQSender {
	t.Helper()
	n := xmpptest.NewNetwork(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := n.Client(ctx, jid.MustParse(fakeServerJID), mux.New(stanza.NSClient, f.handler()...)); err != nil {
		t.Fatal(err)
	}
	xs, err := n.Client(ctx, jid.MustParse(xmpptest.Alice), mux.New(stanza.NSClient))
	if err != nil {
		t.Fatal(err)
	}
	return xs
}

func urls(ss []ice.Server) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.URL)
	}
	slices.Sort(out)
	return out
}

// TestDiscovery: services become STUN/TURN URIs (others are skipped), the
// answer is cached until shortly before the credentials expire, restricted
// services get their credentials asked for, errors are reported.
func TestDiscovery(t *testing.T) {
	ctx := tctx(t)
	var expires time.Time
	f := &fakeServer{services: func() []ice.Service {
		return []ice.Service{
			{Type: "stun", Host: "192.0.2.1", Port: "3478", Transport: "udp"},
			{Type: "turn", Host: "turn.example.net", Port: "3478", Transport: "udp", Username: "u", Password: "p",
				Expires: expires.UTC().Format(time.RFC3339)},
			{Type: "turn", Host: "2001:db8::1", Port: "3478", Transport: "tcp", Username: "u", Password: "p"},
			{Type: "turns", Host: "turn.example.net", Port: "5349", Transport: "tcp", Username: "u", Password: "p"},
			{Type: "turn", Host: "restricted.example.net", Transport: "udp", Restricted: "1"},
			{Type: "ftp", Host: "ftp.example.net", Port: "21", Username: "guest", Password: "guest"},
			{Type: "turn", Host: "bad.example.net", Port: "99999", Username: "u", Password: "p"},
			{Type: "turn", Host: "nocreds.example.net", Port: "3478"},
			{Type: "stun", Host: "evil?x=1", Port: "3478"},
		}
	}, credentials: []ice.Service{{Type: "turn", Host: "restricted.example.net", Username: "ru", Password: "rp"}}}
	s := discoveryPair(t, f)
	f.mu.Lock()
	expires = time.Now().Add(4 * time.Second)
	f.mu.Unlock()
	d := &ice.Discovery{Server: jid.MustParse(fakeServerJID)}
	got, err := d.Servers(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"stun:192.0.2.1:3478",
		"turn:[2001:db8::1]:3478?transport=tcp",
		"turn:restricted.example.net:3478?transport=udp",
		"turn:turn.example.net:3478?transport=udp",
		"turns:turn.example.net:5349?transport=tcp",
	}
	if !slices.Equal(urls(got), want) {
		t.Fatalf("servers %v, want %v", urls(got), want)
	}
	for _, srv := range got {
		if srv.URL == "turn:restricted.example.net:3478?transport=udp" && (srv.Username != "ru" || srv.Password != "rp") {
			t.Errorf("restricted service without its credentials: %+v", srv)
		}
		if srv.URL == "turn:turn.example.net:3478?transport=udp" && !srv.Expires.Equal(expires.Truncate(time.Second)) {
			t.Errorf("expiry %v, want %v", srv.Expires, expires)
		}
	}
	if f.credQueries != 1 {
		t.Errorf("%d credential queries, want 1", f.credQueries)
	}
	// Cached: the credentials are valid for 4s, renewed at half-life.
	if _, err := d.Servers(ctx, s); err != nil || d.Queries() != 1 {
		t.Fatalf("second call: %v, %d queries", err, d.Queries())
	}
	// Past the half of their lifetime, the credentials are renewed.
	time.Sleep(time.Until(expires.Add(-2*time.Second)) + 500*time.Millisecond)
	f.mu.Lock()
	expires = time.Now().Add(time.Hour)
	f.mu.Unlock()
	if _, err := d.Servers(ctx, s); err != nil || d.Queries() != 2 {
		t.Fatalf("after half the lifetime: %v, %d queries, want 2", err, d.Queries())
	}
	// An error answer is an error; nothing is cached from it.
	f.mu.Lock()
	f.fail = true
	f.mu.Unlock()
	d2 := &ice.Discovery{Server: jid.MustParse(fakeServerJID)}
	if _, err := d2.Servers(ctx, s); err == nil {
		t.Fatal("error answer accepted")
	}
}
