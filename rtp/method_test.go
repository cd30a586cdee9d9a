package rtp_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/rtp"
	"github.com/jinglekit/jinglekit/transports/ice"
)

// TestMethodCoexists: the RTP handler's ICE-UDP method and the XEP-0343
// data channel method of transports/ice register on one Manager without a
// duplicate, and both are advertised.
func TestMethodCoexists(t *testing.T) {
	m := &jingle.Manager{}
	h := &rtp.Handler{}
	if err := h.Register(m); err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterTransport(&ice.Method{Dialect: ice.DialectXEP0343}); err != nil {
		t.Fatalf("XEP-0343 next to RTP: %v", err)
	}
	if err := m.RegisterTransport(&ice.Method{Dialect: ice.DialectXEP0343}); !errors.Is(err, jingle.ErrDuplicate) {
		t.Errorf("a second XEP-0343 method: %v", err)
	}
	f := m.Features()
	for _, want := range []string{ice.NSICEUDP, ice.NSDTLS, ice.NSDTLSSCTP, rtp.NS} {
		if !slices.Contains(f, want) {
			t.Errorf("features %v lack %s", f, want)
		}
	}
}

// TestMethodLimits: the handler's method refuses a local offer outside its
// calls and an offer with too many candidates.
func TestMethodLimits(t *testing.T) {
	ctx := context.Background()
	h := &rtp.Handler{}
	ms := h.TransportMethods()
	if len(ms) != 1 || ms[0].Namespace() != ice.NSICEUDP {
		t.Fatalf("methods %v", ms)
	}
	m := ms[0]
	if _, err := m.NewTransport(ctx, jingle.TransportParams{SID: "nope"}); !errors.Is(err, rtp.ErrNotRTP) {
		t.Errorf("local offer outside a call: %v", err)
	}
	plain := jingle.MustElement(ice.Transport{Ufrag: "u", Pwd: "p"})
	tr, err := m.NewTransport(ctx, jingle.TransportParams{Offer: &plain})
	if err != nil {
		t.Fatalf("RTP offer: %v", err)
	}
	_ = tr.Close()
	many := ice.Transport{Ufrag: "u", Pwd: "p"}
	for range 70 {
		many.Candidates = append(many.Candidates, ice.Candidate{Component: "1", Foundation: "1", IP: "10.0.0.1", Port: "1", Priority: "1", Protocol: "udp", Type: "host"})
	}
	el := jingle.MustElement(many)
	if _, err := m.NewTransport(ctx, jingle.TransportParams{Offer: &el}); err == nil {
		t.Error("70 candidates accepted")
	}
}
