package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"hash"
	"io"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"go.uber.org/goleak"
)

// shortReader returns at most the next of sizes bytes per Read, in turn,
// so that the receivers see reads shorter than a chunk and not aligned
// with the hash pipe's blocks.
type shortReader struct {
	r     io.Reader
	sizes []int
	i     int
}

func (s *shortReader) Read(b []byte) (int, error) {
	n := s.sizes[s.i%len(s.sizes)]
	s.i++
	return s.r.Read(b[:min(n, len(b))])
}

// TestReceivePipedDigest checks that the pipelined baseline's receiver
// writes and hashes the same bytes as the serial one, in order, whatever
// the sizes of its reads, and ends its hashing goroutine.
func TestReceivePipedDigest(t *testing.T) {
	defer goleak.VerifyNone(t)
	p := NewPattern(3)
	for _, size := range []int64{0, 1, chunk - 1, pipeBlock, pipeBlock + 1, pipeDepth*pipeBlock + 12345, 5<<20 + 7} {
		want := sha256.New()
		if _, err := io.Copy(want, p.Reader(size)); err != nil {
			t.Fatal(err)
		}
		for name, recv := range map[string]func(io.Reader, int64, io.Writer, hash.Hash) recvResult{
			"serial": receiveSerial, "piped": receivePiped} {
			var file bytes.Buffer
			r := &shortReader{r: p.Reader(size), sizes: []int{chunk, 1000, 70000, 1, chunk - 3}}
			res := recv(r, size, &file, sha256.New())
			if res.err != nil || res.n != size {
				t.Fatalf("%s, %d bytes: got %d, %v", name, size, res.n, res.err)
			}
			if !bytes.Equal(res.sum, want.Sum(nil)) {
				t.Errorf("%s, %d bytes: sha-256 %x, want %x", name, size, res.sum, want.Sum(nil))
			}
			if got := sha256.Sum256(file.Bytes()); int64(file.Len()) != size || !bytes.Equal(got[:], want.Sum(nil)) {
				t.Errorf("%s, %d bytes: the file has %d bytes, not the pattern's", name, size, file.Len())
			}
		}
	}
}

// failingWriter fails once it has taken limit bytes.
type failingWriter struct{ n, limit int }

func (w *failingWriter) Write(b []byte) (int, error) {
	if w.n+len(b) > w.limit {
		return 0, errors.New("disk full")
	}
	w.n += len(b)
	return len(b), nil
}

// TestReceivePipedFails checks that a failed read or write ends the
// pipelined receiver with that failure, its hasher ended.
func TestReceivePipedFails(t *testing.T) {
	defer goleak.VerifyNone(t)
	p := NewPattern(4)
	const size = 4 << 20
	boom := errors.New("boom")
	r := io.MultiReader(io.LimitReader(p.Reader(size), 2*pipeBlock+100), iotest.ErrReader(boom))
	res := receivePiped(r, size, io.Discard, sha256.New())
	if !errors.Is(res.err, boom) || res.n != 2*pipeBlock+100 {
		t.Errorf("read failure: got %d bytes, %v; want %d, boom", res.n, res.err, 2*pipeBlock+100)
	}
	w := &failingWriter{limit: 3*pipeBlock + 5}
	res = receivePiped(p.Reader(size), size, w, sha256.New())
	if res.err == nil || res.err.Error() != "disk full" || res.sum != nil {
		t.Errorf("write failure: got %v, sum %x", res.err, res.sum)
	}
}

// gatedHash is a sha-256 whose first Write waits for release; hashed
// counts the bytes whose Write returned.
type gatedHash struct {
	hash.Hash
	release chan struct{}
	hashed  atomic.Int64
}

func (g *gatedHash) Write(b []byte) (int, error) {
	<-g.release
	n, err := g.Hash.Write(b)
	g.hashed.Add(int64(n))
	return n, err
}

// aheadReader records how far reading got ahead of hashing.
type aheadReader struct {
	r     io.Reader
	h     *gatedHash
	read  int64
	ahead int64
}

func (a *aheadReader) Read(b []byte) (int, error) {
	n, err := a.r.Read(b)
	a.read += int64(n)
	a.ahead = max(a.ahead, a.read-a.h.hashed.Load())
	return n, err
}

// TestReceivePipedDepth checks that the receiver holds at most pipeDepth
// blocks that are not hashed yet: with the hasher held at its first
// block, it stops reading after pipeDepth blocks. Reading is released
// after a while; a bound that does not hold is caught if the receiver
// reads on within that while, and a bound that holds passes however
// slow the machine.
func TestReceivePipedDepth(t *testing.T) {
	defer goleak.VerifyNone(t)
	p := NewPattern(5)
	const size = 8 << 20
	g := &gatedHash{Hash: sha256.New(), release: make(chan struct{})}
	timer := time.AfterFunc(200*time.Millisecond, func() { close(g.release) })
	defer timer.Stop()
	r := &aheadReader{r: p.Reader(size), h: g}
	res := receivePiped(r, size, io.Discard, g)
	if res.err != nil || res.n != size {
		t.Fatalf("got %d, %v", res.n, res.err)
	}
	if r.ahead > pipeDepth*pipeBlock {
		t.Errorf("read %d bytes ahead of the hasher, want at most %d (%d blocks)", r.ahead, pipeDepth*pipeBlock, pipeDepth)
	}
	want := sha256.New()
	io.Copy(want, p.Reader(size))
	if !bytes.Equal(res.sum, want.Sum(nil)) {
		t.Error("sha-256 differs")
	}
}

// TestTCPCopyPipelined runs the pipelined baseline end to end over
// loopback TCP to a file: tcpCopy fails when the two ends' digests
// differ.
func TestTCPCopyPipelined(t *testing.T) {
	defer goleak.VerifyNone(t)
	p := NewPattern(6)
	for _, o := range []tcpOpts{{hash: true}, {hash: true, fileDir: t.TempDir()}, {hash: true, pipelined: true, fileDir: t.TempDir()}} {
		if _, err := tcpCopy(context.Background(), p, 6<<20+3, o); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
}
