package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jinglekit/jinglekit/cmd/jinglectl/internal/agent"
)

// redrawInterval is the least time between two redraws of the bars.
const redrawInterval = 100 * time.Millisecond

// renderer shows the events of transfers.
type renderer interface {
	event(e agent.Event)
	// finish draws the final state.
	finish()
	// declinedBecause sets what the lines about declined offers say of
	// the policy ("mutual roster contacts", the --accept-from list).
	declinedBecause(policy string)
}

// newRenderer picks the output: JSON lines, or text with progress bars on
// a terminal (standard error), or plain text. Quiet text shows only the
// errors.
func newRenderer(e env, cmd string, jsonOut, quiet bool) renderer {
	if jsonOut {
		return &jsonRenderer{enc: json.NewEncoder(e.stdout)}
	}
	r := &textRenderer{out: e.stdout, errw: e.stderr, cmd: cmd, bars: map[string]*bar{}}
	if quiet {
		r.out = io.Discard
		return r
	}
	if f, ok := e.stderr.(*os.File); ok && e.isTerminal(f) {
		r.tty = f
		r.width = terminalWidth(f)
		r.outTTY = e.isTerminal(e.stdout)
	}
	return r
}

// jsonRenderer writes one JSON object per event and line.
type jsonRenderer struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (r *jsonRenderer) event(e agent.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	_ = r.enc.Encode(e)
}

func (r *jsonRenderer) finish() {}

func (r *jsonRenderer) declinedBecause(string) {}

// bar is the state of one file.
type bar struct {
	id, name, peer string
	dir            string
	size, bytes    int64
	rate, eta      float64
	state          string
	final          bool
	failed         bool
	declined       string // why this side declined it
}

// textRenderer draws a progress bar per file on a terminal, or prints a
// line per finished file otherwise.
type textRenderer struct {
	mu       sync.Mutex
	out      io.Writer
	errw     io.Writer
	cmd      string
	tty      *os.File
	outTTY   bool // standard output is a terminal too
	width    int
	bars     map[string]*bar
	region   []*bar // bars still redrawn, in order
	drawn    int    // lines of the region on screen
	lastDraw time.Time
	errors   []string
	policy   string // who is allowed, for the lines about declined offers
}

func (r *textRenderer) declinedBecause(policy string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.policy = policy
}

func (r *textRenderer) event(e agent.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e.ID == "" {
		return
	}
	// Names, JIDs and reasons come from the peer: never write them raw.
	e.File, e.Peer, e.Path, e.Error = safeText(e.File), safeText(e.Peer), safeText(e.Path), safeText(e.Error)
	e.Transport, e.Route, e.Outcome, e.Note = safeText(e.Transport), safeText(e.Route), safeText(e.Outcome), safeText(e.Note)
	b := r.bars[e.ID]
	if b == nil {
		b = &bar{id: e.ID, name: e.File, peer: e.Peer, dir: e.Direction, size: -1, state: "offered"}
		r.bars[e.ID] = b
		r.region = append(r.region, b)
	}
	if e.File != "" {
		b.name = e.File
	}
	if e.Peer != "" {
		b.peer = e.Peer
	}
	if e.Size > 0 {
		b.size = e.Size
	}
	if e.Bytes > 0 {
		b.bytes = e.Bytes
	}
	switch e.Event {
	case agent.EventQueued:
		b.state = "queued"
	case agent.EventAccepted:
		b.state = "accepted"
	case agent.EventDeclined:
		if e.Direction == agent.Receive {
			b.declined = e.Error
		}
	case agent.EventTransport:
		b.state = "via " + routeOrTransport(e)
	case agent.EventTransportFailed:
		b.state = e.Transport + " failed"
	case agent.EventProgress:
		b.rate, b.eta = e.Rate, e.ETA
		if b.size > 0 && b.bytes >= b.size {
			b.state = "verifying"
		}
	case agent.EventRetry:
		b.state = fmt.Sprintf("retry in %.0fs (%s)", e.RetryIn, e.Outcome)
	case agent.EventDone:
		b.final = true
		b.state = "verified"
		if e.Hash != nil {
			b.state = e.Hash.Algo + " ok"
		}
		if b.size < 0 {
			b.size = e.Bytes
		}
		if e.Note != "" {
			b.state += " (from byte 0)"
		}
		if r.tty == nil || !r.outTTY {
			fmt.Fprintln(r.out, doneLine(e))
		}
	case agent.EventError:
		b.final, b.failed = true, true
		b.state = e.Outcome
		line := fmt.Sprintf("jinglectl: %s: %s: %s", r.cmd, e.File, oneLine(e.Error))
		if b.dir == agent.Receive {
			// Say who sent it, and why it was declined.
			why := oneLine(e.Error)
			if b.declined != "" {
				why = "declined: " + b.declined
				if r.policy != "" {
					why += " (allowed: " + r.policy + ")"
				}
			}
			line = fmt.Sprintf("jinglectl: %s: %s from %s: %s", r.cmd, e.File, b.peer, why)
		}
		if r.tty == nil {
			fmt.Fprintln(r.errw, line)
		} else {
			r.errors = append(r.errors, line)
		}
	}
	if r.tty == nil {
		return
	}
	if e.Event == agent.EventProgress && time.Since(r.lastDraw) < redrawInterval {
		return
	}
	r.drawLocked()
}

