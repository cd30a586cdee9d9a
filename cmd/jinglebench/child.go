package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"time"

	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/transports/socks5"
)

// envChild is the environment variable that carries the Env to a child.
const envChild = "JINGLEKIT_BENCH_CHILD_ENV"

// Child kinds: the cases that measure peak memory run each in a fresh
// process (this program re-executed with -child KIND), so that VmHWM
// counts nothing but the case: no heap left by earlier cases, no pages of
// the parent's baselines.
const (
	childConcurrency  = "concurrency"
	childMemoryStream = "memory-stream"
	childMemoryFile   = "memory-file"
	childIdle         = "idle"
)

// childCase names the case each child kind measures.
var childCase = map[string]string{
	childConcurrency:  "concurrency/s5b-direct",
	childMemoryStream: "memory/stream-s5b-direct",
	childMemoryFile:   "memory/file-s5b-direct",
	childIdle:         caseIdle,
}

// caseIdle is the case of many established, idle sessions in one Manager.
const caseIdle = "concurrency/idle-ibb"

// runChildren runs the child cases selected by -run, one process each.
func (h *harness) runChildren(ctx context.Context) {
	for _, kind := range []string{childConcurrency, childIdle, childMemoryStream, childMemoryFile} {
		if !h.o.match(childCase[kind]) {
			continue
		}
		cs, err := h.spawn(ctx, kind)
		if err != nil {
			h.add(Case{Name: childCase[kind], Error: err.Error(), Process: "child"})
			continue
		}
		for _, c := range cs {
			h.add(c)
		}
	}
}

// spawn re-executes this program as a child of the given kind and reads
// the cases it prints.
func (h *harness) spawn(ctx context.Context, kind string) ([]Case, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	envJSON, err := json.Marshal(h.env)
	if err != nil {
		return nil, err
	}
	args := []string{"-child", kind,
		"-concurrent", fmt.Sprint(h.o.concurrent),
		"-concurrent-size", fmt.Sprint(h.o.concurrentSize),
		"-idle", fmt.Sprint(h.o.idle),
		"-stream-size", fmt.Sprint(h.o.streamSize),
		"-timeout", h.o.timeout.String(),
	}
	if h.o.verbose {
		args = append(args, "-v")
	}
	if h.o.cpuprofile != "" {
		args = append(args, "-cpuprofile", h.o.cpuprofile+"."+kind)
	}
	if h.o.goroutineProfile != "" {
		args = append(args, "-goroutine-profile", h.o.goroutineProfile+"."+kind)
	}
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = append(os.Environ(), envChild+"="+string(envJSON))
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("child %s: %w", kind, err)
	}
	var cs []Case
	if err := json.Unmarshal(out.Bytes(), &cs); err != nil {
		return nil, fmt.Errorf("child %s printed no cases: %w", kind, err)
	}
	return cs, nil
}

// childMain is the body of a child process: it runs one case and prints
// it as JSON on standard output.
func childMain(ctx context.Context, h *harness, kind string) error {
	raw := os.Getenv(envChild)
	if raw == "" {
		return errors.New("-child is for the bench's own use")
	}
	h.env = new(Env)
	if err := json.Unmarshal([]byte(raw), h.env); err != nil {
		return fmt.Errorf("bad %s: %w", envChild, err)
	}
	if kind == childReceiver {
		return receiverMain(ctx, h, h.o.caseName, h.o.resource)
	}
	c := Case{Name: childCase[kind], Process: "child"}
	var err error
	switch kind {
	case childConcurrency:
		err = h.concurrency(ctx, &c)
	case childIdle:
		err = h.idle(ctx, &c)
	case childMemoryStream:
		err = h.memory(ctx, &c, false)
	case childMemoryFile:
		err = h.memory(ctx, &c, true)
	default:
		return fmt.Errorf("unknown child kind %q", kind)
	}
	if err != nil {
		c.Error = err.Error()
		c.MS, c.MBPerS = nil, nil
	}
	return json.NewEncoder(os.Stdout).Encode([]Case{c})
}

