package filetransfer

import (
	"io"
	"net"
	"sync"

	"github.com/jinglekit/jinglekit/jingle"
)

// The data workers allocate their buffers as the data flows, not when a
// file is accepted: an established session whose data does not move (a
// slow sender, a stalled peer) holds a few KiB per file, not chunkSize on
// each side.

// firstChunk is the size of a sending worker's first chunk.
const firstChunk = 4 << 10

// probeSize is the size of a sending worker's first Read of each chunk:
// the Read that waits while the source has nothing to give.
const probeSize = 512

// trickleChunk is the size of a receiving worker's reads while it has
// caught up with the data: one byte more than an In-Band Bytestream block
// of the size XEP-0047 recommends, so that a single block reads short
// (see recvBuf) while two waiting blocks fill it.
const trickleChunk = 4<<10 + 1

// sendBuf is a sending worker's buffers. Its first chunk is firstChunk
// bytes and each next one twice the last, up to chunkSize, so a file read
// at full speed reaches chunkSize after a few chunks. Each chunk is read
// in two steps: a first Read into a probeSize buffer — the Read that
// waits when the source is slow — and, once it has given bytes, the rest
// of the chunk into the chunk buffer, which is held only until the chunk
// is sent (it comes from and goes back to pool). A sender stalled on its
// source thus holds probeSize bytes, not a chunk.
type sendBuf struct {
	pool  *sync.Pool // of *[]byte chunk buffers; nil allocates
	probe []byte
	size  int     // of the next chunk
	most  int     // largest chunk: chunkSize, or less (see sendChunkLimit)
	b     *[]byte // the chunk being sent
}

// blockStream is a stream that sends in blocks of BlockSize bytes, as
// transports/ibb's Conn does; 0 while the size is not known yet.
type blockStream interface{ BlockSize() int }

// sendChunkLimit returns the largest chunk worth handing to conn at once:
// a stream that sends in blocks (an In-Band Bytestream: BlockSize) gains
// nothing from chunks larger than a block (with 65535-byte blocks, a
// chunkSize chunk ended in a 1-byte block), and a chunk waits whole in
// Write while the stream is busy, so with many streams released at once
// small chunks keep the memory down. At least firstChunk.
func sendChunkLimit(conn net.Conn) int {
	if b, ok := jingle.StreamAs[blockStream](conn); ok {
		if n := b.BlockSize(); n > 0 {
			return min(max(n, firstChunk), chunkSize)
		}
	}
	return chunkSize
}

// read reads the next chunk, of at most limit bytes, from r: it returns
// fewer bytes than the chunk's size only with an error, or when the probe
// Read returned fewer than it asked for (a slow source: what it gave is
// sent without waiting for more). done must be called once the chunk is
// sent.
func (s *sendBuf) read(r io.Reader, limit int64) ([]byte, error) {
	if s.most == 0 {
		s.most = chunkSize
	}
	if s.size == 0 {
		s.size = min(firstChunk, s.most)
	}
	n := s.size
	if limit < int64(n) {
		n = int(limit)
	}
	if s.probe == nil {
		s.probe = make([]byte, probeSize)
	}
	want := min(n, probeSize)
	var k int
	var err error
	for k == 0 && err == nil {
		k, err = r.Read(s.probe[:want])
	}
	if k == 0 {
		return nil, err
	}
	buf := s.get()
	copy(buf, s.probe[:k])
	if err == nil && k == want && k < n {
		var m int
		m, err = io.ReadFull(r, buf[k:n])
		k += m
	}
	if k == n {
		err = nil // the whole chunk; an end of the source is for the next read
	}
	if s.size < s.most {
		s.size = min(2*s.size, s.most)
	}
	return buf[:k], err
}

// get returns a buffer for a chunk of s.size bytes, from the pool when it
// holds one large enough.
func (s *sendBuf) get() []byte {
	if s.pool != nil {
		if b, ok := s.pool.Get().(*[]byte); ok && cap(*b) >= s.size {
			s.b = b
			return (*b)[:s.size]
		}
	}
	b := make([]byte, s.size)
	s.b = &b
	return b
}

