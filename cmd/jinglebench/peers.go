package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/internal/stanzatest"
	"github.com/jinglekit/jinglekit/transports/ice"
)

// Case names of the interop step (bench-peers).
const (
	peersStanzaStanza = "peers/stanza-to-stanza"
	peersToStanza     = "peers/jinglekit-to-stanza"
	peersFromStanza   = "peers/stanza-to-jinglekit"
	// peersJinglekit is jinglekit to jinglekit over the same ICE dialect
	// (XEP-0343 data channel), through the same Prosody, receiver in its
	// own process: the figure issue 17 wants at ≥ 2× peersStanzaStanza.
	peersJinglekit = "peers/jinglekit-to-jinglekit"
)

// runPeers times one file over ICE data channels between StanzaJS 12.22.1
// (libwebrtc) peers, from jinglekit to StanzaJS and from StanzaJS to
// jinglekit, in the same run, through the StanzaJS harness's own Prosody
// (../shared/peers/stanza, fixed ports 25222/25280). Each figure is the
// sender's Jingle session: session-initiate sent to session-terminate
// received. Without node, npm or prosody the step is skipped, unless
// JINGLEKIT_REQUIRE_STANZA=1 makes that a failed case.
func (h *harness) runPeers(ctx context.Context) {
	if !h.o.match(peersStanzaStanza) && !h.o.match(peersToStanza) && !h.o.match(peersFromStanza) &&
		!h.o.match(peersJinglekit) {
		return
	}
	src, err := stanzatest.Source()
	var st *stanzatest.Harness
	if err == nil {
		work, werr := os.MkdirTemp(h.env.Dir, "stanza-")
		if werr != nil {
			err = werr
		} else {
			st, err = stanzatest.Launch(ctx, src, work, func(f string, a ...any) { h.say.Info(fmt.Sprintf(f, a...)) })
		}
	}
	if err != nil {
		if errors.Is(err, stanzatest.ErrNotInstalled) && os.Getenv(stanzatest.EnvRequire) != "1" {
			h.say.Warn("bench: StanzaJS interop cases skipped", "error", err)
			return
		}
		h.add(Case{Name: "peers/stanza", Error: err.Error()})
		return
	}
	defer st.Close()
	size := h.o.peersSize
	path := filepath.Join(st.Dir, "payload.bin")
	if err := writePattern(path, h.pattern, size); err != nil {
		h.add(Case{Name: "peers/stanza", Error: err.Error()})
		return
	}
	note := "StanzaJS 12.22.1 + @roamhq/wrtc 0.10.0 (libwebrtc), ICE data channel over loopback, through the harness's Prosody; the sender's Jingle session time"
	jkNote := "jinglekit (default ice.Config, XEP-0343 data channel) to jinglekit in a child process, over loopback, through the same Prosody; the sender's Send (session-initiate to the verified <received/>)"
	run := func(name, baseline, note string, f func(ctx context.Context, c *Case) (float64, error)) {
		if !h.o.match(name) {
			return
		}
		c := Case{Name: name, Bytes: size, Baseline: baseline, Note: note, Process: "node peer.js processes and the bench (jinglekit side)"}
		if name == peersJinglekit {
			c.Process = "the bench (sender) and a receiver child"
		}
		cctx, cancel := h.caseContext(ctx)
		secs, err := f(cctx, &c)
		cancel()
		if err != nil {
			c.Error = err.Error()
		} else {
			c.MBPerS = f64(float64(size) / secs / 1e6)
			c.MS = f64(secs * 1000)
		}
		h.add(c)
	}
	run(peersStanzaStanza, "", note, func(ctx context.Context, c *Case) (float64, error) {
		return stanzaBaseline(ctx, 0, c, func(res string) (float64, error) {
			return stanzaToStanza(ctx, st, path, res)
		})
	})
	cfg := peerConfig{ice: true, resource: "peers"}
	env := &Env{C2SAddr: stanzatest.C2SAddr, CAFile: st.CAFile, Dir: h.env.Dir}
	carol, err := login(ctx, env, Account{"carol@" + stanzatest.Domain, stanzatest.Password}, cfg, h.log)
	if err != nil {
		h.add(Case{Name: "peers/stanza", Error: "login: " + err.Error()})
		return
	}
	defer carol.close()
	// A failure with jinglekit on one side is a failure, except the one
	// whose mark is in the StanzaJS receiver's own event order
	// (errWrtcReorder): that is tried once more, and said in the note.
	run(peersToStanza, peersStanzaStanza, note, func(ctx context.Context, c *Case) (float64, error) {
		secs, err := toStanza(ctx, st, carol, h.pattern, size, "bench-js")
		if errors.Is(err, errWrtcReorder) && ctx.Err() == nil {
			c.Note += fmt.Sprintf("; failed (%v), retried", err)
			secs, err = toStanza(ctx, st, carol, h.pattern, size, "bench-js-retry1")
		}
		return secs, err
	})
	run(peersFromStanza, peersStanzaStanza, note, func(ctx context.Context, _ *Case) (float64, error) {
		return fromStanza(ctx, st, carol, path, size)
	})
	if h.o.peersRounds > 1 && h.o.match(peersJinglekit) {
		h.add(h.pairedJinglekit(ctx, st, env, carol, path, size, jkNote))
		return
	}
	run(peersJinglekit, peersStanzaStanza, jkNote, func(ctx context.Context, _ *Case) (float64, error) {
		return h.jinglekitToJinglekit(ctx, env, carol, size)
	})
}

