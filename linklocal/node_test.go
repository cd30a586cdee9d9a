package linklocal_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jingletest"
	"github.com/jinglekit/jinglekit/linklocal"
	"github.com/jinglekit/jinglekit/transports/ibb"
	"github.com/jinglekit/jinglekit/transports/socks5"
	"github.com/jinglekit/jinglekit/xmppclient"
)

// pairByAddPeer starts two nodes without multicast that know each other
// by AddPeer.
func pairByAddPeer(t *testing.T, x *jingletest.Exchange, dirA, dirB string) (a, b *party) {
	t.Helper()
	a = newParty(t, partyOpts{name: "alice@pronto", x: x, ftDir: dirA})
	b = newParty(t, partyOpts{name: "bob@forza", x: x, ftDir: dirB})
	if _, err := a.node.AddPeer(tctx(t), "bob@forza", b.hostport()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.node.AddPeer(tctx(t), "alice@pronto", a.hostport()); err != nil {
		t.Fatal(err)
	}
	return a, b
}

func TestDiscoByAddPeer(t *testing.T) {
	a, b := pairByAddPeer(t, nil, "", "")
	info, err := a.node.Disco(tctx(t), b.jid())
	if err != nil {
		t.Fatal(err)
	}
	want := b.caps.Info()
	if !slicesEqual(info.Features, want.Features) {
		t.Fatalf("features %v, want %v", info.Features, want.Features)
	}
	if ver, err := xmppclient.ComputeVer(info); err != nil || ver != b.caps.Ver() {
		t.Fatalf("ver of the disco#info %q (%v), want %q", ver, err, b.caps.Ver())
	}
	// The stream features carried it, so the peer is already known to
	// support file transfer.
	var got linklocal.Peer
	for _, p := range a.node.Peers() {
		if p.Name.Equal(b.jid()) {
			got = p
		}
	}
	if !got.HasFeature(filetransfer.NS) || got.Port == 0 || got.Source != linklocal.Static {
		t.Fatalf("peer %+v", got)
	}
	// A plain disco#info query over the stream, in the other direction
	// (bob answers on the stream alice opened).
	sess, err := b.node.Session(tctx(t), a.jid())
	if err != nil {
		t.Fatal(err)
	}
	ai, err := xmppclient.GetInfo(tctx(t), sess, a.jid(), "")
	if err != nil {
		t.Fatal(err)
	}
	if !ai.HasFeature(jingle.NS) {
		t.Fatalf("alice's features %v lack %s", ai.Features, jingle.NS)
	}
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestJingleSessionByAddPeer(t *testing.T) {
	x := jingletest.NewExchange()
	a, b := pairByAddPeer(t, x, "", "")
	ctx := tctx(t)
	as, err := a.m.Initiate(ctx, b.jid(), jingle.Offer{Name: "c1", Description: jingletest.Desc("c1"), Transports: []string{jingletest.PipeNS}})
	if err != nil {
		t.Fatal(err)
	}
	var bs *jingle.Session
	select {
	case bs = <-b.app.Sessions:
	case <-ctx.Done():
		t.Fatal("no incoming session")
	}
	if ev, err := bs.NextEvent(ctx); err != nil || ev.Action != jingle.ActionSessionInitiate {
		t.Fatalf("first event %v, %v", ev.Action, err)
	}
	if !bs.Peer().Equal(a.jid()) {
		t.Fatalf("bob sees the session from %s, want %s", bs.Peer(), a.jid())
	}
	if err := bs.Accept(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if ev, err := as.NextEvent(ctx); err != nil || ev.Action != jingle.ActionSessionAccept {
		t.Fatalf("alice's event %v, %v", ev.Action, err)
	}
	ca, err := as.Conn(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	cb, err := bs.Conn(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.WriteString(ca, "over the pipe") }()
	buf := make([]byte, len("over the pipe"))
	if _, err := io.ReadFull(cb, buf); err != nil || string(buf) != "over the pipe" {
		t.Fatalf("read %q, %v", buf, err)
	}
	// Session-info and terminate travel over the direct stream too.
	if err := as.Info(ctx, jingletest.Nudge()); err != nil {
		t.Fatal(err)
	}
	if ev, err := bs.NextEvent(ctx); err != nil || ev.Action != jingle.ActionSessionInfo {
		t.Fatalf("bob's event %v, %v", ev.Action, err)
	}
	if err := bs.Terminate(ctx, jingle.Reason{Condition: jingle.ReasonSuccess}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-as.Done():
	case <-ctx.Done():
		t.Fatal("alice's session did not end")
	}
}

func TestFileTransferOverIBB(t *testing.T) {
	dir := t.TempDir()
	done := make(chan filetransfer.Result, 1)
	a := newParty(t, partyOpts{name: "alice@pronto", ftDir: t.TempDir()})
	b := newParty(t, partyOpts{name: "bob@forza", ftDir: dir, onDone: func(r filetransfer.Result) { done <- r }})
	// Alice knows only bob's address; bob accepts her because she is
	// added on his side.
	if _, err := b.node.AddPeer(tctx(t), "alice@pronto", a.hostport()); err != nil {
		t.Fatal(err)
	}
	p, err := a.node.AddPeer(tctx(t), "", b.hostport())
	if err != nil {
		t.Fatal(err)
	}
	if !p.Name.Equal(b.jid()) {
		t.Fatalf("learned name %s, want %s", p.Name, b.jid())
	}
	data := make([]byte, 300<<10)
	_, _ = rand.Read(data)
	ctx := tctx(t)
	snd := filetransfer.Sender{Transports: []string{ibb.NSTransport}}
	res, err := snd.Send(ctx, a.m, b.jid(), filetransfer.BytesSource("notes.bin", data))
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || !res[0].Verified || res[0].Transport != ibb.NSTransport {
		t.Fatalf("results %+v", res)
	}
	var r filetransfer.Result
	select {
	case r = <-done:
	case <-ctx.Done():
		t.Fatal("bob saw no result")
	}
	if r.Err != nil || !r.Verified || !r.Peer.Bare().Equal(a.jid()) {
		t.Fatalf("bob's result %+v", r)
	}
	got, err := os.ReadFile(filepath.Join(dir, "notes.bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("received file: %d bytes, %v", len(got), err)
	}
}

// TestFileTransferOverSOCKS5: a direct SOCKS5 candidate works between
// link-local peers (here on loopback).
func TestFileTransferOverSOCKS5(t *testing.T) {
	dir := t.TempDir()
	done := make(chan filetransfer.Result, 1)
	a := newParty(t, partyOpts{name: "alice@pronto", ftDir: t.TempDir(), s5: true, s5Loopback: true})
	b := newParty(t, partyOpts{name: "bob@forza", ftDir: dir, s5: true, s5Loopback: true, onDone: func(r filetransfer.Result) { done <- r }})
	if _, err := b.node.AddPeer(tctx(t), "alice@pronto", a.hostport()); err != nil {
		t.Fatal(err)
	}
	if _, err := a.node.AddPeer(tctx(t), "bob@forza", b.hostport()); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 1<<20)
	_, _ = rand.Read(data)
	ctx := tctx(t)
	snd := filetransfer.Sender{Transports: []string{socks5.NS, ibb.NSTransport}}
	res, err := snd.Send(ctx, a.m, b.jid(), filetransfer.BytesSource("big.bin", data))
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || !res[0].Verified || res[0].Transport != socks5.NS {
		t.Fatalf("results %+v", res)
	}
	select {
	case r := <-done:
		if r.Err != nil || !r.Verified {
			t.Fatalf("bob's result %+v", r)
		}
	case <-ctx.Done():
		t.Fatal("bob saw no result")
	}
	got, err := os.ReadFile(filepath.Join(dir, "big.bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("received file: %d bytes, %v", len(got), err)
	}
}

func TestUnknownPeer(t *testing.T) {
	a := newParty(t, partyOpts{name: "alice@pronto"})
	_, err := a.m.Initiate(tctx(t), jid.MustParse("nobody@nowhere"), jingle.Offer{Name: "c", Description: jingletest.Desc("c"), Transports: []string{ibb.NSTransport}})
	if !errors.Is(err, linklocal.ErrUnknownPeer) {
		t.Fatalf("initiate to an unknown peer: %v, want ErrUnknownPeer", err)
	}
	start := time.Now()
	if _, err := a.node.Resolve(tctx(t), "nobody@nowhere"); !errors.Is(err, linklocal.ErrUnknownPeer) || time.Since(start) > 2*time.Second {
		t.Fatalf("resolve without mDNS: %v after %v", err, time.Since(start))
	}
}

// BenchmarkIBBDirectStream measures a Jingle IBB stream carried by a
// link-local stream over loopback TCP.
func BenchmarkIBBDirectStream(b *testing.B) {
	a, p := newParty(b, partyOpts{name: "alice@pronto"}), newParty(b, partyOpts{name: "bob@forza"})
	if _, err := p.node.AddPeer(tctx(b), "alice@pronto", a.hostport()); err != nil {
		b.Fatal(err)
	}
	if _, err := a.node.AddPeer(tctx(b), "bob@forza", p.hostport()); err != nil {
		b.Fatal(err)
	}
	ctx := tctx(b)
	as, err := a.m.Initiate(ctx, p.jid(), jingle.Offer{Name: "c", Description: jingletest.Desc("c"), Transports: []string{ibb.NSTransport}})
	if err != nil {
		b.Fatal(err)
	}
	bs := <-p.app.Sessions
	if _, err := bs.NextEvent(ctx); err != nil {
		b.Fatal(err)
	}
	if err := bs.Accept(ctx, nil); err != nil {
		b.Fatal(err)
	}
	cb := make(chan io.ReadWriteCloser, 1)
	go func() {
		c, err := bs.Conn(ctx, "c")
		if err != nil {
			b.Error(err)
		}
		cb <- c
	}()
	ca, err := as.Conn(ctx, "c")
	if err != nil {
		b.Fatal(err)
	}
	rc := <-cb
	if rc == nil {
		b.FailNow()
	}
	const chunk = 64 << 10
	buf := make([]byte, chunk)
	read := make(chan error, 1)
	go func() {
		_, err := io.CopyN(io.Discard, rc, int64(b.N)*chunk)
		read <- err
	}()
	b.SetBytes(chunk)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := ca.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-read; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	_ = ca.Close()
}
