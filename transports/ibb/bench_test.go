package ibb_test

import (
	"fmt"
	"io"
	"testing"

	"github.com/jinglekit/jinglekit/transports/ibb"
)

const benchChunk = 1 << 20

// benchStream writes benchChunk bytes per iteration on w and reads them on
// r, then closes both.
func benchStream(b *testing.B, w, r io.ReadWriteCloser) {
	b.Helper()
	buf := make([]byte, benchChunk)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	b.SetBytes(benchChunk)
	b.ReportAllocs()
	errc := make(chan error, 1)
	b.ResetTimer()
	go func() {
		for i := 0; i < b.N; i++ {
			if _, err := w.Write(buf); err != nil {
				errc <- err
				return
			}
		}
		errc <- w.Close()
	}()
	n, err := io.Copy(io.Discard, r)
	b.StopTimer()
	if werr := <-errc; werr != nil {
		b.Fatal(werr)
	}
	if err != nil || n != int64(b.N)*benchChunk {
		b.Fatalf("read %d bytes, %v", n, err)
	}
	r.Close()
}

// BenchmarkIBB measures one IBB stream over the in-memory network.
func BenchmarkIBB(b *testing.B) {
	for _, block := range []int{4096, 65535} {
		for _, window := range []int{1, 4, 16} {
			b.Run(fmt.Sprintf("block=%d/window=%d", block, window), func(b *testing.B) {
				_, alice, bob := pair(b, &ibb.Method{BlockSize: block, Window: window}, &ibb.Method{})
				ca, cb := connect(b, alice, bob)
				benchStream(b, ca, cb)
			})
		}
	}
}
