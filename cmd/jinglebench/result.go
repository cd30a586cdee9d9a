package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// SchemaVersion names the layout of the JSON report; it changes when a
// field changes meaning or disappears (adding fields does not change it).
const SchemaVersion = "jinglekit-bench/1"

// Report is the JSON document written with -json or BENCH_JSON.
type Report struct {
	Schema   string    `json:"schema"`
	Started  time.Time `json:"started"`
	Duration float64   `json:"duration_s"`
	Smoke    bool      `json:"smoke"`
	Machine  Machine   `json:"machine"`
	Params   Params    `json:"params"`
	Cases    []Case    `json:"cases"`
}

// Machine describes where the report was made.
type Machine struct {
	CPU     string `json:"cpu"`
	Cores   int    `json:"cores"`
	Go      string `json:"go"`
	OS      string `json:"os"`
	Prosody string `json:"prosody,omitempty"`
}

// Params are the sizes and counts of the run.
type Params struct {
	Size           int64 `json:"size"`
	IBBSize        int64 `json:"ibb_size"`
	Rounds         int   `json:"rounds"`
	IBBRounds      int   `json:"ibb_rounds"`
	Sessions       int   `json:"sessions"`
	Concurrent     int   `json:"concurrent"`
	ConcurrentSize int64 `json:"concurrent_size"`
	Idle           int   `json:"idle,omitempty"`
	StreamSize     int64 `json:"stream_size"`
}

// Case is one measurement. Name, the figure (MBPerS or MS), Baseline and
// Ratio are always present in the JSON (null when they do not apply).
type Case struct {
	// Name is "GROUP/CASE", the group being baseline, throughput, latency,
	// concurrency or memory.
	Name string `json:"name"`
	// MBPerS is a rate in 10^6 bytes per second (median of the rounds).
	MBPerS *float64 `json:"mb_per_s"`
	// MS is a time in milliseconds: the p50 of a latency, the wall time of
	// a concurrency run.
	MS *float64 `json:"ms"`
	// P95MS is the 95th percentile of a latency.
	P95MS *float64 `json:"p95_ms,omitempty"`
	// Baseline is the Name of the case this one is compared with, "" for
	// none.
	Baseline string `json:"baseline"`
	// Ratio is this case's figure divided by the baseline's (MBPerS by
	// MBPerS, MS by MS), null without a baseline.
	// With paired rounds (RatioRounds), Ratio is the median of the
	// per-round ratios instead.
	Ratio *float64 `json:"ratio"`

	Bytes int64 `json:"bytes,omitempty"`
	Count int   `json:"count,omitempty"`
	// Rounds are the rates of the rounds; BaselineRounds the baseline's
	// rate measured just before each round, RatioRounds their ratios
	// (Ratio is then the median of RatioRounds).
	Rounds         []float64 `json:"rounds,omitempty"`
	BaselineRounds []float64 `json:"baseline_rounds,omitempty"`
	RatioRounds    []float64 `json:"ratio_rounds,omitempty"`
	// Also are the case's ratios to further baselines, each paired with
	// the rounds like Baseline (measured just after each round); they
	// bear no target.
	Also    []Comparison `json:"also,omitempty"`
	Samples int          `json:"samples,omitempty"`
	// PeakRSSMB is the peak resident memory (VmHWM) of the process that
	// ran the case, in MB (10^6 bytes); Process says which process that was.
	PeakRSSMB  *float64    `json:"peak_rss_mb,omitempty"`
	Process    string      `json:"process,omitempty"`
	CPU        *CPUUse     `json:"cpu,omitempty"`
	Goroutines *Goroutines `json:"goroutines,omitempty"`
	PerSession *PerSession `json:"per_session,omitempty"`
	Target     *Target     `json:"target,omitempty"`
	Note       string      `json:"note,omitempty"`
	Error      string      `json:"error,omitempty"`
}

// Comparison is a case's ratio to a further baseline (Case.Also).
type Comparison struct {
	// Baseline is the Name of the baseline.
	Baseline string `json:"baseline"`
	// Ratio is the median of RatioRounds, null when there are none.
	Ratio *float64 `json:"ratio"`
	// BaselineRounds are the baseline's rates measured just after each
	// round of the case, RatioRounds the case's rates divided by them.
	BaselineRounds []float64 `json:"baseline_rounds,omitempty"`
	RatioRounds    []float64 `json:"ratio_rounds,omitempty"`
}

// CPUUse is the CPU time used during a case.
type CPUUse struct {
	WallS float64 `json:"wall_s"`
	// SelfS is the bench process's CPU time: the sending peer in the
	// throughput cases. ReceiverS is the receiving peer's, in its own
	// process, and ProsodyS the server's. Divided by WallS they are
	// fractions of one core.
	SelfS     float64  `json:"self_s"`
	ReceiverS *float64 `json:"receiver_s,omitempty"`
	ProsodyS  *float64 `json:"prosody_s,omitempty"`
}

// ReceiverCore is the receiver's CPU time as a fraction of one core, NaN
// when unknown.
func (u *CPUUse) ReceiverCore() float64 {
	if u.ReceiverS == nil {
		return math.NaN()
	}
	return *u.ReceiverS / u.WallS
}

