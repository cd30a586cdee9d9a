package xmppclient

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/xmpptest"
)

var (
	aliceJID = jid.MustParse(xmpptest.Alice)
	bobJID   = jid.MustParse(xmpptest.Bob)
	carolJID = jid.MustParse("carol@" + xmpptest.Domain + "/c")
	malJID   = jid.MustParse("mallory@" + xmpptest.Domain + "/m")
)

func testCaps(extra ...string) Caps {
	return Caps{
		Identities: []Identity{{Category: "client", Type: "bot", Name: "jinglekit test"}},
		Features:   append([]string{"urn:xmpp:jingle:1", "urn:xmpp:jingle:apps:file-transfer:5"}, extra...),
	}
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// iqCounter counts the get IQs that reach the handler it wraps.
type iqCounter struct {
	h    xmpp.Handler
	gets atomic.Int32
}

func (c *iqCounter) HandleXMPP(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	if start.Name.Local == "iq" {
		for _, a := range start.Attr {
			if a.Name.Local == "type" && a.Value == "get" {
				c.gets.Add(1)
			}
		}
	}
	return c.h.HandleXMPP(t, start)
}

// capsPeer returns a handler answering disco#info for c and counting the
// queries it gets.
func capsPeer(c Caps) *iqCounter {
	return &iqCounter{h: mux.New(stanza.NSClient, HandleDisco(c))}
}

// testLogger returns a logger writing (at debug level) to a buffer the test
// can inspect.
func testLogger(t *testing.T) (*slog.Logger, *syncBuffer) {
	t.Helper()
	buf := &syncBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// knows reports the ver d recorded for peer.
func (d *Disco) knows(peer jid.JID) (string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	pc, ok := d.peers.get(peer.String())
	return pc.ver, ok
}

func (d *Disco) cached(ver string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.vers.get(ver)
	return ok
}

// waitFor polls cond until it holds or ctx ends.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func TestDiscoResponder(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	caps := testCaps()
	alice, bob := xmpptest.NewPair(t, mux.New(stanza.NSClient, HandleDisco(caps)), nil)
	_ = alice

	info, err := GetInfo(ctx, bob, aliceJID, "")
	if err != nil {
		t.Fatal(err)
	}
	want := caps.Info()
	if !slices.Equal(info.Features, want.Features) || !slices.Equal(info.Identities, want.Identities) || info.Node != "" {
		t.Errorf("disco#info = %+v, want %+v", info, want)
	}
	if ver, err := ComputeVer(info); err != nil || ver != caps.Ver() {
		t.Errorf("ver of the answer = %q, %v; advertised %q", ver, err, caps.Ver())
	}

	// The caps node is answered the same way and echoed.
	info, err = GetInfo(ctx, bob, aliceJID, caps.CapsNode())
	if err != nil {
		t.Fatal(err)
	}
	if info.Node != caps.CapsNode() || !slices.Equal(info.Features, want.Features) {
		t.Errorf("caps node answer = %+v", info)
	}

	// Other nodes, including an outdated ver, do not exist.
	for _, node := range []string{"urn:other", DefaultNode + "#bogus", DefaultNode} {
		_, err = GetInfo(ctx, bob, aliceJID, node)
		if !errors.Is(err, stanza.Error{Condition: stanza.ItemNotFound}) {
			t.Errorf("node %q: err = %v, want item-not-found", node, err)
		}
	}
}

func TestGetInfoServiceUnavailable(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	_, bob := xmpptest.NewPair(t, nil, nil) // alice answers nothing: mellium replies service-unavailable
	_, err := GetInfo(ctx, bob, aliceJID, "")
	if !errors.Is(err, stanza.Error{Condition: stanza.ServiceUnavailable}) {
		t.Fatalf("err = %v, want service-unavailable", err)
	}
}

// TestGetInfoChecksSender rewrites the from of alice's answer: mellium
// matches IQ responses by id only, GetInfo must not.
func TestGetInfoChecksSender(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	n := xmpptest.NewNetwork(t)
	if _, err := n.Client(ctx, aliceJID, mux.New(stanza.NSClient, HandleDisco(testCaps()))); err != nil {
		t.Fatal(err)
	}
	bob, err := n.Client(ctx, bobJID, nil)
	if err != nil {
		t.Fatal(err)
	}
	fromAttr := regexp.MustCompile(`from=(["'])[^"']*(["'])`)
	n.SetFilter(func(from, to jid.JID, b []byte) []byte {
		if from.Equal(aliceJID) && to.Equal(bobJID) && bytes.Contains(b, []byte("result")) {
			return fromAttr.ReplaceAll(b, []byte(`from=${1}`+carolJID.String()+`${2}`))
		}
		return b
	})
	if _, err := GetInfo(ctx, bob, aliceJID, ""); !errors.Is(err, ErrUnexpectedSender) {
		t.Fatalf("err = %v, want ErrUnexpectedSender", err)
	}
}

// discoNet connects bob with a Disco feeding on his presence, and returns a
// function to connect more peers.
func discoNet(t *testing.T, d *Disco) (n *xmpptest.Network, bob *xmpp.Session, connect func(j jid.JID, h xmpp.Handler) *xmpp.Session) {
	t.Helper()
	ctx := testCtx(t, 10*time.Second)
	n = xmpptest.NewNetwork(t)
	bob, err := n.Client(ctx, bobJID, mux.New(stanza.NSClient, d.HandlePresence()))
	if err != nil {
		t.Fatal(err)
	}
	return n, bob, func(j jid.JID, h xmpp.Handler) *xmpp.Session {
		t.Helper()
		s, err := n.Client(ctx, j, h)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

func TestDiscoCachesVerifiedCaps(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	d := NewDisco(DiscoConfig{})
	_, bob, connect := discoNet(t, d)
	caps := testCaps()
	aliceH, carolH := capsPeer(caps), capsPeer(caps)
	alice := connect(aliceJID, aliceH)
	carol := connect(carolJID, carolH)

	if err := SendCapsPresence(ctx, alice, bobJID, caps); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "bob to learn alice's caps", func() bool { v, ok := d.knows(aliceJID); return ok && v == caps.Ver() })

	for i := range 3 {
		info, err := d.Info(ctx, bob, aliceJID)
		if err != nil {
			t.Fatal(err)
		}
		if !info.HasFeature("urn:xmpp:jingle:1") {
			t.Fatalf("query %d: features %q", i, info.Features)
		}
		info.Features[0] = "mutated" // must not reach the cache
	}
	if ok, err := d.HasFeature(ctx, bob, aliceJID, "urn:xmpp:jingle:apps:file-transfer:5"); !ok || err != nil {
		t.Errorf("HasFeature(file-transfer) = %v, %v", ok, err)
	}
	if ok, err := d.HasFeature(ctx, bob, aliceJID, "urn:nope"); ok || err != nil {
		t.Errorf("HasFeature(urn:nope) = %v, %v", ok, err)
	}
	if got := aliceH.gets.Load(); got != 1 {
		t.Errorf("alice got %d disco queries, want 1 (then cache)", got)
	}

	// Another peer advertising the same ver is served from the cache.
	if err := SendCapsPresence(ctx, carol, bobJID, caps); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "bob to learn carol's caps", func() bool { _, ok := d.knows(carolJID); return ok })
	info, err := d.Info(ctx, bob, carolJID)
	if err != nil || !slices.Equal(info.Features, caps.Info().Features) {
		t.Fatalf("carol: %+v, %v", info, err)
	}
	if got := carolH.gets.Load(); got != 0 {
		t.Errorf("carol got %d disco queries, want 0", got)
	}
}

func TestDiscoWithoutCapsIsUncached(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	d := NewDisco(DiscoConfig{})
	_, bob, connect := discoNet(t, d)
	aliceH := capsPeer(testCaps())
	connect(aliceJID, aliceH)
	for range 2 {
		if _, err := d.Info(ctx, bob, aliceJID); err != nil {
			t.Fatal(err)
		}
	}
	if got := aliceH.gets.Load(); got != 2 {
		t.Errorf("alice got %d disco queries, want 2", got)
	}
}

// liar answers every disco#info query with a fixed feature set whatever
// the node, and counts the queries.
func liar(features ...string) *iqCounter {
	h := mux.IQFunc(stanza.GetIQ, xml.Name{Space: NSDiscoInfo, Local: "query"},
		func(iq stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
			info := Info{Identities: []Identity{{Category: "client", Type: "pc"}}, Features: features}
			for _, a := range start.Attr {
				if a.Name.Local == "node" {
					info.Node = a.Value
				}
			}
			_, err := xmlstream.Copy(t, iq.Result(info.TokenReader()))
			return err
		})
	return &iqCounter{h: mux.New(stanza.NSClient, h)}
}

func TestDiscoRefusesCachePoisoning(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	logger, logs := testLogger(t)
	d := NewDisco(DiscoConfig{Logger: logger})
	_, bob, connect := discoNet(t, d)
	caps := testCaps()
	aliceH := capsPeer(caps)
	malH := liar(NSDiscoInfo, "urn:evil")
	alice := connect(aliceJID, aliceH)
	mallory := connect(malJID, malH)

	// Mallory advertises alice's ver but answers with other features.
	if err := SendCapsPresence(ctx, mallory, bobJID, caps); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "bob to learn mallory's caps", func() bool { _, ok := d.knows(malJID); return ok })
	for range 2 {
		info, err := d.Info(ctx, bob, malJID)
		if err != nil {
			t.Fatal(err)
		}
		if !info.HasFeature("urn:evil") {
			t.Fatalf("mallory's answer = %q, want what mallory said", info.Features)
		}
	}
	if got := malH.gets.Load(); got != 2 {
		t.Errorf("mallory got %d queries, want 2 (a lying answer is never cached)", got)
	}
	if d.cached(caps.Ver()) {
		t.Fatal("mallory's answer was cached under alice's ver")
	}
	if !strings.Contains(logs.String(), "does not match its caps ver") {
		t.Errorf("no warning logged about mallory; log:\n%s", logs)
	}

	// Alice, who really has that ver, gets her own features, and they are
	// cached.
	if err := SendCapsPresence(ctx, alice, bobJID, caps); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "bob to learn alice's caps", func() bool { _, ok := d.knows(aliceJID); return ok })
	for range 2 {
		info, err := d.Info(ctx, bob, aliceJID)
		if err != nil {
			t.Fatal(err)
		}
		if info.HasFeature("urn:evil") || !slices.Equal(info.Features, caps.Info().Features) {
			t.Fatalf("alice's features = %q", info.Features)
		}
	}
	if got := aliceH.gets.Load(); got != 1 {
		t.Errorf("alice got %d queries, want 1", got)
	}
}

