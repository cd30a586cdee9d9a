package main

import (
	"bytes"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"sync"
	"time"
)

// goMemMetrics are the runtime/metrics a sampler reads: the heap objects
// (live and not yet swept) and the goroutine stacks, the Go memory that
// grows with the number of sessions.
var goMemMetrics = []string{"/memory/classes/heap/objects:bytes", "/memory/classes/heap/stacks:bytes"}

// sampler records, every few milliseconds, the peak number of goroutines
// and the peak of heap objects + stacks while a concurrency case runs.
// With profile set, it also writes the goroutine profile (debug=1, one
// line per distinct stack) taken at the goroutine peak to that file: the
// stacks say where each session's goroutines are created; and the heap
// profile taken at the same moment to FILE.heap (go tool pprof).
type sampler struct {
	profile string

	stop chan struct{}
	wg   sync.WaitGroup

	// Written by the sampling goroutine, read after stopSampling.
	peakG     int
	peakBytes uint64
	prof      []byte
	heap      []byte
}

// goMem returns heap objects + goroutine stacks in bytes.
func goMem(s []metrics.Sample) uint64 {
	metrics.Read(s)
	var n uint64
	for _, v := range s {
		if v.Value.Kind() == metrics.KindUint64 {
			n += v.Value.Uint64()
		}
	}
	return n
}

func newSamples() []metrics.Sample {
	s := make([]metrics.Sample, len(goMemMetrics))
	for i, name := range goMemMetrics {
		s[i].Name = name
	}
	return s
}

// startSampler starts sampling; stopSampling ends it.
func startSampler(profile string) *sampler {
	sm := &sampler{profile: profile, stop: make(chan struct{}), peakG: runtime.NumGoroutine()}
	samples := newSamples()
	sm.peakBytes = goMem(samples)
	sm.wg.Add(1)
	go func() {
		defer sm.wg.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		profiledAt := 0
		for {
			select {
			case <-sm.stop:
				return
			case <-t.C:
			}
			g := runtime.NumGoroutine()
			sm.peakG = max(sm.peakG, g)
			sm.peakBytes = max(sm.peakBytes, goMem(samples))
			// A profile costs a stop of the world: only when the peak
			// grew by a tenth since the last one.
			if sm.profile != "" && g == sm.peakG && g > profiledAt+profiledAt/10 {
				var b bytes.Buffer
				if pprof.Lookup("goroutine").WriteTo(&b, 1) == nil {
					sm.prof, profiledAt = b.Bytes(), g
				}
				var hb bytes.Buffer
				if pprof.Lookup("heap").WriteTo(&hb, 0) == nil {
					sm.heap = hb.Bytes()
				}
			}
		}
	}()
	return sm
}

// stopSampling ends the sampling and writes the profile, if asked for.
func (sm *sampler) stopSampling() error {
	close(sm.stop)
	sm.wg.Wait()
	if sm.profile == "" || sm.prof == nil {
		return nil
	}
	if err := os.WriteFile(sm.profile+".heap", sm.heap, 0o644); err != nil {
		return err
	}
	return os.WriteFile(sm.profile, sm.prof, 0o644)
}

// perSession fills the per-session figures of c from the sampler's peaks
// against the counts measured before the sessions started.
func (sm *sampler) perSession(c *Case, n, beforeG int, beforeBytes uint64, beforeRSS float64) {
	if n <= 0 {
		return
	}
	ps := &PerSession{Goroutines: float64(sm.peakG-beforeG) / float64(n)}
	if sm.peakBytes > beforeBytes {
		ps.GoKB = float64(sm.peakBytes-beforeBytes) / float64(n) / 1e3
	}
	if c.PeakRSSMB != nil && *c.PeakRSSMB > beforeRSS {
		ps.RSSKB = (*c.PeakRSSMB - beforeRSS) * 1e3 / float64(n)
	}
	c.PerSession = ps
}
