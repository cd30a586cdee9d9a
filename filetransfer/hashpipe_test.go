package filetransfer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"hash"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jinglekit/jinglekit/internal/goroutines"
	"github.com/jinglekit/jinglekit/jingle"
)

// pattern repeats in the data a streamConn gives: patternByte(i) is its
// byte i.
var pattern = func() []byte {
	b := make([]byte, patternLen)
	for i := range b {
		b[i] = byte(i*7 + i>>9)
	}
	return b
}()

// patternLen is not a multiple of a chunk.
const patternLen = 1<<20 + 3

func patternByte(i int64) byte { return pattern[i%patternLen] }

// streamConn is a stream whose data is always there: every Read fills its
// buffer (up to size bytes, then io.EOF, or failAt's error), and counts.
type streamConn struct {
	net.Conn // nil: only what the worker calls is implemented
	size     int64
	failAt   int64 // a Read past this many bytes fails (0: never)
	off      int64
	reads    atomic.Int64
	closed   atomic.Bool
}

var errCut = errors.New("test: the peer stopped mid-stream")

func (c *streamConn) Read(b []byte) (int, error) {
	c.reads.Add(1)
	if c.failAt > 0 && c.off >= c.failAt {
		return 0, errCut
	}
	if c.off >= c.size {
		return 0, io.EOF
	}
	n := int64(len(b))
	if c.size-c.off < n {
		n = c.size - c.off
	}
	for i := int64(0); i < n; {
		at := (c.off + i) % patternLen
		i += int64(copy(b[i:n], pattern[at:]))
	}
	c.off += n
	return int(n), nil
}

func (c *streamConn) SetReadDeadline(time.Time) error { return nil }
func (c *streamConn) Close() error                    { c.closed.Store(true); return nil }

// gatedHash is a sha-256 whose first Write of a chunk or more (a pipe
// block, or a chunk hashed by the worker itself) waits until open is
// closed, after telling entered.
type gatedHash struct {
	hash.Hash
	once    sync.Once
	entered chan struct{}
	open    chan struct{}
}

func (g *gatedHash) Write(b []byte) (int, error) {
	if len(b) >= chunkSize {
		g.once.Do(func() {
			close(g.entered)
			<-g.open
		})
	}
	return g.Hash.Write(b)
}

// newTestReceiving returns a receiving worker reading conn into a .part
// in a temporary directory, for a file of length bytes, hashing with h.
func newTestReceiving(t testing.TB, conn net.Conn, length int64, h hash.Hash) (*receiving, *engine, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	path := filepath.Join(t.TempDir(), "f.part")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	e := &engine{ctx: ctx, log: slog.New(slog.DiscardHandler), t: Timeouts{}.withDefaults(), msgs: make(chan workerMsg, 4)}
	x := &xfer{key: jingle.ContentKey{Name: "f"}, length: length, size: length, ctx: ctx, cancel: cancel, part: &partFile{f: f, part: path}}
	hs := &hashSet{algos: []string{SHA256}, hs: []hash.Hash{h}}
	pool := &sync.Pool{}
	r := &receiving{e: e, x: x, conn: conn, hs: hs, limit: 1 << 40, rb: recvBuf{pool: pool, smallPool: &sync.Pool{}}}
	return r, e, path
}

