package rtp_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jinglekit/jinglekit/internal/testmedia"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jmi"
	"github.com/jinglekit/jinglekit/rtp"
	"github.com/jinglekit/jinglekit/xmpptest"
)

// TestDirectCall: alice calls bob's full JID with Opus both ways; both
// record; the recordings hold the other side's packets.
func TestDirectCall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := xmpptest.NewNetwork(t)
	bobRec := rtp.NewRecorder(t.TempDir())
	aliceRec := rtp.NewRecorder(t.TempDir())
	bobCalls := make(chan *rtp.Call, 1)
	bob := newParty(t, n, xmpptest.Bob, func(p *party) {
		p.h.OnCall = acceptOgg(t, bobRec, bobCalls)
	})
	alice := newParty(t, n, xmpptest.Alice, nil)
	src := oggSource(t, testmedia.AliceOgg())
	c, err := alice.h.Place(ctx, bob.addr, rtp.Options{Audio: src, OnTrack: aliceRec.OnTrack})
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ctx, c, rtp.EventAccepted)
	waitEvent(t, ctx, c, rtp.EventConnected)
	bc := <-bobCalls
	time.Sleep(1500 * time.Millisecond)
	if err := c.HangUp(ctx); err != nil {
		t.Fatal(err)
	}
	<-c.Done()
	<-bc.Done()
	for name, rec := range map[string]*rtp.Recorder{"alice": aliceRec, "bob": bobRec} {
		stats, err := rec.Wait()
		if err != nil {
			t.Errorf("%s recorder: %v", name, err)
		}
		t.Logf("%s recorded %+v", name, stats)
		if len(stats) != 1 || stats[0].Packets < 20 {
			t.Errorf("%s recorded %+v, want one track with packets", name, stats)
		}
		// Issue 13: recordings are private, as received files are.
		for _, st := range stats {
			if fi, err := os.Stat(st.Path); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("%s's recording %s: %v, mode %v, want 0600", name, st.Path, err, fi.Mode())
			}
		}
	}
}

// oggPackets reads the Opus packets of an Ogg file, checking every page.
func oggPackets(t testing.TB, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := rtp.NewOggReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out [][]byte
	for {
		p, _, err := r.ReadPacket()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, p)
	}
}

