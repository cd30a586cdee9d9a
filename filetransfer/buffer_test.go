package filetransfer

import (
	"sync"
	"testing"
)

// TestSendBuf: the sender's chunks start small and double up to
// chunkSize, so a source that stops early is waited for with a small
// buffer.
func TestSendBuf(t *testing.T) {
	var s sendBuf
	want := firstChunk
	for range 8 {
		if got := len(s.next()); got != want {
			t.Fatalf("chunk of %d bytes, want %d", got, want)
		}
		want = min(2*want, chunkSize)
	}
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
