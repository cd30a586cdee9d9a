package jingle_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jingletest"
	"github.com/jinglekit/jinglekit/xmpptest"
)

// TestHostileInput sends what a broken or hostile peer might, and checks
// each gets exactly the XEP-0166 error and changes nothing.
func TestHostileInput(t *testing.T) {
	const (
		bobJID   = "bob@example.net/raw"
		carolJID = "carol@example.net/c"
		maxBytes = 8192
	)
	n := xmpptest.NewNetwork(t)
	alice := newSide(t, n, xmpptest.Alice, jingletest.NewExchange(), jingle.Limits{MaxStanzaBytes: maxBytes, MaxSessionsPerPeer: 3})
	bob := rawClient(t, n, bobJID)
	carol := rawClient(t, n, carolJID)
	peers := map[string]*rawPeer{"bob": bob, "carol": carol}

	content := func(attrs string) string {
		return `<content ` + attrs + `><description xmlns='` + jingletest.AppNS + `'/><transport xmlns='` + jingletest.PipeNS + `'/></content>`
	}
	accept := `<jingle xmlns='urn:xmpp:jingle:1' action='session-accept' sid='%[1]s'>` + content(`creator='initiator' name='c1'`) + `</jingle>`

	type step struct {
		from    string // "bob" or "carol"
		payload string // %[1]s is alice's sid
	}
	cases := []struct {
		name     string
		before   []step // must succeed
		send     step
		cond     stanza.Condition
		jcond    jingle.ErrorCondition
		accepted bool // the session is active afterwards
	}{
		{name: "unknown sid", send: step{"bob", `<jingle xmlns='urn:xmpp:jingle:1' action='session-info' sid='no-such-sid'/>`},
			cond: stanza.ItemNotFound, jcond: jingle.ErrUnknownSession},
		{name: "session-accept from a third JID", send: step{"carol", accept},
			cond: stanza.ItemNotFound, jcond: jingle.ErrUnknownSession},
		{name: "session-accept twice", before: []step{{"bob", accept}}, send: step{"bob", accept},
			cond: stanza.UnexpectedRequest, jcond: jingle.ErrOutOfOrder, accepted: true},
		{name: "transport-info before initiate", send: step{"bob", `<jingle xmlns='urn:xmpp:jingle:1' action='transport-info' sid='never-initiated'>` + content(`creator='initiator' name='c1'`) + `</jingle>`},
			cond: stanza.ItemNotFound, jcond: jingle.ErrUnknownSession},
		{name: "session-initiate with an existing sid", send: step{"bob", `<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='%[1]s'>` + content(`creator='initiator' name='c1'`) + `</jingle>`},
			cond: stanza.UnexpectedRequest, jcond: jingle.ErrOutOfOrder},
		{name: "content-add with an existing name", before: []step{{"bob", accept}},
			send: step{"bob", `<jingle xmlns='urn:xmpp:jingle:1' action='content-add' sid='%[1]s'>` + content(`creator='initiator' name='c1'`) + `</jingle>`},
			cond: stanza.BadRequest, accepted: true},
		{name: "content-add with the other party's creator", before: []step{{"bob", accept}},
			send: step{"bob", `<jingle xmlns='urn:xmpp:jingle:1' action='content-add' sid='%[1]s'>` + content(`creator='initiator' name='c9'`) + `</jingle>`},
			cond: stanza.BadRequest, accepted: true},
		{name: "missing sid", send: step{"bob", `<jingle xmlns='urn:xmpp:jingle:1' action='session-info'/>`}, cond: stanza.BadRequest},
		{name: "missing action", send: step{"bob", `<jingle xmlns='urn:xmpp:jingle:1' sid='%[1]s'/>`}, cond: stanza.BadRequest},
		{name: "missing creator", send: step{"bob", `<jingle xmlns='urn:xmpp:jingle:1' action='transport-info' sid='%[1]s'>` + content(`name='c1'`) + `</jingle>`}, cond: stanza.BadRequest},
		{name: "bad action", send: step{"bob", `<jingle xmlns='urn:xmpp:jingle:1' action='session-explode' sid='%[1]s'/>`}, cond: stanza.BadRequest},
		{name: "bad creator", send: step{"bob", `<jingle xmlns='urn:xmpp:jingle:1' action='transport-info' sid='%[1]s'>` + content(`creator='nobody' name='c1'`) + `</jingle>`}, cond: stanza.BadRequest},
		{name: "bad senders", before: []step{{"bob", accept}}, send: step{"bob", `<jingle xmlns='urn:xmpp:jingle:1' action='content-modify' sid='%[1]s'>` + content(`creator='initiator' name='c1' senders='everybody'`) + `</jingle>`},
			cond: stanza.BadRequest, accepted: true},
		{name: "bad reason", send: step{"bob", `<jingle xmlns='urn:xmpp:jingle:1' action='session-terminate' sid='%[1]s'><reason><fed-up/></reason></jingle>`}, cond: stanza.BadRequest},
		{name: "content-modify without senders", before: []step{{"bob", accept}}, send: step{"bob", `<jingle xmlns='urn:xmpp:jingle:1' action='content-modify' sid='%[1]s'>` + content(`creator='initiator' name='c1'`) + `</jingle>`},
			cond: stanza.BadRequest, accepted: true},
		{name: "unknown content", send: step{"bob", `<jingle xmlns='urn:xmpp:jingle:1' action='transport-info' sid='%[1]s'>` + content(`creator='initiator' name='nope'`) + `</jingle>`}, cond: stanza.BadRequest},
		{name: "transport-accept without transport-replace", send: step{"bob", `<jingle xmlns='urn:xmpp:jingle:1' action='transport-accept' sid='%[1]s'>` + content(`creator='initiator' name='c1'`) + `</jingle>`},
			cond: stanza.UnexpectedRequest, jcond: jingle.ErrOutOfOrder},
		{name: "session-info nobody understands", send: step{"bob", `<jingle xmlns='urn:xmpp:jingle:1' action='session-info' sid='%[1]s'><mystery xmlns='urn:example:x'/></jingle>`},
			cond: stanza.FeatureNotImplemented, jcond: jingle.ErrUnsupportedInfo},
		{name: "stanza over the size limit", send: step{"bob", `<jingle xmlns='urn:xmpp:jingle:1' action='session-info' sid='%[1]s'><nudge xmlns='urn:jinglekit:test:info:0'>` + strings.Repeat("x", maxBytes) + `</nudge></jingle>`},
			cond: stanza.PolicyViolation},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := tctx(t)
			as, err := alice.m.Initiate(ctx, jid.MustParse(bobJID), offer("c1"))
			if err != nil {
				t.Fatal(err)
			}
			defer as.Terminate(context.Background(), jingle.Reason{Condition: jingle.ReasonSuccess})
			for _, st := range tc.before {
				if err := peers[st.from].send(ctx, xmpptest.Alice, fmt.Sprintf(st.payload, as.SID())); err != nil {
					t.Fatalf("setup step refused: %v", err)
				}
				if _, err := as.NextEvent(ctx); err != nil {
					t.Fatal(err)
				}
			}
			stateBefore, contentsBefore := as.State(), len(as.Contents())

			err = peers[tc.send.from].send(ctx, xmpptest.Alice, fmt.Sprintf(tc.send.payload, as.SID()))
			var je *jingle.Error
			if !errors.As(err, &je) {
				t.Fatalf("got %v, want an error IQ", err)
			}
			if je.Condition != tc.cond || je.Jingle != tc.jcond {
				t.Fatalf("got %s/%s (%v), want %s/%s", je.Condition, je.Jingle, je, tc.cond, tc.jcond)
			}
			// Nothing changed: same state and contents, no event.
			if got := as.State(); got != stateBefore {
				t.Fatalf("state changed to %s", got)
			}
			if tc.accepted && stateBefore != jingle.StateActive {
				t.Fatalf("setup left the session %s", stateBefore)
			}
			if got := len(as.Contents()); got != contentsBefore {
				t.Fatalf("contents changed: %d → %d", contentsBefore, got)
			}
			short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			if ev, err := as.NextEvent(short); err == nil {
				t.Fatalf("refused input produced event %s", ev.Action)
			}
		})
	}

	t.Run("more sessions than the per-peer limit", func(t *testing.T) {
		ctx := tctx(t)
		for i := 0; i < 4; i++ {
			err := bob.send(ctx, xmpptest.Alice, fmt.Sprintf(`<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='flood-%d' initiator='%s'>%s</jingle>`,
				i, bobJID, content(`creator='initiator' name='c1'`)))
			if i < 3 && err != nil {
				t.Fatalf("session %d refused: %v", i, err)
			}
			if i == 3 && !errors.Is(err, stanza.Error{Condition: stanza.ResourceConstraint}) {
				t.Fatalf("session over the limit: %v, want resource-constraint", err)
			}
		}
		if got := len(alice.m.Sessions()); got != 3 {
			t.Fatalf("alice has %d sessions, want 3", got)
		}
		for i := 0; i < 3; i++ {
			s := <-alice.app.Sessions
			_ = s.Terminate(ctx, jingle.Reason{Condition: jingle.ReasonBusy})
		}
	})

	t.Run("initiator not the sender", func(t *testing.T) {
		err := carol.send(tctx(t), xmpptest.Alice, `<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='spoof' initiator='bob@example.net/raw'>`+content(`creator='initiator' name='c1'`)+`</jingle>`)
		if !errors.Is(err, stanza.Error{Condition: stanza.NotAcceptable}) {
			t.Fatalf("got %v, want not-acceptable", err)
		}
	})
}

