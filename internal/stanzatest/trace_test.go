package stanzatest

import (
	"bytes"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jinglekit/jinglekit/internal/testproc"
)

// traceOf returns the recv events of messages of n bytes taken from data
// at the given offsets, in that order.
func traceOf(data []byte, n int, offsets ...int) Trace {
	var tr Trace
	for i, o := range offsets {
		tr.Events = append(tr.Events, TraceEvent{Ev: "recv", I: i, Len: int64(n), Head: hex.EncodeToString(data[o : o+8])})
	}
	return tr
}

// TestTraceCompare: a trace whose messages arrived in order reads as such;
// two swapped messages, a dropped one and a corrupted one (seen only with
// the dump of the received bytes) are found at their offsets, with the
// sent offset each one holds.
func TestTraceCompare(t *testing.T) {
	const msg = 1024
	sent := make([]byte, 8*msg)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range sent {
		sent[i] = byte(r.Uint32())
	}
	at := bytes.NewReader(sent)
	size := int64(len(sent))

	got := traceOf(sent, msg, 0, 1024, 2048, 3072, 4096, 5120, 6144, 7168).Compare(at, size)
	if !strings.Contains(got, "every message holds the sent bytes at its offset") || !strings.Contains(got, "8192 of 8192 bytes") {
		t.Errorf("in order: %s", got)
	}

	got = traceOf(sent, msg, 0, 2048, 1024, 3072, 4096, 5120, 6144, 7168).Compare(at, size)
	for _, want := range []string{"first difference in the message at offset 1024", "2 messages misplaced",
		"#1 (offset 1024, 1024 bytes) holds the bytes sent at 2048", "#2 (offset 2048, 1024 bytes) holds the bytes sent at 1024"} {
		if !strings.Contains(got, want) {
			t.Errorf("swapped: %q lacks %q", got, want)
		}
	}

	got = traceOf(sent, msg, 0, 1024, 3072, 4096, 5120, 6144, 7168).Compare(at, size)
	for _, want := range []string{"7168 of 8192 bytes", "first difference in the message at offset 2048", "5 messages misplaced",
		"#2 (offset 2048, 1024 bytes) holds the bytes sent at 3072"} {
		if !strings.Contains(got, want) {
			t.Errorf("dropped: %q lacks %q", got, want)
		}
	}

	// Growing messages (jinglekit's start at 4 KiB): the second and third
	// swapped are found where they were sent, not a multiple of their
	// length away.
	var grow Trace
	for i, m := range [][2]int{{0, 512}, {1536, 2048}, {512, 1024}, {3584, 4608}} {
		grow.Events = append(grow.Events, TraceEvent{Ev: "recv", I: i, Len: int64(m[1]), Head: hex.EncodeToString(sent[m[0] : m[0]+8])})
	}
	got = grow.Compare(at, size)
	for _, want := range []string{"first difference in the message at offset 512", "2 messages misplaced",
		"#1 (offset 512, 2048 bytes) holds the bytes sent at 1536", "#2 (offset 2560, 1024 bytes) holds the bytes sent at 512"} {
		if !strings.Contains(got, want) {
			t.Errorf("growing, swapped: %q lacks %q", got, want)
		}
	}

	// A message whose first bytes are right but whose middle is not: only
	// the dump shows it.
	recv := bytes.Clone(sent)
	recv[5*msg+100] ^= 1
	dir := t.TempDir()
	tr := traceOf(sent, msg, 0, 1024, 2048, 3072, 4096, 5120, 6144, 7168)
	if got := tr.Compare(at, size); !strings.Contains(got, "every message holds") {
		t.Errorf("corrupted, without the dump: %s", got)
	}
	tr.Dump = filepath.Join(dir, "received.bin")
	if err := os.WriteFile(tr.Dump, recv, 0o600); err != nil {
		t.Fatal(err)
	}
	got = tr.Compare(at, size)
	for _, want := range []string{"first difference in the message at offset 5120", "1 messages misplaced",
		"#5 (offset 5120, 1024 bytes) holds the bytes sent at 5120", "received bytes in " + tr.Dump} {
		if !strings.Contains(got, want) {
			t.Errorf("corrupted: %q lacks %q", got, want)
		}
	}
}

