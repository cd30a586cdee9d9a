package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/transports/ibb"
)

// Sizes of each idle session's file: the first idleFirst bytes flow at
// once, the rest only when the harness releases the senders.
const (
	idleSize  = 16 << 10
	idleFirst = 4 << 10
)

// gate holds slow senders after their first bytes until it is opened.
type gate struct {
	open    chan struct{}
	once    sync.Once
	blocked atomic.Int64
	all     chan struct{} // closed when want senders are blocked
	want    int64
}

func newGate(want int) *gate {
	return &gate{open: make(chan struct{}), all: make(chan struct{}), want: int64(want)}
}

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

// source is a file of size bytes of p that stops after first bytes until
// the gate opens: a slow sender, whose session is established and idle.
func (g *gate) source(ctx context.Context, p Pattern, name string) filetransfer.Source {
	src := p.Source(name, idleSize)
	open := src.Open
	src.Open = func() (io.ReadCloser, error) {
		r, err := open()
		if err != nil {
			return nil, err
		}
		return &slowReader{ReadCloser: r, ctx: ctx, g: g, first: idleFirst}, nil
	}
	return src
}

type slowReader struct {
	io.ReadCloser
	ctx     context.Context
	g       *gate
	first   int
	blocked bool
}

func (r *slowReader) Read(b []byte) (int, error) {
	if r.first > 0 {
		n, err := r.ReadCloser.Read(b[:min(len(b), r.first)])
		r.first -= n
		return n, err
	}
	if !r.blocked {
		r.blocked = true
		if r.g.blocked.Add(1) == r.g.want {
			close(r.g.all)
		}
	}
	select {
	case <-r.g.open:
	case <-r.ctx.Done():
		return 0, r.ctx.Err()
	}
	return r.ReadCloser.Read(b)
}

// idle opens -idle sessions at once from alice to bob over IBB (no socket
// per session), each a slow sender that stops after its first 4 KiB, and
// measures the peak RSS and goroutines while all of them are established
// and idle; then it lets them finish and checks that the goroutines return
// to the count before.
func (h *harness) idle(ctx context.Context, c *Case) error {
	ctx, cancel := h.caseContext(ctx)
	defer cancel()
	n := h.o.idle
	c.Count, c.Bytes = n, int64(n)*idleSize
	lim := jingle.Limits{MaxSessions: 2*n + 64, MaxSessionsPerPeer: 2*n + 64, MaxSessionsPerAccount: 2*n + 64, MaxPending: 1 << 16}
	alice, bob, err := loginPair(ctx, h.env, peerConfig{resource: "idle", limits: lim}, h.log)
	if err != nil {
		return err
	}
	defer alice.close()
	defer bob.close()
	if _, err := sendFile(ctx, alice, bob, ibb.NSTransport, h.pattern.Source("warmup.bin", idleSize), false); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	before, _ := settleGoroutines(-1, 2*time.Second)
	resetPeak()
	beforeBytes, beforeRSS := goMem(newSamples()), rssMB()
	sm := startSampler(h.o.goroutineProfile)
	g := newGate(n)
	defer g.release()
	start := time.Now()
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := sendFile(ctx, alice, bob, ibb.NSTransport, g.source(ctx, h.pattern, fmt.Sprintf("idle-%d.bin", i)), false)
			errs <- err
		}()
	}
	var failed []error
	select {
	case <-g.all:
	case err := <-errs:
		// A transfer ended before every sender was idle: it failed.
		failed = append(failed, fmt.Errorf("before all sessions were idle: %w", err))
		n--
	}
	established := time.Since(start)
	idleG := runtime.NumGoroutine()
	g.release()
	for range n {
		if err := <-errs; err != nil {
			failed = append(failed, err)
		}
	}
	wall := time.Since(start)
	perr := sm.stopSampling()
	c.PeakRSSMB = peakMB()
	sm.perSession(c, c.Count, before, beforeBytes, beforeRSS)
	c.MS = f64(ms(established))
	c.Note = fmt.Sprintf("%d filetransfer sessions over IBB at once, each a slow sender stopped after %s of %s: all established and idle after %.2f s (%d goroutines), finished %.2f s after the start",
		c.Count, FormatSize(idleFirst), FormatSize(idleSize), established.Seconds(), idleG, wall.Seconds())
	after, back := settleGoroutines(before, 10*time.Second)
	c.Goroutines = &Goroutines{Before: before, Peak: sm.peakG, After: after, Back: back}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d sessions failed, first: %w", len(failed), c.Count, failed[0])
	}
	return perr
}
