package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Linux fallocate(2) modes.
const (
	fallocKeepSize  = 0x01
	fallocPunchHole = 0x02
)

// punchGranule is how much written data the puncher lets accumulate
// before it frees it.
const punchGranule = 8 << 20

// punchHoles frees, while another party writes the file dir/name
// sequentially, the disk blocks (and page cache) of what is already
// written, with fallocate(PUNCH_HOLE|KEEP_SIZE). The file keeps its size
// and the writer its offset; only the written data turns to zeros, so the
// disk holds a few megabytes however long the file gets. This is how a
// filetransfer Handler receives a 10 GiB file here without 10 GiB of disk:
// the Handler writes, hashes and verifies exactly as usual (it hashes
// while it writes and never reads the data back), and the harness
// deletes the file afterwards.
//
// stop ends the punching and returns the first error (EOPNOTSUPP where the
// file system cannot punch holes).
func punchHoles(ctx context.Context, dir, name string) (stop func() error) {
	ctx, cancel := context.WithCancel(ctx)
	var (
		wg  sync.WaitGroup
		err error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		err = punchLoop(ctx, filepath.Join(dir, name))
	}()
	return func() error {
		cancel()
		wg.Wait()
		return err
	}
}

func punchLoop(ctx context.Context, path string) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var f *os.File
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	var punched int64
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if f == nil {
			var err error
			f, err = os.OpenFile(path, os.O_WRONLY|syscall.O_NOFOLLOW, 0)
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return err
			}
		}
		st, err := f.Stat()
		if err != nil {
			return err
		}
		end := st.Size() &^ (punchGranule - 1)
		if end <= punched {
			continue
		}
		if err := syscall.Fallocate(int(f.Fd()), fallocPunchHole|fallocKeepSize, punched, end-punched); err != nil {
			return &os.PathError{Op: "fallocate", Path: path, Err: err}
		}
		punched = end
	}
}
