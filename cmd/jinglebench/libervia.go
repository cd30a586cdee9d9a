package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/internal/liberviatest"
	"github.com/jinglekit/jinglekit/transports/ibb"
	"github.com/jinglekit/jinglekit/transports/socks5"
)

// lvTransport is one transport of the Libervia cases.
type lvTransport struct {
	tag string // s5b or ibb, the end of the case names
	ns  string
}

var lvTransports = []lvTransport{{"s5b", socks5.NS}, {"ibb", ibb.NSTransport}}

// Case names of the Libervia interop cases (bench-peers); the
// libervia-to-libervia case of each transport is the baseline of the
// other two.
func lvLV(t lvTransport) string   { return "peers/libervia-to-libervia-" + t.tag }
func lvToLV(t lvTransport) string { return "peers/jinglekit-to-libervia-" + t.tag }
func lvToJK(t lvTransport) string { return "peers/libervia-to-jinglekit-" + t.tag }

// lvCaseTimeout bounds one Libervia transfer (the scripts' timeouts).
const lvCaseTimeout = 5 * time.Minute

// lvNote says what the Libervia cases time.
const lvNote = "Libervia 0.9 (libervia-backend + libervia-cli, Python/Twisted) through the harness's Prosody 0.12 " +
	"(../shared/peers/libervia, loopback); timed from the offer (libervia-cli's 'File request sent' line, or our Send) " +
	"to the receiver's file (libervia-cli's 'File received successfully' line, or our Handler's Done): " +
	"libervia-cli's ~1-2 s start-up and the scripts' sha256sum are left out"

// lvBench is the state of the Libervia step.
type lvBench struct {
	h     *harness
	lv    *liberviatest.Harness
	carol *peer
	dir   string
}

// runLibervia times files between Libervia 0.9 peers and between
// jinglekit and Libervia, both ways, over S5B and over IBB, in the same
// run, through the Libervia harness's own Prosody (fixed ports
// 15222/15000). Without Libervia (or Prosody, dbus, python3-progressbar)
// the step is skipped with a message, unless JINGLEKIT_REQUIRE_LIBERVIA=1
// makes that a failed case.
func (h *harness) runLibervia(ctx context.Context) {
	selected := false
	for _, t := range lvTransports {
		selected = selected || h.o.match(lvLV(t)) || h.o.match(lvToLV(t)) || h.o.match(lvToJK(t))
	}
	if !selected {
		return
	}
	b, err := h.startLibervia(ctx)
	if err != nil {
		if errors.Is(err, liberviatest.ErrNotInstalled) && os.Getenv(liberviatest.EnvRequire) != "1" {
			h.say.Warn("bench: Libervia interop cases skipped", "error", err)
			return
		}
		h.add(Case{Name: "peers/libervia", Error: err.Error()})
		return
	}
	defer b.close()
	s5b, ib := lvTransports[0], lvTransports[1]
	b.transport(ctx, s5b, h.o.peersSize, lvLV, lvToLV, lvToJK)
	// jinglekit to Libervia first: it needs no IBB-forced Libervia sender.
	b.transport(ctx, ib, h.o.peersIBBSize, lvToLV)
	if !h.o.match(lvLV(ib)) && !h.o.match(lvToJK(ib)) {
		return
	}
	if h.o.smoke {
		// A Libervia backend start (20-40 s) would double the smoke step.
		h.say.Info("bench: smoke: " + lvLV(ib) + " and " + lvToJK(ib) + " left out (they need a Libervia backend restarted with IBB forced)")
		return
	}
	// Stock Libervia 0.9 has no setting to initiate over IBB: the harness's
	// shim raises IBB's priority in a backend started with LV_FORCE_IBB=1.
	uctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	err = b.lv.Up(uctx, "alice", "LV_FORCE_IBB=1")
	cancel()
	if err != nil {
		h.add(Case{Name: "peers/libervia-ibb", Error: err.Error()})
		return
	}
	b.transport(ctx, ib, h.o.peersIBBSize, lvLV, lvToJK)
}

