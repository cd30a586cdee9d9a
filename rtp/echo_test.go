package rtp_test

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v3"

	"github.com/jinglekit/jinglekit/internal/testmedia"
	"github.com/jinglekit/jinglekit/jmi"
	"github.com/jinglekit/jinglekit/rtp"
	"github.com/jinglekit/jinglekit/xmpptest"
)

// echoCall: bob answers with echo; alice plays alice.ogg for 1.5 s,
// records what comes back, and hangs up. It returns alice's recorder.
func echoCall(t *testing.T, echo *rtp.Echo) *rtp.Recorder {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := xmpptest.NewNetwork(t)
	bob := newParty(t, n, xmpptest.Bob, func(p *party) {
		p.h.OnCall = func(ctx context.Context, c *rtp.Call) {
			if err := c.Accept(ctx, echo.Options()); err != nil {
				t.Error(err)
			}
		}
	})
	alice := newParty(t, n, xmpptest.Alice, nil)
	rec := rtp.NewRecorder(t.TempDir())
	src := oggSource(t, testmedia.AliceOgg())
	c, err := alice.h.Place(ctx, bob.addr, rtp.Options{Audio: src, OnTrack: rec.OnTrack})
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ctx, c, rtp.EventConnected)
	time.Sleep(1500 * time.Millisecond)
	if err := c.HangUp(ctx); err != nil {
		t.Fatal(err)
	}
	<-c.Done()
	return rec
}

// TestEcho: bob is an echo bot; alice plays alice.ogg and records what
// comes back, which must be her own Opus packets, in order.
func TestEcho(t *testing.T) {
	echo := rtp.NewEcho()
	rec := echoCall(t, echo)
	stats, err := rec.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != 1 {
		t.Fatalf("recorded %+v", stats)
	}
	got := oggPackets(t, stats[0].Path)
	sent := sourcePackets(t, testmedia.AliceOgg())
	m, gap := matchRun(t, got, sent)
	t.Logf("echoed %d packets; alice recorded %d, %d of them her own in order (longest gap %d)", echo.Echoed(rtp.MediaAudio), len(got), m, gap)
	if m < 50 || m < len(got)*9/10 {
		t.Errorf("%d of %d recorded packets match what alice sent", m, len(got))
	}
}

// TestEchoRecording: bob echoes and records at once (jinglectl answer
// --echo --record): alice still gets her own packets back, and bob's
// recording holds what alice sent.
func TestEchoRecording(t *testing.T) {
	echo := rtp.NewEcho()
	bobRec := rtp.NewRecorder(t.TempDir())
	echo.Record(bobRec)
	rec := echoCall(t, echo)
	sent := sourcePackets(t, testmedia.AliceOgg())
	for who, r := range map[string]*rtp.Recorder{"alice (the echo)": rec, "bob (the recording)": bobRec} {
		deadline := time.Now().Add(10 * time.Second)
		var stats []rtp.TrackStats
		var err error
		for {
			// bob's side ends when its call does, just after alice's.
			stats, err = r.Wait()
			if len(stats) > 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil || len(stats) != 1 {
			t.Fatalf("%s recorded %+v (%v)", who, stats, err)
		}
		got := oggPackets(t, stats[0].Path)
		m, _ := matchRun(t, got, sent)
		t.Logf("%s: %d packets recorded, %d of alice's in order", who, len(got), m)
		if m < 50 || m < len(got)*9/10 {
			t.Errorf("%s: %d of %d recorded packets match what alice sent", who, m, len(got))
		}
	}
}

// BenchmarkCallSetup measures the set-up of a call over the in-memory
// XMPP network and loopback UDP: from Place (the XEP-0353 propose) to the
// first RTP packet alice receives from bob (proceed, session-initiate,
// session-accept, ICE, DTLS-SRTP in between).
func BenchmarkCallSetup(b *testing.B) {
	n := xmpptest.NewNetwork(b)
	bob := newParty(b, n, xmpptest.Bob, func(p *party) {
		p.jmi.OnPropose = func(ctx context.Context, in *jmi.Incoming) { _ = in.Proceed(ctx) }
		p.h.OnCall = func(ctx context.Context, c *rtp.Call) {
			src, err := rtp.NewOggSource(bytes.NewReader(testmedia.BobOgg()))
			if err != nil {
				b.Error(err)
				return
			}
			_ = c.Accept(ctx, rtp.Options{Audio: src})
		}
	})
	alice := newParty(b, n, xmpptest.Alice, nil)
	b.ReportAllocs()
	var total time.Duration
	var all []time.Duration
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		first := make(chan struct{})
		var once sync.Once
		start := time.Now()
		c, err := alice.h.Place(ctx, bob.addr.Bare(), rtp.Options{ReceiveAudio: true,
			OnTrack: func(c *rtp.Call, content string, tr *webrtc.TrackRemote) {
				for {
					if _, _, err := tr.ReadRTP(); err != nil {
						return
					}
					once.Do(func() { close(first) })
				}
			}})
		if err != nil {
			cancel()
			b.Fatal(err)
		}
		select {
		case <-first:
		case <-ctx.Done():
			b.Fatal("no RTP packet")
		}
		total += time.Since(start)
		all = append(all, time.Since(start))
		_ = c.HangUp(ctx)
		<-c.Done()
		cancel()
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/setup")
	slices.Sort(all)
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(all[len(all)*9/10].Microseconds())/1000, "p90-ms")
	b.ReportMetric(float64(all[len(all)-1].Microseconds())/1000, "max-ms")
}
