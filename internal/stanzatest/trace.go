package stanzatest

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// traceJS is preloaded into every peer.js (node --require): it records the
// data-channel messages and, on a hash mismatch, the received bytes. See
// the file's header.
//
//go:embed trace.js
var traceJS []byte

// traceFile is the name of traceJS in the harness's copy.
const traceFile = "jinglekit-trace.js"

// EnvTrace is the variable that tells traceJS where to write.
const EnvTrace = "JINGLEKIT_STANZA_TRACE"

// TraceEvent is one line of a peer's trace.
type TraceEvent struct {
	T    float64 `json:"t"`  // milliseconds since the process started
	Ev   string  `json:"ev"` // recv, send, dc-open, pc-datachannel, verdict, dumped, exit…
	I    int     `json:"i"`
	Len  int64   `json:"len"`
	Head string  `json:"head"` // hex of the message's first 8 bytes
	// verdict
	OK      bool     `json:"ok"`
	Actual  string   `json:"actual"`
	Offered []string `json:"offered"`
	// dumped
	Path string `json:"path"`
}

// Trace is what traceJS recorded for one peer.js process.
type Trace struct {
	Events []TraceEvent
	// Dump is the file of the bytes received when StanzaJS found a hash
	// mismatch ("" when it did not).
	Dump string
}

// readTrace reads the traces in dir (one per process run there).
func readTrace(dir string) (Trace, error) {
	var tr Trace
	files, err := filepath.Glob(filepath.Join(dir, "trace-*.jsonl"))
	if err != nil || len(files) == 0 {
		return tr, errors.Join(fmt.Errorf("stanzatest: no trace in %s", dir), err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return tr, err
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var e TraceEvent
			if json.Unmarshal(sc.Bytes(), &e) == nil && e.Ev != "" {
				tr.Events = append(tr.Events, e)
				if e.Ev == "dumped" {
					// where it is now: Keep may have moved it
					tr.Dump = filepath.Join(dir, filepath.Base(e.Path))
				}
			}
		}
	}
	return tr, nil
}

// misplaced is one received message whose bytes are not the sent bytes at
// its offset.
type misplaced struct {
	index  int
	offset int64
	length int64
	from   int64 // the sent offset its first bytes come from; -1 unknown
}

// maxMisplaced is how many misplaced messages Compare describes.
const maxMisplaced = 20

// Compare checks the messages tr received against sent (size bytes) and
// says where they differ: the first differing offset and, for each
// misplaced message, which sent offset it holds (a message reordered,
// duplicated or dropped shows as a shift). With a dump of the received
// bytes each message is compared whole, else by its first 8 bytes.
func (tr Trace) Compare(sent io.ReaderAt, size int64) string {
	var recv []TraceEvent
	var verdict []string
	for _, e := range tr.Events {
		switch e.Ev {
		case "recv":
			recv = append(recv, e)
		case "verdict":
			verdict = append(verdict, fmt.Sprintf("StanzaJS verdict ok=%v: computed %s, offered %s", e.OK, e.Actual, strings.Join(e.Offered, " ")))
		}
	}
	if len(recv) == 0 {
		return "no data-channel message received"
	}
	var dump io.ReaderAt
	if tr.Dump != "" {
		if f, err := os.Open(tr.Dump); err == nil {
			defer f.Close()
			dump = f
		}
	}
	var (
		off   int64
		bad   []misplaced
		first = int64(-1)
	)
	for _, e := range recv {
		if !sameBytes(sent, dump, off, e) {
			if first < 0 {
				first = off
			}
			from := int64(-1)
			if len(bad) < maxMisplaced {
				from = locate(sent, size, off, e)
			}
			bad = append(bad, misplaced{index: e.I, offset: off, length: e.Len, from: from})
		}
		off += e.Len
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d messages, %d of %d bytes received", len(recv), off, size)
	if first < 0 {
		b.WriteString("; every message holds the sent bytes at its offset")
	} else {
		fmt.Fprintf(&b, "; first difference in the message at offset %d; %d messages misplaced:", first, len(bad))
		for i, m := range bad {
			if i == maxMisplaced {
				fmt.Fprintf(&b, ", …")
				break
			}
			if i > 0 {
				b.WriteString(",")
			}
			from := "bytes sent nowhere near"
			if m.from >= 0 {
				from = fmt.Sprintf("the bytes sent at %d", m.from)
			}
			fmt.Fprintf(&b, " #%d (offset %d, %d bytes) holds %s", m.index, m.offset, m.length, from)
		}
	}
	for _, v := range verdict {
		b.WriteString("; " + v)
	}
	if tr.WrtcReorder() {
		b.WriteString("; a message reached JavaScript before the channel's open event: @roamhq/wrtc 0.10.0's reorder (stanzatest's package comment)")
	}
	if tr.Dump != "" {
		fmt.Fprintf(&b, "; received bytes in %s", tr.Dump)
	}
	return b.String()
}

// sameBytes reports whether message e, received at off, holds the sent
// bytes there: all of them when dump (the received stream) is known, else
// its first 8.
func sameBytes(sent, dump io.ReaderAt, off int64, e TraceEvent) bool {
	if dump == nil {
		want := make([]byte, len(e.Head)/2)
		n, _ := sent.ReadAt(want, off)
		return hex.EncodeToString(want[:n]) == e.Head
	}
	got, want := make([]byte, e.Len), make([]byte, e.Len)
	n1, _ := dump.ReadAt(got, off)
	n2, _ := sent.ReadAt(want, off)
	return n1 == n2 && int64(n1) == e.Len && bytes.Equal(got, want)
}

// locateWindow is how far from a message's offset locate looks for its
// bytes.
const locateWindow = 2 << 20

// locate finds the sent offset nearest to off whose first bytes are e's,
// within locateWindow either way (message sizes vary: jinglekit's grow
// from 4 KiB); -1 when none.
func locate(sent io.ReaderAt, size, off int64, e TraceEvent) int64 {
	head, err := hex.DecodeString(e.Head)
	if err != nil || len(head) == 0 {
		return -1
	}
	start := max(0, off-locateWindow)
	win := make([]byte, min(size, off+locateWindow)-start)
	n, _ := sent.ReadAt(win, start)
	win = win[:n]
	best := int64(-1)
	for i := 0; ; {
		j := bytes.Index(win[i:], head)
		if j < 0 {
			return best
		}
		o := start + int64(i+j)
		if best < 0 || abs(o-off) < abs(best-off) {
			best = o
		}
		i += j + 1
	}
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// WrtcReorder reports whether a data-channel message reached JavaScript
// before the channel's open event: the mark of @roamhq/wrtc 0.10.0's
// reorder (see the package comment). The messages libwebrtc delivered
// before the RTCDataChannel object existed wait, with the open event, in
// a DataChannelObserver's queue; one delivered while the constructor
// moves them over is dispatched first, so it comes before "open" and
// ahead of the messages sent before it. A sender cannot cause that: it
// is the order of events inside the receiving process.
func (tr Trace) WrtcReorder() bool {
	for _, e := range tr.Events {
		switch e.Ev {
		case "dc-open":
			return false
		case "recv":
			return true
		}
	}
	return false
}