func s5bDirect(resource string, limits jingle.Limits) peerConfig {
	return peerConfig{resource: resource, s5b: socks5.Settings{NoProxyDiscovery: true}, limits: limits}
}

// concurrency sends -concurrent files of -concurrent-size at once from
// alice to bob over S5B direct, each in its own session, and records the
// wall time, the peak RSS and the goroutines before, at the peak and after.
func (h *harness) concurrency(ctx context.Context, c *Case) error {
	ctx, cancel := h.caseContext(ctx)
	defer cancel()
	n, size := h.o.concurrent, h.o.concurrentSize
	c.Count, c.Bytes = n, int64(n)*size
	lim := jingle.Limits{MaxSessions: 2*n + 64, MaxSessionsPerPeer: 2*n + 64, MaxSessionsPerAccount: 2*n + 64}
	wall, err := h.measureCrowd(ctx, c, crowd{cfg: s5bDirect("conc", lim), warmNS: socks5.NS, warmSize: size, n: n,
		session: func(ctx context.Context, alice, bob *peer, i int) error {
			src := h.pattern.Source(fmt.Sprintf("conc-%d.bin", i), size)
			_, err := sendFile(ctx, alice, bob, socks5.NS, src, false)
			return err
		}})
	if wall > 0 {
		c.MS = f64(ms(wall))
		c.MBPerS = f64(MBPerS(c.Bytes, wall))
		c.Note = fmt.Sprintf("%d filetransfer sessions of %s at once over S5B direct, one receiving Handler: %.2f s wall", n, FormatSize(size), wall.Seconds())
	}
	return err
}

// settleGoroutines waits until the number of goroutines is at most want
// (or, for want < 0, stops changing) and returns it, and whether it got
// there within d.
func settleGoroutines(want int, d time.Duration) (int, bool) {
	deadline := time.Now().Add(d)
	last := runtime.NumGoroutine()
	for {
		time.Sleep(50 * time.Millisecond)
		cur := runtime.NumGoroutine()
		if (want >= 0 && cur <= want) || (want < 0 && cur == last) {
			return cur, true
		}
		if time.Now().After(deadline) {
			return cur, false
		}
		last = cur
	}
}

// memory streams -stream-size bytes from alice to bob over S5B direct and
// records the peak RSS while it streams: through the sink application
// (the transport alone, end to end) or, with file set, as a filetransfer
// to a Handler whose file the harness keeps from filling the disk (see
// punchHoles).
func (h *harness) memory(ctx context.Context, c *Case, file bool) error {
	ctx, cancel := h.caseContext(ctx)
	defer cancel()
	size := h.o.streamSize
	c.Bytes = size
	c.Baseline = baseTCPSHA256
	if file {
		c.Baseline = baseTCPFile
	}
	alice, bob, err := loginPair(ctx, h.env, s5bDirect("mem", jingle.Limits{}), h.log)
	if err != nil {
		return err
	}
	defer alice.close()
	defer bob.close()
	if file {
		if _, err := sendFile(ctx, alice, bob, socks5.NS, h.pattern.Source("warmup.bin", 1<<20), false); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	} else if _, err := sendStream(ctx, alice, bob, socks5.NS, h.pattern, 1<<20); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	resetPeak()
	var el time.Duration
	if file {
		c.Note = "filetransfer to a Handler on disk; the harness punches holes in the .part behind the writer so the disk holds a few MB"
		t, err := sendFile(ctx, alice, bob, socks5.NS, h.pattern.Source("stream.bin", size), true)
		if err != nil {
			return err
		}
		el = t.Elapsed
	} else {
		c.Note = "Jingle session + S5B stream into the bench's sink application (sha-256 both ends, no disk)"
		r, err := sendStream(ctx, alice, bob, socks5.NS, h.pattern, size)
		if err != nil {
			return err
		}
		el = r.Elapsed
	}
	c.PeakRSSMB = peakMB()
	c.MBPerS = f64(MBPerS(size, el))
	return nil
}
