package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"
)

// chunk is the size of the reads and writes of the baselines: the chunk
// size filetransfer uses, so that both do the same number of system calls.
const chunk = 64 << 10

// tcpOpts says what the receiver of tcpCopy does besides reading.
type tcpOpts struct {
	// hash: sha-256 on both ends, as a file transfer hashes; the two
	// digests must match.
	hash bool
	// fileDir: the receiver also writes what it reads to a new file
	// there, as a filetransfer Handler does (with the same punchHoles
	// behind it), and removes it at the end.
	fileDir string
	// pipelined: the receiver hashes in a second goroutine (receivePiped),
	// as filetransfer's receiver does with a large file; with hash.
	pipelined bool
}

// tcpCopy moves size bytes of p over a fresh loopback TCP connection in
// chunks, doing what o says on both ends (as a file transfer does: read,
// hash, write; read, write, hash), and returns the time from the first
// write to the last byte read.
func tcpCopy(ctx context.Context, p Pattern, size int64, o tcpOpts) (time.Duration, error) {
	var file io.Writer
	if o.fileDir != "" {
		f, err := os.CreateTemp(o.fileDir, "tcp-*.part")
		if err != nil {
			return 0, err
		}
		defer os.Remove(f.Name())
		defer f.Close()
		stopPunch := punchHoles(ctx, o.fileDir, filepath.Base(f.Name()))
		defer stopPunch()
		file = f
	}
	w, r, err := loopbackPair(ctx)
	if err != nil {
		return 0, err
	}
	defer w.Close()
	defer r.Close()
	stop := context.AfterFunc(ctx, func() { w.Close(); r.Close() })
	defer stop()

	done := make(chan recvResult, 1)
	go func() {
		var h hash.Hash
		if o.hash {
			h = sha256.New()
		}
		if o.pipelined && h != nil {
			done <- receivePiped(r, size, file, h)
		} else {
			done <- receiveSerial(r, size, file, h)
		}
	}()

	var h hash.Hash
	if o.hash {
		h = sha256.New()
	}
	src := p.Reader(size)
	buf := make([]byte, chunk)
	start := time.Now()
	for {
		k, rerr := io.ReadFull(src, buf)
		if k > 0 {
			if h != nil {
				h.Write(buf[:k])
			}
			if _, err := w.Write(buf[:k]); err != nil {
				return 0, err
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return 0, rerr
		}
	}
	res := <-done
	el := time.Since(start)
	if res.err != nil {
		return 0, fmt.Errorf("bench: reading after %d bytes: %w", res.n, res.err)
	}
	if h != nil && !bytes.Equal(h.Sum(nil), res.sum) {
		return 0, errors.New("bench: sha-256 differs between the ends of the TCP baseline")
	}
	return el, nil
}

// loopbackPair returns the two ends of a fresh loopback TCP connection.
func loopbackPair(ctx context.Context) (w, r net.Conn, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	defer ln.Close()
	type accepted struct {
		c   net.Conn
		err error
	}
	ach := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		ach <- accepted{c, err}
	}()
	var d net.Dialer
	w, err = d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		ln.Close()
		<-ach
		return nil, nil, err
	}
	a := <-ach
	if a.err != nil {
		w.Close()
		return nil, nil, a.err
	}
	return w, a.c, nil
}

// recvResult is what a baseline's receiver read: n bytes, their sha-256
// (nil without a hash) or the failure.
type recvResult struct {
	n   int64
	sum []byte
	err error
}

// receiveSerial reads size bytes from r in chunks and, for each, writes
// it to file (when not nil) and hashes it with h (when not nil), all on
// the calling goroutine.
func receiveSerial(r io.Reader, size int64, file io.Writer, h hash.Hash) recvResult {
	buf := make([]byte, chunk)
	var n int64
	for n < size {
		k, err := r.Read(buf[:min(int64(len(buf)), size-n)])
		if file != nil && k > 0 {
			if _, werr := file.Write(buf[:k]); werr != nil {
				return recvResult{n, nil, werr}
			}
		}
		if h != nil {
			h.Write(buf[:k])
		}
		n += int64(k)
		if err != nil {
			return recvResult{n, nil, err}
		}
	}
	var sum []byte
	if h != nil {
		sum = h.Sum(nil)
	}
	return recvResult{n, sum, nil}
}