// waitFor polls cond until it holds, for at most 10 s.
func waitFor(cond func() bool) bool {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// waitingInGet counts the goroutines waiting in a hash pipe's get for
// the hasher.
func waitingInGet() int {
	var b strings.Builder
	_ = pprof.Lookup("goroutine").WriteTo(&b, 2)
	n := 0
	for _, g := range strings.Split(b.String(), "\n\n") {
		if strings.Contains(g, "filetransfer.(*hashPipe).get") && strings.Contains(g, "sync.(*Cond).Wait") {
			n++
		}
	}
	return n
}

// hashersRunning counts the goroutines of hash pipes.
func hashersRunning() int { return goroutines.In("filetransfer.(*hashPipe).hash") }

// TestHashingOverlapsReading: while a large file streams, the worker goes
// on reading and writing while a block is hashed, with at most pipeDepth
// blocks out, and the digest and the file are those of the data. The hash
// of the first block is held until the worker has read more: on one
// goroutine it never does.
func TestHashingOverlapsReading(t *testing.T) {
	const size = 8<<20 + 123
	conn := &streamConn{size: size}
	g := &gatedHash{Hash: sha256.New(), entered: make(chan struct{}), open: make(chan struct{})}
	r, e, path := newTestReceiving(t, conn, size, g)
	finished := make(chan bool, 1)
	go func() { finished <- r.resume() }()

	// The first Read fills a trickle buffer, hashed at once; the next
	// ones fill the first block, the one held.
	<-g.entered
	const perBlock = pipeBlock / chunkSize
	const held = 1 + perBlock // reads until the held block was handed over
	if !waitFor(func() bool { return conn.reads.Load() > held }) {
		t.Errorf("nothing was read while a block was hashed: %d reads", conn.reads.Load())
	} else if !waitFor(func() bool { return waitingInGet() == 1 }) {
		t.Errorf("the worker did not wait for the hasher with a block being hashed")
	} else if n := conn.reads.Load(); n != held+(pipeDepth-1)*perBlock {
		// The hasher holds one block; the worker filled pipeDepth-1 more.
		t.Errorf("%d reads while a block was hashed, want %d (pipeDepth %d)", n-held, (pipeDepth-1)*perBlock, pipeDepth)
	}
	close(g.open)

	if !<-finished {
		t.Fatal("the worker parked on a stream that cannot park")
	}
	m := <-e.msgs
	if m.kind != msgDataDone || m.n != size {
		t.Fatalf("worker reported %v after %d bytes (err %v), want data done after %d", m.kind, m.n, m.err, size)
	}
	want := sha256.New()
	data := make([]byte, size)
	for i := range data {
		data[i] = patternByte(int64(i))
	}
	want.Write(data)
	if !bytes.Equal(m.sums[0].Sum, want.Sum(nil)) {
		t.Errorf("digest %x, want %x", m.sums[0].Sum, want.Sum(nil))
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("the .part differs from the data (%d of %d bytes, %v)", len(got), len(data), err)
	}
	if !waitFor(func() bool { return hashersRunning() == 0 }) {
		t.Errorf("%d hashers still running after the worker finished", hashersRunning())
	}
}

// TestHashPipeStopsOnFailure: a peer that stops mid-stream while chunks
// wait for the hasher fails the file, and the worker returns with no
// hasher left; a small file is hashed on the worker's goroutine.
func TestHashPipeStopsOnFailure(t *testing.T) {
	const size = 8 << 20
	conn := &streamConn{size: size, failAt: 1 << 20}
	g := &gatedHash{Hash: sha256.New(), entered: make(chan struct{}), open: make(chan struct{})}
	r, e, _ := newTestReceiving(t, conn, size, g)
	finished := make(chan bool, 1)
	go func() { finished <- r.resume() }()
	<-g.entered
	close(g.open)
	if !<-finished {
		t.Fatal("the worker parked on a stream that cannot park")
	}
	m := <-e.msgs
	if m.kind != msgFailed || !errors.Is(m.err, errCut) {
		t.Fatalf("worker reported %v (%v), want the failure of the read", m.kind, m.err)
	}
	if !waitFor(func() bool { return hashersRunning() == 0 }) {
		t.Errorf("%d hashers still running after the worker failed", hashersRunning())
	}

	small := &streamConn{size: pipeMin - 1}
	r, e, _ = newTestReceiving(t, small, pipeMin-1, sha256.New())
	if !r.resume() || r.pipe != nil {
		t.Errorf("a file of %d bytes went through a hash pipe", pipeMin-1)
	}
	if m := <-e.msgs; m.kind != msgDataDone {
		t.Errorf("small file: %v (%v)", m.kind, m.err)
	}
}

// BenchmarkReceive runs a receiving worker over a stream that always has
// data, into a .part, with sha-256: the receiver's cost per byte.
func BenchmarkReceive(b *testing.B) {
	const size = 64 << 20
	b.SetBytes(size)
	var before, after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	for b.Loop() {
		b.StopTimer()
		conn := &streamConn{size: size}
		r, e, _ := newTestReceiving(b, conn, size, sha256.New())
		b.StartTimer()
		r.resume()
		<-e.msgs
	}
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(size)/float64(b.N), "cpu-ns/B")
}