// sourcePackets returns the Opus packets of an embedded test file.
func sourcePackets(t testing.TB, data []byte) [][]byte {
	t.Helper()
	r, err := rtp.NewOggReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for {
		p, _, err := r.ReadPacket()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
}

// matchRun checks that got is made of want's packets in order — the start
// of a call may miss a few, a hold drops some — and returns how many
// matched and the longest run of want's packets skipped between two
// matches.
func matchRun(t testing.TB, got, want [][]byte) (matched, maxGap int) {
	t.Helper()
	if len(got) == 0 {
		t.Fatal("no packet recorded")
	}
	pos := -1
	for _, g := range got {
		for i := pos + 1; i < len(want); i++ {
			if bytes.Equal(g, want[i]) {
				if pos >= 0 && i-pos-1 > maxGap {
					maxGap = i - pos - 1
				}
				pos = i
				matched++
				break
			}
		}
	}
	return matched, maxGap
}

// ivfFrames counts the frames of an IVF file and checks it holds VP8.
func ivfFrames(t testing.TB, path string) (frames int, bytesIn int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := rtp.NewIVFReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for {
		fr, _, err := r.ReadFrame()
		if errors.Is(err, io.EOF) {
			return frames, bytesIn
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		frames++
		bytesIn += len(fr)
	}
}

// TestJMICallHoldMuteVideo is the acceptance run on the in-memory network:
// alice proposes to bob's bare JID (XEP-0353), bob proceeds, alice sends
// session-initiate to the proceeding resource with the proposal's id as
// sid, bob accepts; Opus flows both ways; alice holds and unholds, bob
// mutes and unmutes (each seen as events by the other side); alice adds
// video by content-add mid-call and bob receives VP8; alice hangs up. The
// recordings hold the other side's Opus packets, in order, and the VP8
// frames.
func TestJMICallHoldMuteVideo(t *testing.T) {
	n := xmpptest.NewNetwork(t)
	fullCall(t, func(t *testing.T, who string, setup func(*party)) *party {
		addr := map[string]string{"alice": xmpptest.Alice, "bob": xmpptest.Bob}[who]
		return newParty(t, n, addr, setup)
	})
}

// connectFunc logs the party who ("alice" or "bob") in to the server of a
// test, with setup applied to its handler and JMI before anything runs.
// Each party has one resource.
type connectFunc func(t *testing.T, who string, setup func(*party)) *party

// fullCall is the full call scenario of the acceptance tests, between two
// parties that connect logs in: see TestJMICallHoldMuteVideo.
func fullCall(t *testing.T, connect connectFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bobDir, aliceDir := t.TempDir(), t.TempDir()
	bobRec, aliceRec := rtp.NewRecorder(bobDir), rtp.NewRecorder(aliceDir)
	bobCalls := make(chan *rtp.Call, 1)
	bob := connect(t, "bob", func(p *party) {
		p.jmi.OnPropose = func(ctx context.Context, in *jmi.Incoming) {
			if err := in.Ringing(ctx); err != nil {
				t.Error(err)
			}
			if err := in.Proceed(ctx); err != nil {
				t.Error(err)
			}
		}
		accept := acceptOgg(t, bobRec, bobCalls)
		p.h.OnCall = func(ctx context.Context, c *rtp.Call) {
			if c.JMIIncoming() == nil {
				t.Error("incoming call not linked to the JMI proposal")
			}
			accept(ctx, c)
		}
	})
	alice := connect(t, "alice", nil)
	src := oggSource(t, testmedia.AliceOgg())
	c, err := alice.h.Place(ctx, bob.addr.Bare(), rtp.Options{Audio: src, OnTrack: aliceRec.OnTrack})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Peer().Equal(bob.addr) {
		t.Errorf("call went to %s, want the proceeding resource %s", c.Peer(), bob.addr)
	}
	waitEvent(t, ctx, c, rtp.EventAccepted)
	waitEvent(t, ctx, c, rtp.EventConnected)
	bc := <-bobCalls
	if c.SID() != bc.SID() || bc.JMIIncoming() == nil || bc.JMIIncoming().ID != c.SID() {
		t.Errorf("sid %q at alice, %q at bob; want the proposal id", c.SID(), bc.SID())
	}
	waitEvent(t, ctx, bc, rtp.EventConnected)

	// Hold and unhold, mute and unmute. Bob has heard alice first.
	for bobRec.Packets() < 10 {
		select {
		case <-ctx.Done():
			t.Fatalf("bob received %d packets", bobRec.Packets())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := c.Hold(ctx); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ctx, bc, rtp.EventHold)
	time.Sleep(400 * time.Millisecond) // alice sends nothing meanwhile
	if err := c.Unhold(ctx); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ctx, bc, rtp.EventUnhold)
	if err := bc.Mute(ctx, "0"); err != nil {
		t.Fatal(err)
	}
	if ev := waitEvent(t, ctx, c, rtp.EventMute); ev.Content != "0" || ev.Creator != jingle.CreatorInitiator {
		t.Errorf("mute event %+v", ev)
	}
	if err := bc.Unmute(ctx, "0"); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ctx, c, rtp.EventUnmute)

	// Video, added mid-call.
	vsrc, err := rtp.NewIVFSource(bytes.NewReader(testmedia.VP8IVF()))
	if err != nil {
		t.Fatal(err)
	}
	name, err := c.AddContent(ctx, rtp.MediaVideo, vsrc)
	if err != nil {
		t.Fatal(err)
	}
	if ev := waitEvent(t, ctx, bc, rtp.EventContentAdded); ev.Content != name {
		t.Errorf("bob saw content %q added, alice added %q", ev.Content, name)
	}
	if got := c.Contents(); got[name] != rtp.MediaVideo || got["0"] != rtp.MediaAudio {
		t.Errorf("alice's contents %v", got)
	}
	time.Sleep(2 * time.Second)

	// content-modify: only alice sends video now; then video goes away.
	if err := c.SetSenders(ctx, name, jingle.SendersInitiator); err != nil {
		t.Fatal(err)
	}
	if ev := waitEvent(t, ctx, bc, rtp.EventContentModified); ev.Content != name || ev.Senders != jingle.SendersInitiator {
		t.Errorf("content-modify event %+v", ev)
	}
	if err := c.RemoveContent(ctx, name); err != nil {
		t.Fatal(err)
	}
	if ev := waitEvent(t, ctx, bc, rtp.EventContentRemoved); ev.Content != name {
		t.Errorf("content-remove event %+v", ev)
	}
	if got := bc.Contents(); len(got) != 1 || got["0"] != rtp.MediaAudio {
		t.Errorf("bob's contents after content-remove: %v", got)
	}
	if err := c.HangUp(ctx); err != nil {
		t.Fatal(err)
	}
	<-c.Done()
	<-bc.Done()
	if r := bc.Reason(); r == nil || r.Condition != jingle.ReasonSuccess {
		t.Errorf("bob's call ended with %v", r)
	}

	aliceStats, err := aliceRec.Wait()
	if err != nil {
		t.Error(err)
	}
	bobStats, err := bobRec.Wait()
	if err != nil {
		t.Error(err)
	}
	t.Logf("alice recorded %+v; bob recorded %+v", aliceStats, bobStats)
	var sawAudio, sawVideo bool
	for _, st := range bobStats {
		switch filepath.Ext(st.Path) {
		case ".ogg":
			got := oggPackets(t, st.Path)
			m, gap := matchRun(t, got, sourcePackets(t, testmedia.AliceOgg()))
			if m < len(got)*9/10 || m < 50 {
				t.Errorf("bob's recording: %d of %d packets are alice's in order", m, len(got))
			}
			// 400ms of hold at 20ms a packet: about 20 packets not sent.
			if gap < 10 {
				t.Errorf("bob's recording skips at most %d of alice's packets: the hold did not stop her", gap)
			}
			sawAudio = true
		case ".ivf":
			frames, b := ivfFrames(t, st.Path)
			if frames < 10 || b < 1000 {
				t.Errorf("bob's video: %d frames, %d bytes", frames, b)
			}
			sawVideo = true
		}
	}
	if !sawAudio || !sawVideo {
		t.Errorf("bob recorded audio %v, video %v", sawAudio, sawVideo)
	}
	if len(aliceStats) != 1 {
		t.Fatalf("alice recorded %d tracks", len(aliceStats))
	}
	got := oggPackets(t, aliceStats[0].Path)
	if m, _ := matchRun(t, got, sourcePackets(t, testmedia.BobOgg())); m < 50 {
		t.Errorf("alice's recording: %d of %d packets are bob's in order", m, len(got))
	}
}