// The shape of filetransfer's hash pipe (filetransfer/hashpipe.go), which
// the pipelined baseline copies without its internals: blocks of 4
// chunks handed to a hashing goroutine, at most 3 of them out (the one
// being filled included).
const (
	pipeBlock = 4 * chunk
	pipeDepth = 3
)

// hashPipe hashes blocks, in order, in a goroutine of its own, started by
// newHashPipe and ended by wait. Its pipeDepth blocks are either free or
// out: being filled by the receiver, queued, or being hashed; the
// receiver takes one from free (waiting while all are out), the hasher
// puts each back once hashed, and never waits for anything but a block.
type hashPipe struct {
	free chan []byte // blocks not out; the receiver takes from it
	full chan []byte // blocks handed to the hasher, in order
	done chan struct{}
}

func newHashPipe(h hash.Hash) *hashPipe {
	p := &hashPipe{free: make(chan []byte, pipeDepth), full: make(chan []byte, pipeDepth), done: make(chan struct{})}
	for range pipeDepth {
		p.free <- make([]byte, pipeBlock)
	}
	go func() {
		defer close(p.done)
		for b := range p.full {
			h.Write(b)
			p.free <- b[:cap(b)]
		}
	}()
	return p
}

// wait ends the hasher once it has hashed every block handed over.
func (p *hashPipe) wait() {
	close(p.full)
	<-p.done
}

// receivePiped is receiveSerial with the hashing in a hashPipe: the
// receiver reads chunks into a block, writes each to file, and hands the
// block to the hasher when full (or at the end), so that receiving takes
// the longer of reading+writing and hashing, not their sum. Unlike
// filetransfer, it does not hand over a partly filled block when it has
// caught up with the sender (filetransfer does, to park an idle worker
// with its hashes done): fewer hand-overs, so if anything a stronger
// baseline.
func receivePiped(r io.Reader, size int64, file io.Writer, h hash.Hash) recvResult {
	p := newHashPipe(h)
	blk, fill := <-p.free, 0
	var n int64
	for n < size {
		space := blk[fill:min(fill+chunk, pipeBlock)]
		k, err := r.Read(space[:min(int64(len(space)), size-n)])
		if file != nil && k > 0 {
			if _, werr := file.Write(space[:k]); werr != nil {
				p.wait()
				return recvResult{n, nil, werr}
			}
		}
		fill += k
		n += int64(k)
		if err != nil {
			p.wait()
			return recvResult{n, nil, err}
		}
		if fill == pipeBlock && n < size {
			p.full <- blk
			blk, fill = <-p.free, 0
		}
	}
	if fill > 0 {
		p.full <- blk[:fill]
	}
	p.wait()
	return recvResult{n, h.Sum(nil), nil}
}

// base64Rate encodes blocks of blockSize bytes of p with standard base64,
// as an IBB sender does, for at least minTime and at least minBytes, on
// one goroutine, and returns the input bytes encoded per second in MB/s.
func base64Rate(p Pattern, blockSize int, minBytes int64, minTime time.Duration) float64 {
	enc := make([]byte, base64.StdEncoding.EncodedLen(blockSize))
	var n int64
	off := 0
	start := time.Now()
	for {
		for range 64 {
			if off+blockSize > len(p) {
				off = 0
			}
			base64.StdEncoding.Encode(enc, p[off:off+blockSize])
			off += blockSize
			n += int64(blockSize)
		}
		if el := time.Since(start); n >= minBytes && el >= minTime {
			return MBPerS(n, el)
		}
	}
}
