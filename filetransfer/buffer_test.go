package filetransfer

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
	"testing/iotest"
)

// TestSendBuf: the sender's chunks start small and double up to
// chunkSize; each is first read into the small probe, so a source that
// stops is waited for holding no chunk buffer; a probe that comes back
// short is sent as it is; chunk buffers go back to the pool.
func TestSendBuf(t *testing.T) {
	var pool sync.Pool
	s := sendBuf{pool: &pool}
	src := &watchedReader{r: bytes.NewReader(make([]byte, 1<<20))}
	src.check = func(p []byte) {
		if len(p) == probeSize && s.b != nil {
			t.Fatal("the probe Read waits with a chunk buffer held")
		}
	}
	want := firstChunk
	for range 8 {
		b, err := s.read(src, 1<<30)
		if err != nil || len(b) != want {
			t.Fatalf("chunk of %d bytes (%v), want %d", len(b), err, want)
		}
		s.done()
		if s.b != nil {
			t.Fatal("done kept the chunk buffer")
		}
		want = min(2*want, chunkSize)
	}
	// A limit below the chunk size.
	if b, err := s.read(src, 10); err != nil || len(b) != 10 {
		t.Fatalf("limited chunk: %d bytes, %v", len(b), err)
	}
	s.done()
	// A stream that sends in blocks of 4096 bytes gets chunks of a block.
	blocks := sendBuf{most: sendChunkLimit(blockConn{size: 4096})}
	for range 4 {
		if b, err := blocks.read(src, 1<<30); err != nil || len(b) != 4096 {
			t.Fatalf("chunk for 4096-byte blocks: %d bytes, %v", len(b), err)
		}
		blocks.done()
	}
	// Not chunkSize: each chunk would end in a 1-byte block.
	if got := sendChunkLimit(blockConn{size: 65535}); got != 65535 {
		t.Fatalf("limit for 65535-byte blocks: %d, want 65535", got)
	}
	if got := sendChunkLimit(blockConn{size: 100}); got != firstChunk {
		t.Fatalf("limit for 100-byte blocks: %d, want %d", got, firstChunk)
	}
	if got := sendChunkLimit(nil); got != chunkSize {
		t.Fatalf("limit for a plain stream: %d, want %d", got, chunkSize)
	}
	// A slow source: what the probe got is the chunk.
	slow := &watchedReader{r: bytes.NewReader(make([]byte, 1000)), most: 100}
	if b, err := s.read(slow, 1<<30); err != nil || len(b) != 100 {
		t.Fatalf("slow source: %d bytes, %v; want 100", len(b), err)
	}
	s.done()
	// The source's last bytes with io.EOF: the chunk is complete.
	var last sendBuf
	if b, err := last.read(iotest.DataErrReader(bytes.NewReader(make([]byte, 300))), 300); err != nil || len(b) != 300 {
		t.Fatalf("last chunk with EOF: %d bytes, %v", len(b), err)
	}
	if b, err := last.read(bytes.NewReader(nil), 300); err != io.EOF || len(b) != 0 {
		t.Fatalf("source ended: %d bytes, %v", len(b), err)
	}
}

// watchedReader reads from r at most most bytes at a time (0: any), and
// calls check with each Read's buffer first.
type watchedReader struct {
	r     io.Reader
	most  int
	check func([]byte)
}

func (w *watchedReader) Read(p []byte) (int, error) {
	if w.check != nil {
		w.check(p)
	}
	if w.most > 0 && len(p) > w.most {
		p = p[:w.most]
	}
	return w.r.Read(p)
}

// TestRecvBuf: the receiver reads into a small buffer until a read fills
// it, into a pooled chunkSize buffer while reads fill theirs, and goes
// back to the small one (the big one back to the pool; under the race
// detector a sync.Pool may drop it, so that is not checked) after a short
// read.
func TestRecvBuf(t *testing.T) {
	var pool sync.Pool
	r := recvBuf{pool: &pool}
	b := r.next()
	if len(b) != trickleChunk {
		t.Fatalf("first read into %d bytes, want %d", len(b), trickleChunk)
	}
	r.got(len(b), 4096) // one IBB block of the recommended size: short
	if b = r.next(); len(b) != trickleChunk {
		t.Fatalf("after a short read: %d bytes, want %d", len(b), trickleChunk)
	}
	r.got(len(b), len(b)) // full: more is waiting
	big := r.next()
	if len(big) != chunkSize {
		t.Fatalf("after a full read: %d bytes, want %d", len(big), chunkSize)
	}
	r.got(len(big), len(big))
	if b = r.next(); &b[0] != &big[0] {
		t.Fatal("a full read of the big buffer replaced it")
	}
	r.got(len(big), 100) // caught up: the next read may wait
	if b = r.next(); len(b) != trickleChunk {
		t.Fatalf("after a short read of the big buffer: %d bytes, want %d", len(b), trickleChunk)
	}
	if r.big != nil {
		t.Fatal("the big buffer is kept while the stream trickles")
	}
	r.got(10, 10) // a full read of the last bytes of a file
	r.release()
	if r.big != nil {
		t.Fatal("release kept the big buffer")
	}
}

// TestRecvBufDrop: a parking worker lets go of both buffers, the small
// one to its pool, and takes one from there when it wakes.
func TestRecvBufDrop(t *testing.T) {
	var pool, smallPool sync.Pool
	r := recvBuf{pool: &pool, smallPool: &smallPool}
	r.next()
	r.got(trickleChunk, trickleChunk)
	r.next()
	r.drop()
	if r.big != nil || r.small != nil {
		t.Fatal("drop kept a buffer")
	}
	if b := r.next(); len(b) != trickleChunk {
		t.Fatalf("after drop: %d bytes, want %d", len(b), trickleChunk)
	}
}

// blockConn is a stream that sends in blocks of its size.
// blockConn is a stream that sends in blocks of its size.
type blockConn struct {
	net.Conn
	size int
}

func (b blockConn) BlockSize() int { return b.size }

// TestRecvBufBlocks: on a stream of blocks larger than trickleChunk-1
// bytes every read uses the chunkSize buffer, also after a short one, so
// that a block arriving alone is read at once; parking drops it.
func TestRecvBufBlocks(t *testing.T) {
	for _, tc := range []struct {
		conn net.Conn
		want int
	}{
		{nil, trickleChunk},
		{blockConn{size: 0}, 0},
		{blockConn{size: 4096}, trickleChunk},
		{blockConn{size: 16384}, 16385},
		{blockConn{size: 65535}, chunkSize},
	} {
		if got := recvTrickle(tc.conn); got != tc.want {
			t.Errorf("recvTrickle(%T %v) = %d, want %d", tc.conn, tc.conn, got, tc.want)
		}
	}
	var pool sync.Pool
	r := recvBuf{pool: &pool, trickle: recvTrickle(blockConn{size: 65535})}
	b := r.next()
	if len(b) != chunkSize {
		t.Fatalf("first read into %d bytes, want %d", len(b), chunkSize)
	}
	r.got(len(b), 65535) // one block: short
	if b = r.next(); len(b) != chunkSize {
		t.Fatalf("after a short read: %d bytes, want %d", len(b), chunkSize)
	}
	r.drop()
	if r.big != nil || r.small != nil {
		t.Fatal("drop kept a buffer")
	}
}
