package filetransfer

import "sync"

// The data workers allocate their buffers as the data flows, not when a
// file is accepted: an established session whose data does not move (a
// slow sender, a stalled peer) holds a few KiB per file, not chunkSize on
// each side.

// firstChunk is the size of a sending worker's first read.
const firstChunk = 4 << 10

// trickleChunk is the size of a receiving worker's reads while it has
// caught up with the data: one byte more than an In-Band Bytestream block
// of the size XEP-0047 recommends, so that a single block reads short
// (see recvBuf) while two waiting blocks fill it.
const trickleChunk = 4<<10 + 1

// sendBuf is a sending worker's buffer. Its first chunk is firstChunk
// bytes and each next one twice the last, up to chunkSize: a source that
// stops after its first bytes is waited for with a small buffer, and a
// file read at full speed reaches chunkSize after a few chunks.
type sendBuf struct{ b []byte }

// next returns the buffer for the next chunk.
func (s *sendBuf) next() []byte {
	switch {
	case s.b == nil:
		s.b = make([]byte, firstChunk)
	case len(s.b) < chunkSize:
		s.b = make([]byte, min(2*len(s.b), chunkSize))
	}
	return s.b
}

// recvBuf is a receiving worker's buffer. A read that fills its buffer
// says more data is waiting: the next reads go to a chunkSize buffer from
// pool. A read that returns less says the worker has caught up and its
// next read may wait for the peer: the big buffer goes back to pool and
// the next read uses a trickleChunk buffer, so a stalled stream holds
// trickleChunk bytes while it waits.
type recvBuf struct {
	pool  *sync.Pool // of *[]byte of chunkSize bytes; nil allocates
	small []byte
	big   *[]byte
}

// next returns the buffer for the next read.
func (r *recvBuf) next() []byte {
	if r.big != nil {
		return *r.big
	}
	if r.small == nil {
		r.small = make([]byte, trickleChunk)
	}
	return r.small
}

// got records that a read of want bytes returned k.
func (r *recvBuf) got(want, k int) {
	switch {
	case k >= want:
		r.grow()
	case k < want && r.big != nil:
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
	r.small = nil
}

// release hands the big buffer back to the pool.
func (r *recvBuf) release() {
	if r.big != nil && r.pool != nil {
		r.pool.Put(r.big)
	}
	r.big = nil
}
