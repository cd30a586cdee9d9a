package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
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

// idleSetups bounds the sessions being set up at once: the case measures
// established sessions, not a stampede of 10,000 session-initiates on the
// server (on 2 loaded cores, that makes IQs time out).
const idleSetups = 200

// gate holds slow senders after their first bytes until it is opened. A
// sender is settled once it is idle (blocked at the gate) or has failed;
// all is closed when every sender is settled.
type gate struct {
	open    chan struct{}
	once    sync.Once
	settled atomic.Int64
	all     chan struct{}
	want    int64
	setups  chan struct{} // a slot per session being set up
}

func newGate(want int) *gate {
	return &gate{open: make(chan struct{}), all: make(chan struct{}), want: int64(want),
		setups: make(chan struct{}, idleSetups)}
}

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

// sender returns the settle function of one sender: it frees the
// sender's set-up slot and counts it, once.
func (g *gate) sender() func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			<-g.setups
			if g.settled.Add(1) == g.want {
				close(g.all)
			}
		})
	}
}

// source is a file of idleSize bytes of p that stops after idleFirst
// bytes until the gate opens: a slow sender, whose session is established
// and idle. settle is called when it stops.
func (g *gate) source(ctx context.Context, p Pattern, name string, settle func()) filetransfer.Source {
	src := p.Source(name, idleSize)
	open := src.Open
	src.Open = func() (io.ReadCloser, error) {
		r, err := open()
		if err != nil {
			return nil, err
		}
		return &slowReader{ReadCloser: r, ctx: ctx, g: g, first: idleFirst, settle: settle}, nil
	}
	return src
}

type slowReader struct {
	io.ReadCloser
	ctx    context.Context
	g      *gate
	first  int
	settle func()
}

func (r *slowReader) Read(b []byte) (int, error) {
	if r.first > 0 {
		n, err := r.ReadCloser.Read(b[:min(len(b), r.first)])
		r.first -= n
		return n, err
	}
	r.settle()
	select {
	case <-r.g.open:
	case <-r.ctx.Done():
		return 0, r.ctx.Err()
	}
	return r.ReadCloser.Read(b)
}

// idle opens -idle sessions from alice to bob over IBB (no socket per
// session), idleSetups at a time, each a slow sender that stops after its
// first 4 KiB, and measures the peak RSS and goroutines while all of them
// are established and idle; then it lets them finish and checks that the
// goroutines return to the count before (measureCrowd).
func (h *harness) idle(ctx context.Context, c *Case) error {
	ctx, cancel := h.caseContext(ctx)
	defer cancel()
	n := h.o.idle
	c.Count, c.Bytes = n, int64(n)*idleSize
	lim := jingle.Limits{MaxSessions: 2*n + 64, MaxSessionsPerPeer: 2*n + 64, MaxSessionsPerAccount: 2*n + 64, MaxPending: 1 << 16}
	// The first sessions wait idle while the last ones are set up (86 s
	// for 10,000 on 2 loaded cores), longer than the default Idle (2 min)
	// that rightly fails a stalled transfer, and releasing 10,000 senders
	// at once delays some verdicts past the default Verdict (1 min), and
	// some checksums past the default Checksum (1 min: 548 of 10,000 on 2
	// cores at load 15): this case measures idle sessions, not those
	// timeouts.
	cfg := peerConfig{resource: "idle", limits: lim,
		timeouts: filetransfer.Timeouts{Idle: h.o.timeout, Verdict: h.o.timeout, Checksum: h.o.timeout}}
	g := newGate(n)
	defer g.release()
	var established time.Duration
	var idleG int
	var idleRSS float64
	wall, err := h.measureCrowd(ctx, c, crowd{cfg: cfg, warmNS: ibb.NSTransport, warmSize: idleSize, n: n,
		session: func(ctx context.Context, alice, bob *peer, i int) error {
			settle := g.sender()
			select {
			case g.setups <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			src := g.source(ctx, h.pattern, fmt.Sprintf("idle-%d.bin", i), settle)
			_, err := sendFile(ctx, alice, bob, ibb.NSTransport, src, false)
			settle()
			return err
		},
		during: func(ctx context.Context, start time.Time) {
			select {
			case <-g.all:
			case <-ctx.Done():
			}
			established = time.Since(start)
			idleG, idleRSS = runtime.NumGoroutine(), rssMB()
			if p := h.o.goroutineProfile; p != "" {
				if err := writeProfiles(p + ".established"); err != nil {
					h.log.Warn("bench: profile of the idle sessions", "err", err)
				}
			}
			g.release()
		}})
	if wall > 0 {
		c.MS = f64(ms(established))
		c.Note = fmt.Sprintf("%d filetransfer sessions over IBB (set up %d at a time), each a slow sender stopped after %s of %s: all established and idle after %.2f s (%d goroutines, RSS %.0f MB), finished %.2f s after the start",
			c.Count, idleSetups, FormatSize(idleFirst), FormatSize(idleSize), established.Seconds(), idleG, idleRSS, wall.Seconds())
	}
	return err
}

// writeProfiles writes the goroutine profile (debug=1) to file and the
// heap profile to file.heap, now: the idle case's picture of established,
// idle sessions, besides the sampler's at the goroutine peak.
func writeProfiles(file string) error {
	var g, hp bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&g, 1); err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(&hp, 0); err != nil {
		return err
	}
	if err := os.WriteFile(file+".heap", hp.Bytes(), 0o644); err != nil {
		return err
	}
	return os.WriteFile(file, g.Bytes(), 0o644)
}