// TestDiscoSpoofedCaps injects presence claiming to be from alice with a ver
// she does not have: her responder refuses the unknown node, Disco falls back
// to a plain query and caches nothing.
func TestDiscoSpoofedCaps(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	logger, _ := testLogger(t)
	d := NewDisco(DiscoConfig{Logger: logger})
	n, bob, connect := discoNet(t, d)
	caps := testCaps()
	aliceH := capsPeer(caps)
	connect(aliceJID, aliceH)

	const bogus = "AAAAAAAAAAAAAAAAAAAAAAAAAAA="
	err := n.Inject(ctx, bobJID, `<presence from='`+xmpptest.Alice+`'><c xmlns='`+NSCaps+`' hash='sha-1' node='`+DefaultNode+`' ver='`+bogus+`'/></presence>`)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "bob to record the spoofed caps", func() bool { v, _ := d.knows(aliceJID); return v == bogus })
	info, err := d.Info(ctx, bob, aliceJID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(info.Features, caps.Info().Features) {
		t.Errorf("features = %q", info.Features)
	}
	if d.cached(bogus) || d.cached(caps.Ver()) {
		t.Error("an answer was cached although it was not for the advertised ver")
	}
	if got := aliceH.gets.Load(); got != 2 {
		t.Errorf("alice got %d queries, want 2 (caps node, then plain)", got)
	}
}