// done lets go of the chunk buffer, back to the pool.
func (s *sendBuf) done() {
	if s.b != nil && s.pool != nil {
		s.pool.Put(s.b)
	}
	s.b = nil
}

// recvBuf is a receiving worker's buffer. A read that fills its buffer
// says more data is waiting: the next reads go to a chunkSize buffer from
// pool. A read that returns less says the worker has caught up and its
// next read may wait for the peer: the big buffer goes back to pool and
// the next read uses a trickleChunk buffer, so a stalled stream holds
// trickleChunk bytes while it waits.
//
// A worker that parks (drop) gives both back: its small one to
// smallPool, so that thousands of parked streams woken at once (issue
// 17's 10,000 idle sessions released) share a few buffers instead of
// allocating one each.
//
// On a stream that sends in blocks of trickleChunk bytes or more (an
// In-Band Bytestream with BlockSize 65535: see recvTrickle), every read
// uses the chunkSize buffer, at least one byte more than a block: a block
// that arrives alone is read, written to the .part and hashed at once,
// not in a trickleChunk read and a second one for the rest of it. A
// parking worker still drops it.
type recvBuf struct {
	pool      *sync.Pool // of *[]byte of chunkSize bytes; nil allocates
	smallPool *sync.Pool // of *[]byte of trickleChunk bytes; nil allocates
	small     *[]byte
	big       *[]byte
	// trickle is the size of the reads the stream's blocks need while
	// it trickles (recvTrickle; 0 until known): above trickleChunk,
	// every read uses the big buffer.
	trickle int
}

// recvTrickle returns the size a receiving worker's reads from conn need
// while it has caught up with the data: one byte more than a block of a
// stream that sends in blocks (BlockSize), so that a block arriving alone
// reads short in one Read; at least trickleChunk and at most chunkSize
// (XEP-0047 blocks are at most 65535 bytes). 0 while conn's block size is
// not known yet.
func recvTrickle(conn net.Conn) int {
	b, ok := jingle.StreamAs[blockStream](conn)
	if !ok {
		return trickleChunk
	}
	n := b.BlockSize()
	if n <= 0 {
		return 0
	}
	return min(max(n+1, trickleChunk), chunkSize)
}

// next returns the buffer for the next read.
func (r *recvBuf) next() []byte {
	if r.trickle > trickleChunk {
		r.grow()
	}
	if r.big != nil {
		return *r.big
	}
	if r.small == nil && r.smallPool != nil {
		r.small, _ = r.smallPool.Get().(*[]byte)
	}
	if r.small == nil {
		b := make([]byte, trickleChunk)
		r.small = &b
	}
	return *r.small
}

// got records that a read of want bytes returned k.
func (r *recvBuf) got(want, k int) {
	switch {
	case k >= want:
		r.grow()
	case k < want && r.big != nil && r.trickle <= trickleChunk:
		// With blocks larger than trickleChunk, the next read needs the
		// big buffer anyway (a parking worker drops it).
		r.release()
	}
}

// grow makes the next reads use a chunkSize buffer.
func (r *recvBuf) grow() {
	if r.big != nil {
		return
	}
	if r.pool != nil {
		r.big, _ = r.pool.Get().(*[]byte)
	}
	if r.big == nil {
		b := make([]byte, chunkSize)
		r.big = &b
	}
}

// drop lets go of both buffers, the big one back to the pool: the worker
// parks and holds none while it waits.
func (r *recvBuf) drop() {
	r.release()
	if r.small != nil && r.smallPool != nil {
		r.smallPool.Put(r.small)
	}
	r.small = nil
}

// release hands the big buffer back to the pool.
func (r *recvBuf) release() {
	if r.big != nil && r.pool != nil {
		r.pool.Put(r.big)
	}
	r.big = nil
}
