package filetransfer

import "sync"

// A receiving worker reads a chunk, writes it to the .part and hashes it.
// On one goroutine the three add up: at full speed over a direct SOCKS5
// bytestream the receiver sat at 99 % of a core. While a large file
// streams, the worker reads and writes into blocks that it hands to a
// hashing goroutine instead (hashPipe), so receiving takes the longer of
// reading+writing and hashing, not their sum.

// pipeBlock is the size of the blocks handed to the hasher: several
// chunks, each read and written as one, so that the hand-overs (a
// goroutine woken, maybe a thread) cost little per byte. Reads and writes
// stay chunkSize.
const pipeBlock = 4 * chunkSize

// pipeDepth is how many blocks a hashPipe holds at most: the one being
// filled and those waiting for or in the hasher. While a file streams,
// its worker thus holds at most pipeDepth×pipeBlock bytes (768 KiB) on
// top of its recvBuf (64 KiB + 4 KiB), where it held the recvBuf alone; a
// worker that has caught up with the data hands its block over (flush),
// and once the hasher is through, holds no block while it waits.
const pipeDepth = 3

// pipeMin is the smallest range hashed through a hashPipe: a second
// goroutine and its blocks pay for themselves over many chunks, and many
// small files at once (1,000 concurrent transfers of 1 MiB, issue 17)
// keep the memory of one chunk each.
const pipeMin = 2 << 20

// hashBlock is a block handed to the hasher: its first n bytes are data.
type hashBlock struct {
	b *[]byte
	n int
}

// hashPipe hashes a receiving worker's data, in order, in a goroutine of
// its own. The hasher runs only while blocks are queued: it is started by
// a hand-over when none runs and exits when the queue is empty, so a
// worker that waits for its peer or parks (an idle In-Band Bytestream)
// holds no hashing goroutine. The worker owns it: it calls wait (or stop)
// before it reads the sums, reports a failure or parks, and the hasher
// never blocks on anything but the CPU and the pipe's mutex.
//
// Only the worker calls the methods other than hash.
type hashPipe struct {
	hs   *hashSet
	pool *sync.Pool // of *[]byte of pipeBlock bytes; nil allocates

	// The block being filled by the worker, fill bytes of it so far.
	cur  *[]byte
	fill int

	mu     sync.Mutex
	cond   sync.Cond // signalled when a block is hashed and when the hasher exits
	queue  [pipeDepth]hashBlock
	head   int
	queued int
	// out counts the blocks taken by the worker and not yet hashed: at
	// most pipeDepth.
	out     int
	running bool      // a hasher goroutine runs
	discard bool      // the worker failed: what is queued is not hashed
	spare   []*[]byte // hashed blocks, kept when there is no pool
}

func newHashPipe(hs *hashSet, pool *sync.Pool) *hashPipe {
	p := &hashPipe{hs: hs, pool: pool}
	p.cond.L = &p.mu
	return p
}

// space returns where the next at most max bytes go: the free part of the
// block being filled, or of a new one, once fewer than pipeDepth are
// out. It waits only for the hasher to finish a block. filled says how
// much of it was used.
func (p *hashPipe) space(max int) []byte {
	if p.cur == nil {
		p.cur = p.get()
		p.fill = 0
	}
	return (*p.cur)[p.fill:min(p.fill+max, pipeBlock)]
}

// filled records that k bytes were written to the last space, and hands
// the block over when it is full.
func (p *hashPipe) filled(k int) {
	p.fill += k
	if p.fill == pipeBlock {
		p.flush()
	}
}

// flush hands the block being filled over to the hasher, or gives it back
// when it is empty.
func (p *hashPipe) flush() {
	b, n := p.cur, p.fill
	p.cur, p.fill = nil, 0
	if b == nil {
		return
	}
	p.mu.Lock()
	if n == 0 {
		p.out--
		p.recycle(b)
		p.cond.Broadcast()
		p.mu.Unlock()
		return
	}
	p.queue[(p.head+p.queued)%pipeDepth] = hashBlock{b: b, n: n}
	p.queued++
	start := !p.running
	p.running = true
	p.mu.Unlock()
	if start {
		go p.hash()
	}
}

// get takes a block, once fewer than pipeDepth are out.
func (p *hashPipe) get() *[]byte {
	p.mu.Lock()
	for p.out >= pipeDepth {
		p.cond.Wait()
	}
	p.out++
	var b *[]byte
	if n := len(p.spare); n > 0 {
		b, p.spare = p.spare[n-1], p.spare[:n-1]
	}
	p.mu.Unlock()
	if b == nil && p.pool != nil {
		b, _ = p.pool.Get().(*[]byte)
	}
	if b == nil {
		nb := make([]byte, pipeBlock)
		b = &nb
	}
	return b
}

// recycle puts a hashed block back in the pool, or among the spares; p.mu
// is held.
func (p *hashPipe) recycle(b *[]byte) {
	if p.pool != nil {
		p.pool.Put(b)
		return
	}
	p.spare = append(p.spare, b)
}

// write hashes b, read elsewhere, after what the pipe holds: at once when
// it holds nothing, else as a copy through it.
func (p *hashPipe) write(b []byte) {
	if p.cur == nil {
		p.mu.Lock()
		idle := p.out == 0
		p.mu.Unlock()
		if idle {
			p.hs.Write(b)
			return
		}
	}
	for len(b) > 0 {
		n := copy(p.space(len(b)), b)
		p.filled(n)
		b = b[n:]
	}
}

// hash is the hasher: it hashes the queued blocks in order and exits once
// none is left.
func (p *hashPipe) hash() {
	p.mu.Lock()
	for p.queued > 0 {
		blk := p.queue[p.head]
		p.queue[p.head] = hashBlock{}
		p.head = (p.head + 1) % pipeDepth
		p.queued--
		discard := p.discard
		p.mu.Unlock()
		if !discard {
			p.hs.Write((*blk.b)[:blk.n])
		}
		p.mu.Lock()
		p.out--
		p.recycle(blk.b)
		p.cond.Broadcast()
	}
	p.running = false
	p.cond.Broadcast()
	p.mu.Unlock()
}

// wait hands over what is being filled and returns once every block is
// hashed and the hasher is done with the hashes: they may then be read,
// or written to at once.
func (p *hashPipe) wait() {
	p.flush()
	p.mu.Lock()
	for p.running {
		p.cond.Wait()
	}
	p.mu.Unlock()
}

// stop drops what is not hashed yet and waits for the hasher: the worker
// failed, and its sums will not be read.
func (p *hashPipe) stop() {
	p.mu.Lock()
	p.discard = true
	p.mu.Unlock()
	p.wait()
}