// startLibervia starts the harness, Libervia backends for alice (sender)
// and bob (receiver), and logs jinglekit in as carol.
func (h *harness) startLibervia(ctx context.Context) (*lvBench, error) {
	src, err := liberviatest.Source()
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp(h.env.Dir, "libervia-")
	if err != nil {
		return nil, err
	}
	b := &lvBench{h: h, dir: work}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	h.say.Info("bench: starting the Libervia harness (Prosody, two libervia backends)")
	b.lv, err = liberviatest.Launch(sctx, src, work, liberviatest.Options{QuietProsody: true},
		func(f string, a ...any) { h.say.Info(fmt.Sprintf(f, a...)) })
	if err != nil {
		os.RemoveAll(work)
		return nil, err
	}
	if err = b.lv.UpAll(sctx, "alice", "bob"); err == nil {
		env := &Env{C2SAddr: liberviatest.C2SAddr, CAFile: b.lv.CAFile, Dir: work}
		cfg := peerConfig{resource: "bench-lv", s5b: socks5.Settings{NoProxyDiscovery: true}}
		b.carol, err = login(sctx, env, Account{"carol@" + liberviatest.Domain, liberviatest.Password}, cfg, h.log)
	}
	if err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

func (b *lvBench) close() {
	if b.carol != nil {
		_ = b.carol.close()
	}
	if err := b.lv.Close(); err != nil {
		b.h.say.Warn("bench: stopping the Libervia harness", "error", err)
	}
	os.RemoveAll(b.dir)
}

// transport runs the cases named by names over t with a file of size.
func (b *lvBench) transport(ctx context.Context, t lvTransport, size int64, names ...func(lvTransport) string) {
	path := filepath.Join(b.dir, "payload-"+t.tag+".bin")
	sum, perr := b.payload(path, size)
	for _, name := range names {
		n := name(t)
		if !b.h.o.match(n) {
			continue
		}
		c := Case{Name: n, Bytes: size, Note: lvNote, Process: "libervia-backend processes and the bench (jinglekit side)"}
		if n != lvLV(t) {
			c.Baseline = lvLV(t)
		}
		if t.tag == "ibb" {
			c.Note += fmt.Sprintf("; IBB at %s only (not 100 MiB): Libervia's IBB (4096-byte blocks, one iq at a time) runs at about 0.85 MB/s", FormatSize(size))
		}
		err := perr
		if err == nil {
			cctx, cancel := context.WithTimeout(ctx, lvCaseTimeout)
			var secs float64
			switch n {
			case lvLV(t):
				secs, err = b.lvToLV(cctx, path, sum, size)
			case lvToLV(t):
				secs, err = b.jkToLV(cctx, t, path, sum, size)
			default:
				secs, err = b.lvToJK(cctx, t, path, size)
			}
			cancel()
			if err == nil {
				c.MBPerS, c.MS = f64(float64(size)/secs/1e6), f64(secs*1000)
			}
		}
		if err != nil {
			c.Error = err.Error()
		}
		b.h.add(c)
	}
}

// payload writes size bytes of the bench's pattern to path, once, and
// returns their sha-256 in hex.
func (b *lvBench) payload(path string, size int64) (string, error) {
	if _, err := os.Stat(path); err != nil {
		if err := writePattern(path, b.h.pattern, size); err != nil {
			return "", err
		}
	}
	h := sha256.New()
	r := b.h.pattern.Reader(size)
	defer r.Close()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// receive starts a Libervia receiver on bob's backend.
func (b *lvBench) receive(ctx context.Context) (*liberviatest.Receiver, error) {
	dir, err := os.MkdirTemp(b.dir, "bob-")
	if err != nil {
		return nil, err
	}
	return b.lv.Receive(ctx, "bob", dir, liberviatest.ReceiveOptions{Timeout: lvCaseTimeout - time.Minute})
}

// received checks what bob's Libervia got.
func received(got liberviatest.Received, sum string, size int64) error {
	switch {
	case got.SHA256 != sum || got.Size != size:
		return fmt.Errorf("libervia received %d bytes, sha-256 %s; want %d, %s", got.Size, got.SHA256, size, sum)
	case !got.HashVerified:
		return errors.New("libervia did not verify the sender's checksum")
	case got.At.IsZero():
		return errors.New("libervia-cli never said 'File received successfully'")
	}
	os.Remove(got.Path)
	return nil
}

// lvToLV times path from alice's Libervia to bob's.
func (b *lvBench) lvToLV(ctx context.Context, path, sum string, size int64) (float64, error) {
	recv, err := b.receive(ctx)
	if err != nil {
		return 0, err
	}
	defer recv.Stop()
	sent, err := b.lv.Send(ctx, "alice", liberviatest.JID("bob"), path, liberviatest.SendOptions{Timeout: lvCaseTimeout - time.Minute})
	if err != nil {
		return 0, err
	}
	got, err := recv.Wait(ctx)
	if err != nil {
		return 0, err
	}
	if err := received(got, sum, size); err != nil {
		return 0, err
	}
	if sent.Requested.IsZero() {
		return 0, errors.New("libervia-cli never said 'File request sent'")
	}
	return got.At.Sub(sent.Requested).Seconds(), nil
}

// jkToLV times path from jinglekit (carol) to bob's Libervia over t.
func (b *lvBench) jkToLV(ctx context.Context, t lvTransport, path, sum string, size int64) (float64, error) {
	recv, err := b.receive(ctx)
	if err != nil {
		return 0, err
	}
	defer recv.Stop()
	src, err := filetransfer.FileSource(path)
	if err != nil {
		return 0, err
	}
	// Libervia 0.9 reads <hash/> as base64 of the hex digest.
	s := filetransfer.Sender{Transports: []string{t.ns}, HashEncoding: filetransfer.HexBase64}
	start := time.Now()
	res, err := s.Send(ctx, b.carol.m, jid.MustParse(liberviatest.JID("bob")), src)
	if err != nil {
		return 0, fmt.Errorf("send: %w", err)
	}
	if len(res) != 1 || res[0].Transport != t.ns {
		return 0, fmt.Errorf("send: result %+v, want one file over %s", res, t.ns)
	}
	got, err := recv.Wait(ctx)
	if err != nil {
		return 0, err
	}
	if err := received(got, sum, size); err != nil {
		return 0, err
	}
	return got.At.Sub(start).Seconds(), nil
}

// lvToJK times path from alice's Libervia to jinglekit (carol), which
// must receive it verified over t.
func (b *lvBench) lvToJK(ctx context.Context, t lvTransport, path string, size int64) (float64, error) {
	wait := b.carol.expect(filepath.Base(path), size, t.ns, false)
	type verdict struct {
		at  time.Time
		err error
	}
	done := make(chan verdict, 1)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		err := wait(wctx)
		done <- verdict{time.Now(), err}
	}()
	sent, err := b.lv.Send(ctx, "alice", b.carol.jid.String(), path, liberviatest.SendOptions{Timeout: lvCaseTimeout - time.Minute})
	if err != nil {
		cancel() // no file is coming
	}
	v := <-done
	if err = errors.Join(err, v.err); err != nil {
		return 0, err
	}
	if sent.Requested.IsZero() {
		return 0, errors.New("libervia-cli never said 'File request sent'")
	}
	return v.at.Sub(sent.Requested).Seconds(), nil
}
