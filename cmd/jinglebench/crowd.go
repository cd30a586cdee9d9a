package main

import (
	"context"
	"fmt"
	"time"
)

// crowd is a concurrency case: n sessions at once from alice to bob, a
// pair of peers logged in for the case.
type crowd struct {
	cfg peerConfig
	// warmNS and warmSize are the transport and size of the warm-up
	// transfer before the measure (first-use allocations, the server's
	// rosters and caches).
	warmNS   string
	warmSize int64
	n        int
	// session runs the i-th session.
	session func(ctx context.Context, alice, bob *peer, i int) error
	// during, if set, runs once every session has started, while they
	// run; start is when the first one started.
	during func(ctx context.Context, start time.Time)
}

// measureCrowd runs the sessions of cr at once and records in c what
// they cost: the peak RSS; the goroutines before, at the peak and after
// (and whether they came back to the count before); and, from the
// sampler's peaks against the counts before, the per-session figures.
// It returns the wall time from the start of the sessions to the end of
// the last one, zero when it failed before they started.
func (h *harness) measureCrowd(ctx context.Context, c *Case, cr crowd) (time.Duration, error) {
	alice, bob, err := loginPair(ctx, h.env, cr.cfg, h.log)
	if err != nil {
		return 0, err
	}
	defer alice.close()
	defer bob.close()
	if _, err := sendFile(ctx, alice, bob, cr.warmNS, h.pattern.Source("warmup.bin", cr.warmSize), false); err != nil {
		return 0, fmt.Errorf("warm-up: %w", err)
	}
	before, _ := settleGoroutines(-1, 2*time.Second)
	resetPeak()
	beforeBytes, beforeRSS := goMem(newSamples()), rssMB()
	sm := startSampler(h.o.goroutineProfile)
	start := time.Now()
	errs := make(chan error, cr.n)
	for i := range cr.n {
		go func() { errs <- cr.session(ctx, alice, bob, i) }()
	}
	if cr.during != nil {
		cr.during(ctx, start)
	}
	var failed []error
	for range cr.n {
		if err := <-errs; err != nil {
			failed = append(failed, err)
		}
	}
	wall := time.Since(start)
	perr := sm.stopSampling()
	c.PeakRSSMB = peakMB()
	sm.perSession(c, cr.n, before, beforeBytes, beforeRSS)
	after, back := settleGoroutines(before, 10*time.Second)
	c.Goroutines = &Goroutines{Before: before, Peak: sm.peakG, After: after, Back: back}
	if len(failed) > 0 {
		return wall, fmt.Errorf("%d of %d sessions failed, first: %w", len(failed), cr.n, failed[0])
	}
	return wall, perr
}
