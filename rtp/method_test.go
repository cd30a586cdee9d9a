package rtp_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/rtp"
	"github.com/jinglekit/jinglekit/transports/ice"
)

// fakeDC stands for transports/ice's XEP-0343 data channel method.
type fakeDC struct{ calls int }

var errFake = errors.New("fake data channel transport")

func (f *fakeDC) Namespace() string          { return ice.NSICEUDP }
func (f *fakeDC) Kind() jingle.TransportKind { return jingle.Stream }
func (f *fakeDC) NewTransport(context.Context, jingle.TransportParams) (jingle.Transport, error) {
	f.calls++
	return nil, errFake
}
func (f *fakeDC) Features() []string { return []string{ice.NSDTLSSCTP} }

// TestMethodDispatch: the ICE-UDP method hands data channel offers (with
// <sctpmap/>) and local offers outside a call to the data channel method,
// and keeps RTP offers.
func TestMethodDispatch(t *testing.T) {
	ctx := context.Background()
	dc := &fakeDC{}
	m := &rtp.Method{DataChannels: dc}
	withSCTP := jingle.MustElement(ice.Transport{Ufrag: "u", Pwd: "p", SCTPMap: &ice.SCTPMap{Number: "5000", Protocol: "webrtc-datachannel"}})
	plain := jingle.MustElement(ice.Transport{Ufrag: "u", Pwd: "p"})
	if _, err := m.NewTransport(ctx, jingle.TransportParams{Offer: &withSCTP}); !errors.Is(err, errFake) || dc.calls != 1 {
		t.Errorf("data channel offer: %v (%d calls)", err, dc.calls)
	}
	if _, err := m.NewTransport(ctx, jingle.TransportParams{}); !errors.Is(err, errFake) || dc.calls != 2 {
		t.Errorf("local offer outside a call: %v (%d calls)", err, dc.calls)
	}
	tr, err := m.NewTransport(ctx, jingle.TransportParams{Offer: &plain})
	if err != nil || dc.calls != 2 {
		t.Fatalf("RTP offer: %v (%d calls)", err, dc.calls)
	}
	_ = tr.Close()
	if f := m.Features(); len(f) != 2 {
		t.Errorf("features %v", f)
	}
	alone := &rtp.Method{}
	if _, err := alone.NewTransport(ctx, jingle.TransportParams{Offer: &withSCTP}); !errors.Is(err, rtp.ErrNotRTP) {
		t.Errorf("without a data channel method: %v", err)
	}
	// Too many candidates in an offer are refused.
	many := ice.Transport{Ufrag: "u", Pwd: "p"}
	for range 70 {
		many.Candidates = append(many.Candidates, ice.Candidate{Component: "1", Foundation: "1", IP: "10.0.0.1", Port: "1", Priority: "1", Protocol: "udp", Type: "host"})
	}
	el := jingle.MustElement(many)
	if _, err := alone.NewTransport(ctx, jingle.TransportParams{Offer: &el}); err == nil {
		t.Error("70 candidates accepted")
	}
}