func TestDiscoPresenceHandling(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	d := NewDisco(DiscoConfig{})
	n, bob, connect := discoNet(t, d)
	caps := testCaps()
	alice := connect(aliceJID, capsPeer(caps))

	if err := SendCapsPresence(ctx, alice, bobJID, caps); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "caps", func() bool { _, ok := d.knows(aliceJID); return ok })

	// Unavailable presence forgets the peer.
	if err := alice.Send(ctx, stanza.Presence{To: bobJID, Type: stanza.UnavailablePresence}.Wrap(nil)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "unavailable", func() bool { _, ok := d.knows(aliceJID); return !ok })

	// Caps with another hash, legacy caps without hash and caps with an empty
	// ver are not recorded, and none of them hurts bob's stream.
	for _, c := range []string{
		`<c xmlns='` + NSCaps + `' hash='sha-256' node='n' ver='x'/>`,
		`<c xmlns='` + NSCaps + `' node='n' ver='1.0' ext='a b'/>`,
		`<c xmlns='` + NSCaps + `' hash='sha-1' node='n' ver=''/>`,
		`<c xmlns='` + NSCaps + `' hash='sha-1' node='n' ver='x'><junk xmlns='urn:junk'>text</junk></c>`,
	} {
		if err := n.Inject(ctx, bobJID, `<presence from='`+xmpptest.Alice+`'>`+c+`</presence>`); err != nil {
			t.Fatal(err)
		}
	}
	// The last one is recorded (its content is ignored); the earlier ones
	// would have been seen before it since delivery is ordered.
	waitFor(t, ctx, "last caps", func() bool { v, _ := d.knows(aliceJID); return v == "x" })
	if err := n.Inject(ctx, bobJID, `<presence from='`+xmpptest.Alice+`'><c xmlns='`+NSCaps+`' hash='md5' node='n' ver='y'/></presence>`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "forgetting on unsupported hash", func() bool { _, ok := d.knows(aliceJID); return !ok })
	// Bob's stream is still fine.
	if _, err := GetInfo(ctx, bob, aliceJID, ""); err != nil {
		t.Fatalf("bob's session after odd presence: %v", err)
	}
}