// TestReadTrace: the JSON lines of trace.js are read back, and the dump is
// looked for next to the trace (where Keep moves it), not where it was
// written.
func TestReadTrace(t *testing.T) {
	dir := t.TempDir()
	lines := `{"t":1.5,"ev":"pc-datachannel"}
{"t":2,"ev":"recv","i":0,"len":16384,"head":"0011223344556677"}
{"t":9,"ev":"verdict","sid":"s1","ok":false,"actual":"aa","messages":1,"offered":["sha-1=bb"]}
{"t":9.5,"ev":"dumped","path":"/elsewhere/received-s1.bin"}
not json
`
	if err := os.WriteFile(filepath.Join(dir, "trace-receive-42.jsonl"), []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	tr, err := readTrace(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Events) != 4 || tr.Events[1].Len != 16384 || tr.Events[2].OK || tr.Events[2].Actual != "aa" {
		t.Errorf("events %+v", tr.Events)
	}
	if want := filepath.Join(dir, "received-s1.bin"); tr.Dump != want {
		t.Errorf("dump %q, want %q", tr.Dump, want)
	}
	if _, err := readTrace(t.TempDir()); err == nil {
		t.Error("an empty directory read as a trace")
	}
}

// TestWrtcReorder: a message dispatched before the channel's open event is
// wrtc's reorder (as captured on 2026-12-06: sent message 7 first, then
// open, then 0–6); a trace where open comes first, or with no message, is
// not.
func TestWrtcReorder(t *testing.T) {
	ev := func(names ...string) Trace {
		var tr Trace
		for _, n := range names {
			tr.Events = append(tr.Events, TraceEvent{Ev: n})
		}
		return tr
	}
	for _, c := range []struct {
		tr   Trace
		want bool
	}{
		{ev("pc-datachannel", "recv", "dc-open", "recv", "recv"), true},
		{ev("pc-datachannel", "dc-open", "recv", "recv"), false},
		{ev("pc-datachannel", "dc-open"), false},
		{ev(), false},
	} {
		if got := c.tr.WrtcReorder(); got != c.want {
			t.Errorf("%+v: WrtcReorder = %v, want %v", c.tr.Events, got, c.want)
		}
	}
}

// TestKeep: Keep moves the peer's trace into a new directory named after
// its command, with its output and its --log file, and the peer then
// reads its trace from there.
func TestKeep(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	trace := filepath.Join(tmp, "run", "trace")
	if err := os.MkdirAll(trace, 0o755); err != nil {
		t.Fatal(err)
	}
	line := `{"t":1,"ev":"recv","i":0,"len":8,"head":"0001020304050607"}` + "\n"
	if err := os.WriteFile(filepath.Join(trace, "trace-receive-1.jsonl"), []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(tmp, "jingle-log.txt")
	if err := os.WriteFile(logFile, []byte("<jingle/>"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &Peer{args: []string{"receive", "--log", logFile}, name: "receive", trace: trace,
		stdout: &testproc.Output{}, stderr: &testproc.Output{}}
	_, _ = p.stdout.Write([]byte("out"))
	_, _ = p.stderr.Write([]byte("err"))
	dst, err := p.Keep()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(filepath.Base(dst), "jinglekit-stanza-receive-") || filepath.Dir(dst) != tmp {
		t.Errorf("kept in %s, want %s/jinglekit-stanza-receive-…", dst, tmp)
	}
	for name, want := range map[string]string{"stdout": "out", "stderr": "err", "jingle.log": "<jingle/>"} {
		if b, err := os.ReadFile(filepath.Join(dst, name)); err != nil || string(b) != want {
			t.Errorf("%s: %q, %v; want %q", name, b, err, want)
		}
	}
	if _, err := os.Stat(trace); !os.IsNotExist(err) {
		t.Errorf("the trace is still at %s (%v)", trace, err)
	}
	tr, err := p.Trace()
	if err != nil || len(tr.Events) != 1 || tr.Events[0].Ev != "recv" {
		t.Errorf("trace after Keep: %+v, %v", tr, err)
	}
}