// pairedJinglekit measures peersJinglekit in -peers-rounds rounds, each
// paired with a StanzaJS-to-StanzaJS transfer just before it: one
// StanzaJS figure taken minutes apart carries the shared machine's drift
// (tens of percent, and single StanzaJS runs several times slower than
// the others were seen under load).
func (h *harness) pairedJinglekit(ctx context.Context, st *stanzatest.Harness, env *Env, carol *peer, path string, size int64, note string) Case {
	c := Case{Name: peersJinglekit, Bytes: size, Baseline: peersStanzaStanza, Note: note + "; paired rounds",
		Process: "the bench (sender) and a receiver child; node peer.js processes for the paired rounds"}
	for i := range h.o.peersRounds {
		cctx, cancel := h.caseContext(ctx)
		base, err := stanzaBaseline(cctx, i+1, &c, func(res string) (float64, error) {
			return stanzaToStanza(cctx, st, path, res)
		})
		if err == nil {
			var secs float64
			secs, err = h.jinglekitToJinglekit(cctx, env, carol, size)
			if err == nil {
				c.round(float64(size)/secs/1e6, float64(size)/base/1e6)
			}
		}
		cancel()
		if err != nil {
			c.Error = fmt.Sprintf("round %d: %v", i+1, err)
			return c
		}
	}
	c.finishRounds()
	return c
}

// stanzaRetries is how many more times a StanzaJS-to-StanzaJS transfer (the
// peers/stanza-to-stanza case, or a paired round's baseline) is tried when
// StanzaJS itself fails it.
const stanzaRetries = 2