func TestDiscoBounded(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	d := NewDisco(DiscoConfig{MaxVers: 1, MaxPeers: 2})
	_, bob, connect := discoNet(t, d)
	capsA, capsC := testCaps(), testCaps("urn:xmpp:jingle:transports:s5b:1")
	aliceH, carolH := capsPeer(capsA), capsPeer(capsC)
	alice := connect(aliceJID, aliceH)
	carol := connect(carolJID, carolH)
	for _, p := range []struct {
		s    *xmpp.Session
		caps Caps
		j    jid.JID
	}{{alice, capsA, aliceJID}, {carol, capsC, carolJID}} {
		if err := SendCapsPresence(ctx, p.s, bobJID, p.caps); err != nil {
			t.Fatal(err)
		}
		waitFor(t, ctx, "caps of "+p.j.String(), func() bool { _, ok := d.knows(p.j); return ok })
	}
	for _, j := range []jid.JID{aliceJID, carolJID, aliceJID} {
		if _, err := d.Info(ctx, bob, j); err != nil {
			t.Fatal(err)
		}
	}
	// One ver fits: alice's was evicted by carol's and had to be re-queried.
	if a, c := aliceH.gets.Load(), carolH.gets.Load(); a != 2 || c != 1 {
		t.Errorf("queries: alice %d, carol %d; want 2 and 1", a, c)
	}
	d.Observe(malJID, "sha-1", DefaultNode, "zzz")
	d.mu.Lock()
	peers, vers := d.peers.len(), d.vers.len()
	d.mu.Unlock()
	if peers != 2 || vers != 1 {
		t.Errorf("sizes: %d peers, %d vers; want 2 and 1", peers, vers)
	}
}
