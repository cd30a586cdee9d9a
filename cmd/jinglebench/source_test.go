package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestPatternReader(t *testing.T) {
	p := NewPattern(1)
	if bytes.Equal(p, NewPattern(2)) || !bytes.Equal(p, NewPattern(1)) {
		t.Fatal("patterns do not depend on the seed alone")
	}
	for _, size := range []int64{0, 1, patternSize - 1, patternSize, 2*patternSize + 12345} {
		got, err := io.ReadAll(p.Reader(size))
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(got)) != size {
			t.Fatalf("size %d: read %d bytes", size, len(got))
		}
		for off := int64(0); off < size; off += patternSize {
			end := min(off+patternSize, size)
			if !bytes.Equal(got[off:end], p[:end-off]) {
				t.Fatalf("size %d: bytes %d–%d are not the pattern", size, off, end)
			}
		}
	}
	src := p.Source("x.bin", 100)
	rc, err := src.Open()
	if err != nil || src.Size != 100 || src.Name != "x.bin" {
		t.Fatalf("Source: %+v, %v", src, err)
	}
	if n, _ := io.Copy(io.Discard, rc); n != 100 {
		t.Errorf("the source yields %d bytes, want 100", n)
	}
	// ReadAt reads what the reader yields at that offset.
	all, _ := io.ReadAll(p.Reader(2 * patternSize))
	for _, off := range []int64{0, 5, patternSize - 3, patternSize + 7} {
		b := make([]byte, 16)
		if n, err := io.NewSectionReader(p, 0, 2*patternSize).ReadAt(b, off); n != 16 || err != nil || !bytes.Equal(b, all[off:off+16]) {
			t.Errorf("ReadAt(%d) = %d, %v: %x, want %x", off, n, err, b, all[off:off+16])
		}
	}
	if _, err := p.ReadAt(make([]byte, 1), -1); err == nil {
		t.Error("ReadAt(-1) did not fail")
	}
}

// TestPunchHoles writes a file sequentially while punchHoles runs and
// checks that it keeps its size, that the disk holds a fraction of it and
// that the writer's last bytes are intact.
func TestPunchHoles(t *testing.T) {
	dir := t.TempDir()
	f, err := os.OpenFile(filepath.Join(dir, "f.part"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stop := punchHoles(context.Background(), dir, "f.part")
	chunk := bytes.Repeat([]byte{0xab}, 1<<20)
	const total = 97 << 20 // the last MiB is beyond the last full granule
	for written := len(chunk); written <= total; written += len(chunk) {
		if _, err := f.Write(chunk); err != nil {
			t.Fatal(err)
		}
		if written%(16<<20) == 0 {
			// Let the puncher catch up now and then, as a network-bound
			// writer would: all but the last granule must be freed.
			deadline := time.Now().Add(10 * time.Second)
			for onDisk(f) > punchGranule+(2<<20) {
				if time.Now().After(deadline) {
					t.Fatalf("after %d bytes, %d still on disk", written, onDisk(f))
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
	if err := stop(); err != nil {
		if errorsIsNotSupported(err) {
			t.Skipf("this file system cannot punch holes: %v", err)
		}
		t.Fatal(err)
	}
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != total {
		t.Errorf("size %d, want %d", st.Size(), total)
	}
	if d := onDisk(f); d > total/2 {
		t.Errorf("%d bytes on disk for a %d-byte file: holes were not punched", d, total)
	}
	tail := make([]byte, 1<<20)
	r, _ := os.Open(f.Name())
	defer r.Close()
	if _, err := r.ReadAt(tail, total-int64(len(tail))); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(tail, chunk) {
		t.Error("the last megabyte, not yet punched, changed")
	}
}

func onDisk(f *os.File) int64 {
	st, err := f.Stat()
	if err != nil {
		return -1
	}
	return st.Sys().(*syscall.Stat_t).Blocks * 512
}

func errorsIsNotSupported(err error) bool {
	var pe *os.PathError
	if e, ok := err.(*os.PathError); ok {
		pe = e
	}
	return pe != nil && (pe.Err == syscall.EOPNOTSUPP || pe.Err == syscall.ENOSYS)
}