// stanzaBaseline is a StanzaJS-to-StanzaJS transfer: round's in paired
// rounds, the peers/stanza-to-stanza case's when round is 0.
//
// StanzaJS 12.22.1 on @roamhq/wrtc 0.10.0 (libwebrtc M106) sometimes ends
// such a transfer, with no jinglekit involved, with media-error: its
// FileTransferSession's receiver hashes the data-channel messages in the
// order its onmessage gets them, and the hash did not match the sender's
// checksum (3 of 6 paired runs of 3 rounds at load 5–10 on 2026-12-06,
// each in round 2 or 3; then, traced, 1 of 63 StanzaJS-to-StanzaJS and 1
// of 38 jinglekit-to-StanzaJS transfers of 10–100 MiB at load 6–20, both
// 10 MiB at load 11). Both traced ones were @roamhq/wrtc 0.10.0 reordering
// the first messages inside the receiving process (stanzatest's package
// comment, Trace.WrtcReorder); a failed transfer's error says which
// messages differ (explainReceiver).
//
// Such a transfer is retried with a fresh receiver (run is given a fresh
// resource), at most stanzaRetries times, and every failure is written in
// c's note, so a failed baseline is never dropped silently. Transfers with
// jinglekit on one side are never retried.
func stanzaBaseline(ctx context.Context, round int, c *Case, run func(res string) (float64, error)) (float64, error) {
	for try := 0; ; try++ {
		res, what := fmt.Sprintf("bench-ss-%d", round), fmt.Sprintf("round %d: ", round)
		if round == 0 {
			res, what = "bench-ss", ""
		}
		if try > 0 {
			res += fmt.Sprintf("-retry%d", try)
		}
		secs, err := run(res)
		if err == nil || try == stanzaRetries || ctx.Err() != nil {
			return secs, err
		}
		c.Note += fmt.Sprintf("; %sStanzaJS→StanzaJS failed (%v), retried", what, err)
	}
}

// jinglekitToJinglekit sends size bytes from carol to a jinglekit receiver
// logged in as bob in a child process (like the StanzaJS peers, each end
// has its own process), over ICE in the dialect StanzaJS speaks, and
// returns the sender's Send time (session-initiate to the receiver's
// verified <received/> and the session's end).
func (h *harness) jinglekitToJinglekit(ctx context.Context, env *Env, carol *peer, size int64) (float64, error) {
	var tc transportCase
	for _, c := range transportCases() {
		if c.name == "ice" {
			tc = c
		}
	}
	renv := *env
	renv.Bob = Account{"bob@" + stanzatest.Domain, stanzatest.Password}
	bob, err := h.startReceiverOn(ctx, &renv, tc, "bench-jk")
	if err != nil {
		return 0, err
	}
	defer bob.close()
	t, err := sendFile(ctx, carol, bob, ice.NSICEUDP, h.pattern.Source("to-jinglekit.bin", size), false)
	if err != nil {
		return 0, err
	}
	return t.Elapsed.Seconds(), nil
}

// stanzaReceiver starts a StanzaJS receiver as bob/res and waits until it
// is ready.
func stanzaReceiver(ctx context.Context, st *stanzatest.Harness, res string) (*stanzatest.Peer, error) {
	recv, err := st.StartPeer("receive", "--jid", "bob@"+stanzatest.Domain, "--password", stanzatest.Password,
		"--resource", res, "--dir", filepath.Join(st.Dir, "out-"+res), "--timeout", "900")
	if err != nil {
		return nil, err
	}
	if err := recv.Ready(ctx); err != nil {
		recv.Stop()
		return nil, err
	}
	return recv, nil
}

// stanzaResult checks that a StanzaJS run succeeded.
func stanzaResult(ctx context.Context, p *stanzatest.Peer, what string) (stanzatest.Result, error) {
	r, err := p.Result(ctx)
	if err != nil {
		return r, err
	}
	if r.Code != 0 || r.Summary["ok"] != true {
		return r, fmt.Errorf("StanzaJS %s: exit %d: %v", what, r.Code, r.Summary)
	}
	return r, nil
}

// explainReceiver adds to err, a failed transfer to the StanzaJS receiver
// recv, how what it received compares with the size bytes of sent, and
// where its trace and logs are kept: a media-error is StanzaJS finding a
// hash mismatch, and this says which messages differ.
func explainReceiver(ctx context.Context, recv *stanzatest.Peer, sent io.ReaderAt, size int64, err error) error {
	// Its trace is written when it exits: after it ended the session, or
	// when stopped.
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	_, _ = recv.Result(wctx)
	cancel()
	recv.Stop()
	kept, kerr := recv.Keep()
	if tr, terr := recv.Trace(); terr == nil && tr.WrtcReorder() {
		err = fmt.Errorf("%w (%w)", err, errWrtcReorder)
	}
	if kerr != nil {
		return fmt.Errorf("%w; StanzaJS receiver: %s; keeping its trace: %v", err, recv.Explain(sent, size), kerr)
	}
	return fmt.Errorf("%w; StanzaJS receiver (trace and logs kept in %s): %s", err, kept, recv.Explain(sent, size))
}