// SelfCore and ProsodyCore are the CPU times as fractions of one core.
func (u *CPUUse) SelfCore() float64 { return u.SelfS / u.WallS }

// ProsodyCore is Prosody's CPU time as a fraction of one core, NaN when
// unknown.
func (u *CPUUse) ProsodyCore() float64 {
	if u.ProsodyS == nil {
		return math.NaN()
	}
	return *u.ProsodyS / u.WallS
}

// Goroutines are the counts around a concurrency run.
type Goroutines struct {
	Before int  `json:"before"`
	Peak   int  `json:"peak"`
	After  int  `json:"after"`
	Back   bool `json:"back_to_baseline"`
}

// PerSession is what one session of a concurrency case costs at the
// peak: the growth over the counts before the sessions started, divided
// by the number of sessions (both ends of each session when the two
// peers are in the same process).
type PerSession struct {
	Goroutines float64 `json:"goroutines"`
	// GoKB is heap objects + goroutine stacks (runtime/metrics), in kB
	// (10^3 bytes); RSSKB is resident memory (VmHWM against VmRSS before).
	GoKB  float64 `json:"go_kb"`
	RSSKB float64 `json:"rss_kb"`
}

// Target is an acceptance target and whether this run met it.
type Target struct {
	Want string `json:"want"`
	Met  bool   `json:"met"`
}

func f64(v float64) *float64 { return &v }

// ms converts a duration to float milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// figure returns the case's headline number and its unit.
func (c *Case) figure() (float64, string, bool) {
	switch {
	case c.MBPerS != nil:
		return *c.MBPerS, "MB/s", true
	case c.MS != nil:
		return *c.MS, "ms", true
	}
	return 0, "", false
}

// compare sets Ratio from the baseline case, when both have the same kind
// of figure and the case has no paired rounds of its own.
func (c *Case) compare(base *Case) {
	if base == nil || base.Error != "" || c.Error != "" || c.Ratio != nil {
		return
	}
	c.Baseline = base.Name
	v, u, ok := c.figure()
	bv, bu, bok := base.figure()
	if ok && bok && u == bu && bv > 0 {
		c.Ratio = f64(v / bv)
	}
}

// WriteJSON writes the report, indented.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteJSONFile writes the report to path.
func (r *Report) WriteJSONFile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := r.WriteJSON(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// find returns the case named name, or nil.
func (r *Report) find(name string) *Case {
	for i := range r.Cases {
		if r.Cases[i].Name == name {
			return &r.Cases[i]
		}
	}
	return nil
}

// WriteTable prints the cases as an aligned text table.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "case\tresult\tp95\tbaseline\tratio\tpeak RSS\tCPU send/recv/prosody\ttarget\t")
	for i := range r.Cases {
		c := &r.Cases[i]
		res := "-"
		if v, u, ok := c.figure(); ok {
			res = fmt.Sprintf("%.*f %s", decimals(v), v, u)
		}
		if c.Error != "" {
			res = "ERROR"
		}
		p95 := ""
		if c.P95MS != nil {
			p95 = fmt.Sprintf("%.*f ms", decimals(*c.P95MS), *c.P95MS)
		}
		ratio := ""
		if c.Ratio != nil {
			ratio = fmt.Sprintf("%.3g×", *c.Ratio)
		}
		rss := ""
		if c.PeakRSSMB != nil {
			rss = fmt.Sprintf("%.0f MB", *c.PeakRSSMB)
		}
		cpu := ""
		if c.CPU != nil {
			pct := func(v float64) string {
				if math.IsNaN(v) {
					return "?"
				}
				return fmt.Sprintf("%.0f%%", 100*v)
			}
			cpu = pct(c.CPU.SelfCore()) + " / " + pct(c.CPU.ReceiverCore()) + " / " + pct(c.CPU.ProsodyCore())
		}
		target := ""
		if c.Target != nil {
			mark := "MISSED"
			if c.Target.Met {
				mark = "met"
			}
			target = mark + " (" + c.Target.Want + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", c.Name, res, p95, c.Baseline, ratio, rss, cpu, target)
		for _, a := range c.Also {
			// A row of its own under the case: the further baseline and
			// the ratio to it.
			if a.Ratio != nil {
				fmt.Fprintf(tw, "\t\t\t%s\t%.3g×\t\t\t\t\n", a.Baseline, *a.Ratio)
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for i := range r.Cases {
		c := &r.Cases[i]
		var notes []string
		if c.Goroutines != nil {
			g := c.Goroutines
			notes = append(notes, fmt.Sprintf("goroutines %d before, %d peak, %d after (back to baseline: %v)", g.Before, g.Peak, g.After, g.Back))
		}
		if c.Note != "" {
			notes = append(notes, c.Note)
		}
		if c.Error != "" {
			notes = append(notes, "error: "+c.Error)
		}
		if len(notes) > 0 {
			fmt.Fprintf(w, "  %s: %s\n", c.Name, strings.Join(notes, "; "))
		}
	}
	return nil
}

// decimals picks a number of decimals that shows about three significant
// digits.
func decimals(v float64) int {
	switch a := math.Abs(v); {
	case a >= 100:
		return 0
	case a >= 10:
		return 1
	case a >= 1:
		return 2
	}
	return 3
}
