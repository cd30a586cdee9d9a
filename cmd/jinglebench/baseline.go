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

// tcpCopy moves size bytes of p over a fresh loopback TCP connection in
// chunks, hashing them with sha-256 on both ends when withHash is set (as
// a file transfer does: read, hash, write; read, hash), and returns the
// time from the first write to the last byte read. With the hashes, the
// two digests must match. With fileDir set, the receiver also writes what
// it reads to a new file there, as a filetransfer Handler does (with the
// same punchHoles behind it), and removes it at the end.
func tcpCopy(ctx context.Context, p Pattern, size int64, withHash bool, fileDir string) (time.Duration, error) {
	var file *os.File
	if fileDir != "" {
		f, err := os.CreateTemp(fileDir, "tcp-*.part")
		if err != nil {
			return 0, err
		}
		defer os.Remove(f.Name())
		defer f.Close()
		stopPunch := punchHoles(ctx, fileDir, filepath.Base(f.Name()))
		defer stopPunch()
		file = f
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
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
	w, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		return 0, err
	}
	defer w.Close()
	a := <-ach
	if a.err != nil {
		return 0, a.err
	}
	r := a.c
	defer r.Close()
	stop := context.AfterFunc(ctx, func() { w.Close(); r.Close() })
	defer stop()

	type recvResult struct {
		n   int64
		sum []byte
		err error
	}
	done := make(chan recvResult, 1)
	go func() {
		var h hash.Hash
		if withHash {
			h = sha256.New()
		}
		buf := make([]byte, chunk)
		var n int64
		for n < size {
			k, err := r.Read(buf[:min(int64(len(buf)), size-n)])
			if file != nil && k > 0 {
				if _, werr := file.Write(buf[:k]); werr != nil {
					done <- recvResult{n, nil, werr}
					return
				}
			}
			if h != nil {
				h.Write(buf[:k])
			}
			n += int64(k)
			if err != nil {
				done <- recvResult{n, nil, err}
				return
			}
		}
		var sum []byte
		if h != nil {
			sum = h.Sum(nil)
		}
		done <- recvResult{n, sum, nil}
	}()

	var h hash.Hash
	if withHash {
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