// TestTieBreakInitiate crosses two session-initiates for the same
// application: the lower sid wins and the other side answers conflict +
// tie-break (XEP-0166 §7.2.16).
func TestTieBreakInitiate(t *testing.T) {
	for _, tc := range []struct {
		name     string
		bobSID   string // base32 sids are [A-Z2-7]: "0…" sorts before, "z…" after
		aliceWin bool
	}{
		{"alice's sid is lower", "zzzzzzzz", true},
		{"bob's sid is lower", "00000000", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := xmpptest.NewNetwork(t)
			alice := newSide(t, n, xmpptest.Alice, jingletest.NewExchange(), jingle.Limits{})
			bob := rawClient(t, n, "bob@example.net/raw")
			ctx := tctx(t)

			// Hold back bob's acknowledgement of alice's initiate, so that
			// it is still pending when bob's own initiate crosses it.
			idRE := regexp.MustCompile(`id=["']([^"']+)["']`)
			var mu sync.Mutex
			var initID string
			n.SetFilter(func(from, to jid.JID, st []byte) []byte {
				mu.Lock()
				defer mu.Unlock()
				if from.String() == xmpptest.Alice && bytes.Contains(st, []byte(`action="session-initiate"`)) {
					initID = string(idRE.FindSubmatch(st)[1])
				}
				if from.String() == "bob@example.net/raw" && initID != "" && bytes.Contains(st, []byte(initID)) {
					return nil
				}
				return st
			})
			type result struct {
				s   *jingle.Session
				err error
			}
			res := make(chan result, 1)
			go func() {
				s, err := alice.m.Initiate(ctx, jid.MustParse("bob@example.net/raw"), offer("c1"))
				res <- result{s, err}
			}()
			bob.expect(jingle.ActionSessionInitiate).wait(t)

			err := bob.send(ctx, xmpptest.Alice, `<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='`+tc.bobSID+`' initiator='bob@example.net/raw'><content creator='initiator' name='c1'><description xmlns='`+jingletest.AppNS+`'/><transport xmlns='`+jingletest.PipeNS+`'/></content></jingle>`)
			if tc.aliceWin {
				if !errors.Is(err, jingle.ErrTieBreak) || !errors.Is(err, stanza.Error{Condition: stanza.Conflict}) {
					t.Fatalf("bob's crossing initiate: %v, want conflict + tie-break", err)
				}
				// bob yields: he acknowledges alice's session after all.
				mu.Lock()
				id := initID
				initID = ""
				mu.Unlock()
				if err := n.Inject(ctx, jid.MustParse(xmpptest.Alice), `<iq xmlns='jabber:client' type='result' id='`+id+`' from='bob@example.net/raw' to='`+xmpptest.Alice+`'></iq>`); err != nil {
					t.Fatal(err)
				}
				if r := <-res; r.err != nil {
					t.Fatalf("alice's initiate: %v", r.err)
				}
				if got := len(alice.m.Sessions()); got != 1 {
					t.Fatalf("alice has %d sessions, want only her own", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("bob's winning initiate refused: %v", err)
			}
			// alice takes bob's session; bob answers hers with the conflict.
			mu.Lock()
			id := initID
			mu.Unlock()
			if err := n.Inject(ctx, jid.MustParse(xmpptest.Alice), `<iq xmlns='jabber:client' type='error' id='`+id+`' from='bob@example.net/raw' to='`+xmpptest.Alice+`'><error type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><tie-break xmlns='urn:xmpp:jingle:errors:1'/></error></iq>`); err != nil {
				t.Fatal(err)
			}
			if r := <-res; !errors.Is(r.err, jingle.ErrTieBreak) {
				t.Fatalf("alice's losing initiate: %v, want tie-break", r.err)
			}
			s := incoming(t, alice)
			if s.SID() != tc.bobSID {
				t.Fatalf("alice handles session %s, want bob's %s", s.SID(), tc.bobSID)
			}
			if got := len(alice.m.Sessions()); got != 1 {
				t.Fatalf("alice has %d sessions, want only bob's", got)
			}
		})
	}
}

// TestTieBreakTransportReplace crosses two transport-replaces: the
// initiator's wins (XEP-0166 §7.2.16, existing session).
func TestTieBreakTransportReplace(t *testing.T) {
	_, alice, bob := newPair(t, jingle.Limits{})
	ctx := tctx(t)
	as, bs := acceptedPair(t, alice, bob, offer("c1"))
	errs := make(chan error, 2)
	go func() { errs <- as.ReplaceTransport(ctx, "c1", pipe2NS) }()
	go func() { errs <- bs.ReplaceTransport(ctx, "c1", jingletest.BrokenNS) }()
	e1, e2 := <-errs, <-errs
	var aliceErr, bobErr error
	// Exactly one can lose; whichever arrives second may also just be a
	// later replace. The initiator's replacement must be in force at the end.
	for _, e := range []error{e1, e2} {
		if errors.Is(e, jingle.ErrTieBreak) {
			bobErr = e
		} else if e != nil {
			aliceErr = e
		}
	}
	if aliceErr != nil {
		t.Fatalf("the initiator's transport-replace failed: %v", aliceErr)
	}
	_ = bobErr
	deadline := time.Now().Add(10 * time.Second)
	for {
		a, _ := as.TransportNamespace("c1")
		b, _ := bs.TransportNamespace("c1")
		if a == b && a != jingletest.PipeNS {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice uses %s, bob %s (alice's replace: %v, bob's: %v)", a, b, e1, e2)
		}
		time.Sleep(5 * time.Millisecond)
	}
	a, _ := as.TransportNamespace("c1")
	if a != pipe2NS && bobErr != nil {
		t.Fatalf("both use %s, but bob's replace lost", a)
	}
}