// errWrtcReorder marks a failed transfer to StanzaJS whose receiver got a
// data-channel message before the channel's open event:
// stanzatest.Trace.WrtcReorder, @roamhq/wrtc 0.10.0 reordering the first
// messages inside the receiving process, whoever sent them.
var errWrtcReorder = errors.New("@roamhq/wrtc 0.10.0 reordered the first data-channel messages in the StanzaJS receiver")

// stanzaToStanza times path from a StanzaJS sender to a StanzaJS receiver
// with resource res (a fresh one per transfer: each has its own output
// directory).
func stanzaToStanza(ctx context.Context, st *stanzatest.Harness, path, res string) (float64, error) {
	recv, err := stanzaReceiver(ctx, st, res)
	if err != nil {
		return 0, err
	}
	defer recv.Stop()
	send, err := st.StartPeer("send", "--jid", "alice@"+stanzatest.Domain, "--password", stanzatest.Password,
		"--to", "bob@"+stanzatest.Domain+"/"+res, "--file", path, "--timeout", "900")
	if err != nil {
		return 0, err
	}
	defer send.Stop()
	sr, err := stanzaResult(ctx, send, "send")
	if err == nil {
		_, err = stanzaResult(ctx, recv, "receive")
	}
	if err != nil {
		if f, ferr := os.Open(path); ferr == nil {
			defer f.Close()
			if fi, ferr := f.Stat(); ferr == nil {
				err = explainReceiver(ctx, recv, f, fi.Size(), err)
			}
		}
		return 0, err
	}
	return sr.Number("seconds"), nil
}

// toStanza times size bytes of p from carol to a StanzaJS receiver with
// resource res.
func toStanza(ctx context.Context, st *stanzatest.Harness, carol *peer, p Pattern, size int64, res string) (float64, error) {
	recv, err := stanzaReceiver(ctx, st, res)
	if err != nil {
		return 0, err
	}
	defer recv.Stop()
	s := filetransfer.Sender{Transports: []string{ice.NSICEUDP}}
	to := jid.MustParse("bob@" + stanzatest.Domain + "/" + res)
	start := time.Now()
	results, err := s.Send(ctx, carol.m, to, p.Source("to-stanza.bin", size))
	elapsed := time.Since(start)
	switch {
	case err != nil:
		err = fmt.Errorf("send: %w", err)
	case len(results) != 1 || !results[0].Verified:
		err = fmt.Errorf("send: result %+v", results)
	default:
		_, err = stanzaResult(ctx, recv, "receive")
	}
	if err != nil {
		return 0, explainReceiver(ctx, recv, io.NewSectionReader(p, 0, size), size, err)
	}
	return elapsed.Seconds(), nil
}

func fromStanza(ctx context.Context, st *stanzatest.Harness, carol *peer, path string, size int64) (float64, error) {
	wait := carol.expect("payload.bin", size, ice.NSICEUDP, false)
	send, err := st.StartPeer("send", "--jid", "alice@"+stanzatest.Domain, "--password", stanzatest.Password,
		"--to", carol.jid.String(), "--file", path, "--timeout", "900")
	if err != nil {
		return 0, err
	}
	defer send.Stop()
	sr, err := stanzaResult(ctx, send, "send")
	if err != nil {
		return 0, err
	}
	if err := wait(ctx); err != nil {
		return 0, err
	}
	return sr.Number("seconds"), nil
}

// writePattern writes size bytes of p to path.
func writePattern(path string, p Pattern, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	r := p.Reader(size)
	defer r.Close()
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