// doneLine describes a file that arrived verified.
func doneLine(e agent.Event) string {
	verb, prep := "sent", "to"
	if e.Direction == agent.Receive {
		verb, prep = "received", "from"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s (%s) %s %s", verb, e.File, agent.FormatSize(e.Size), prep, e.Peer)
	if e.Direction == agent.Receive && e.Path != "" {
		fmt.Fprintf(&b, " -> %s", e.Path)
	}
	if e.Hash != nil {
		fmt.Fprintf(&b, ", %s %s verified", e.Hash.Algo, e.Hash.Value)
	}
	if t := routeOrTransport(e); t != "" {
		fmt.Fprintf(&b, ", %s", t)
	}
	if e.Offset > 0 {
		fmt.Fprintf(&b, ", resumed at %s", agent.FormatSize(e.Offset))
	}
	if e.Encrypted {
		b.WriteString(", encrypted end to end (OMEMO)")
	}
	fmt.Fprintf(&b, ", %.1fs", e.Duration)
	if e.Note != "" {
		fmt.Fprintf(&b, "; %s", e.Note)
	}
	return b.String()
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", "; ") }

func (r *textRenderer) drawLocked() {
	var b strings.Builder
	if r.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", r.drawn)
	}
	for _, br := range r.region {
		b.WriteString("\r\x1b[2K")
		b.WriteString(r.line(br))
		b.WriteString("\n")
	}
	r.drawn = len(r.region)
	// Finished bars at the top leave the region: they stay on screen.
	for len(r.region) > 0 && r.region[0].final {
		r.region = r.region[1:]
		r.drawn--
	}
	io.WriteString(r.tty, b.String())
	r.lastDraw = time.Now()
}

// line renders one bar to the terminal width:
//
//	NAME      [=====>      ]  45%  1.2 MiB / 2.7 MiB  800 KiB/s ETA 0:02  via s5b
//
// The bar takes what the name, the numbers, the speed and the state leave:
// at least 20 columns from 80 on, at most 40. From 140 columns the speed
// has a column of its own, so that the state stays in place; narrower,
// the state follows the speed (and is cut first at 80).
func (r *textRenderer) line(b *bar) string {
	// " [", "] ", "100%", "  ", "12.3 MiB/45.6 MiB": around the bar.
	const numbers, markW = 2 + 2 + 4 + 2 + 17, 14
	nameW, speedW, eta := 22, 0, "ETA "
	switch {
	case r.width < 100:
		nameW, eta = max(10, r.width/6), ""
	case r.width >= 140:
		nameW, speedW = min(28, r.width/4), 22
	}
	barW := min(40, r.width-1-nameW-numbers-max(speedW, 18)-2-markW)
	if r.width >= 80 {
		barW = max(20, barW)
	}
	barW = max(5, barW)
	name := truncate(b.name, nameW)
	name += strings.Repeat(" ", nameW-utf8.RuneCountInString(name))
	pct := 0.0
	if b.size > 0 {
		pct = float64(b.bytes) / float64(b.size)
	} else if b.final && !b.failed {
		pct = 1
	}
	pct = min(1, max(0, pct))
	fill := int(pct * float64(barW))
	bar := strings.Repeat("=", fill)
	if fill < barW {
		bar += ">" + strings.Repeat(" ", barW-fill-1)
	}
	s := fmt.Sprintf("%s [%s] %3.0f%%  %8s/%-8s", name, bar, pct*100, agent.FormatSize(b.bytes), agent.FormatSize(max(b.size, 0)))
	if !b.final && b.rate > 0 && (b.size < 0 || b.bytes < b.size) {
		s += fmt.Sprintf("  %-*s", speedW, fmt.Sprintf("%s/s %s%s", agent.FormatSize(int64(b.rate)), eta, formatETA(b.eta)))
	} else if speedW > 0 {
		s += "  " + strings.Repeat(" ", speedW)
	}
	mark := b.state
	switch {
	case b.final && b.failed:
		mark = "✗ " + b.state
	case b.final:
		mark = "✓ " + b.state
	}
	s += "  " + mark
	return truncate(strings.TrimRight(s, " "), r.width-1)
}

func formatETA(sec float64) string {
	if sec <= 0 || sec > 99*3600 {
		return "--:--"
	}
	d := time.Duration(sec * float64(time.Second)).Round(time.Second)
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, s)
	}
	return fmt.Sprintf("%d:%02d", m, s)
}

// truncate shortens s to n runes, with an ellipsis.
func truncate(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	rs := []rune(s)
	return string(rs[:n-1]) + "…"
}

func (r *textRenderer) finish() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tty == nil {
		return
	}
	if len(r.region) > 0 || r.drawn > 0 {
		r.drawLocked()
	}
	for _, l := range r.errors {
		fmt.Fprintln(r.errw, l)
	}
	r.errors = nil
}

// routeOrTransport names how a file's bytes went: the route (s5b-direct,
// s5b-proxy, ice-host, ice-relay, ibb) when known, else the transport.
func routeOrTransport(e agent.Event) string {
	if e.Route != "" {
		return e.Route
	}
	return e.Transport
}
