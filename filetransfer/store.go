package filetransfer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

const (
	// partSuffix names the file the data lands in until it is verified.
	partSuffix = ".part"
	// metaSuffix names the sidecar of a .part (NAME.part.meta) that records
	// which offer it belongs to, so that only the same file from the same
	// peer resumes it.
	metaSuffix = ".meta"
	// maxCandidates bounds the "name (n).ext" search.
	maxCandidates = 1000
	// maxMetaBytes bounds the sidecar read back.
	maxMetaBytes = 64 << 10
)

// ErrNoFreeName is returned when no unused local name is left for a file.
var ErrNoFreeName = errors.New("filetransfer: no free file name")

// store places received files in one directory: it picks free names,
// creates the .part files exclusively and renames them once verified. It
// never follows a symbolic link it did not create and never replaces a file
// unless asked to.
type store struct {
	dir  string
	perm os.FileMode

	mu   sync.Mutex
	busy map[string]bool // final names of live transfers
}

func newStore(dir string, perm os.FileMode) *store {
	if perm == 0 {
		perm = 0o600
	}
	return &store{dir: dir, perm: perm, busy: map[string]bool{}}
}

// partMeta identifies the offer a .part belongs to.
type partMeta struct {
	Version int      `json:"v"`
	Peer    string   `json:"peer"` // bare JID of the sender
	Name    string   `json:"name"` // name as offered
	Size    int64    `json:"size"` // -1 when not offered
	Date    string   `json:"date,omitempty"`
	Hashes  []Digest `json:"hashes,omitempty"`
}

// matches reports whether a .part recorded with m can be resumed for an
// offer described by o: same peer, name and size, the same date and hash
// values where both know them.
func (m partMeta) matches(o partMeta) bool {
	if m.Peer != o.Peer || m.Name != o.Name || m.Size < 0 || (o.Size >= 0 && m.Size != o.Size) {
		return false
	}
	if m.Date != "" && o.Date != "" && m.Date != o.Date {
		return false
	}
	for _, a := range m.Hashes {
		for _, b := range o.Hashes {
			if a.Algo == b.Algo && !bytes.Equal(a.Sum, b.Sum) {
				return false
			}
		}
	}
	return true
}

// candidate returns the i-th name tried for base: "x.txt", "x (1).txt"…
func candidate(base string, i int) string {
	if i == 0 {
		return base
	}
	b, ext := splitExt(base)
	return b + " (" + strconv.Itoa(i) + ")" + ext
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil || !errors.Is(err, fs.ErrNotExist)
}

// partFile is a file being received.
type partFile struct {
	st     *store
	name   string // final base name
	final  string // final path
	part   string
	meta   string
	f      *os.File
	offset int64 // bytes already present when opened (resume)
	size   int64 // the file's size as the sidecar recorded it (resume)
	done   bool
}

// open reserves a local name for base and opens its .part. With resume, a
// .part whose sidecar matches m is reopened and its length returned as
// offset; otherwise a new .part is created (O_EXCL) under the first name
// that neither exists nor is reserved. With overwrite, base itself is used
// even if a file of that name exists (it is replaced on commit).
func (st *store) open(base string, m partMeta, resume, overwrite bool) (*partFile, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if resume && m.Size >= 0 {
		for i := 0; i < maxCandidates; i++ {
			name := candidate(base, i)
			final := filepath.Join(st.dir, name)
			part := final + partSuffix
			if !exists(part) {
				if !exists(final) {
					break // the sequence of names used so far ends here
				}
				continue
			}
			if st.busy[name] {
				continue
			}
			pm, ok := readMeta(part + metaSuffix)
			if !ok || !pm.matches(m) {
				continue
			}
			pf, err := st.reopen(name, final, m.Size)
			if err != nil {
				continue
			}
			return pf, nil
		}
	}
	for i := 0; i < maxCandidates; i++ {
		name := candidate(base, i)
		if st.busy[name] {
			continue
		}
		final := filepath.Join(st.dir, name)
		part := final + partSuffix
		meta := part + metaSuffix
		if exists(part) || exists(meta) || (exists(final) && !(overwrite && i == 0)) {
			continue
		}
		f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE|os.O_EXCL|oNoFollow, st.perm)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("filetransfer: creating %s: %w", part, err)
		}
		if err := writeMeta(meta, m, st.perm); err != nil {
			f.Close()
			os.Remove(part)
			return nil, err
		}
		st.busy[name] = true
		return &partFile{st: st, name: name, final: final, part: part, meta: meta, f: f}, nil
	}
	return nil, fmt.Errorf("%w for %q in %s", ErrNoFreeName, base, st.dir)
}

// openRequested is open for a File Request, whose size is not known yet:
// a .part recorded for the same peer and name (any size) is resumed, else a
// new one is created whose sidecar gets the size later (setSize).
func (st *store) openRequested(base string, m partMeta, resume bool) (*partFile, error) {
	if resume {
		st.mu.Lock()
		for i := 0; i < maxCandidates; i++ {
			name := candidate(base, i)
			final := filepath.Join(st.dir, name)
			part := final + partSuffix
			if !exists(part) {
				if !exists(final) {
					break
				}
				continue
			}
			if st.busy[name] {
				continue
			}
			pm, ok := readMeta(part + metaSuffix)
			if !ok || !pm.matches(m) {
				continue
			}
			pf, err := st.reopen(name, final, pm.Size)
			if err != nil {
				continue
			}
			st.mu.Unlock()
			return pf, nil
		}
		st.mu.Unlock()
	}
	return st.open(base, m, false, false)
}

// setSize records the size of a requested file in its sidecar, so that a
// broken transfer can be resumed.
func (p *partFile) setSize(m partMeta, size int64) error {
	m.Size = size
	tmp := p.meta + ".tmp"
	os.Remove(tmp)
	if err := writeMeta(tmp, m, p.st.perm); err != nil {
		return err
	}
	return os.Rename(tmp, p.meta)
}

// reopen opens an existing .part for resuming; st.mu is held.
func (st *store) reopen(name, final string, size int64) (*partFile, error) {
	part := final + partSuffix
	fi, err := os.Lstat(part)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() > size {
		return nil, errors.New("not resumable")
	}
	f, err := os.OpenFile(part, os.O_RDWR|oNoFollow, 0)
	if err != nil {
		return nil, err
	}
	fi2, err := f.Stat()
	if err != nil || !os.SameFile(fi, fi2) {
		f.Close()
		return nil, errors.New("not resumable")
	}
	st.busy[name] = true
	return &partFile{st: st, name: name, final: final, part: part, meta: part + metaSuffix, f: f, offset: fi2.Size(), size: size}, nil
}

func readMeta(path string) (partMeta, bool) {
	f, err := os.OpenFile(path, os.O_RDONLY|oNoFollow, 0)
	if err != nil {
		return partMeta{}, false
	}
	defer f.Close()
	var m partMeta
	if err := json.NewDecoder(io.LimitReader(f, maxMetaBytes)).Decode(&m); err != nil || m.Version != 1 {
		return partMeta{}, false
	}
	return m, true
}

func writeMeta(path string, m partMeta, perm os.FileMode) error {
	m.Version = 1
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|oNoFollow, perm)
	if err != nil {
		return fmt.Errorf("filetransfer: creating %s: %w", path, err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

// truncate shortens the part to n bytes (a range that starts earlier than
// what is on disk).
func (p *partFile) truncate(n int64) error {
	if n > p.offset {
		return fmt.Errorf("filetransfer: cannot resume at %d with %d bytes on disk", n, p.offset)
	}
	if err := p.f.Truncate(n); err != nil {
		return err
	}
	p.offset = n
	return nil
}

// commit makes the verified file visible under its final name and returns
// its path. Without overwrite it never replaces an existing file: when the
// name was taken meanwhile, the next free one is used.
func (p *partFile) commit(overwrite bool) (string, error) {
	if p.done {
		return "", errors.New("filetransfer: part already closed")
	}
	p.done = true
	syncErr := p.f.Sync()
	closeErr := p.f.Close()
	if err := errors.Join(syncErr, closeErr); err != nil {
		p.release()
		return "", fmt.Errorf("filetransfer: writing %s: %w", p.part, err)
	}
	st := p.st
	st.mu.Lock()
	defer st.mu.Unlock()
	defer delete(st.busy, p.name)
	if overwrite {
		if err := os.Rename(p.part, p.final); err != nil {
			return "", fmt.Errorf("filetransfer: %w", err)
		}
		os.Remove(p.meta)
		return p.final, nil
	}
	base := p.name
	for i := 0; i < maxCandidates; i++ {
		name := candidate(base, i)
		if i > 0 && (st.busy[name] || exists(filepath.Join(st.dir, name)+partSuffix)) {
			continue
		}
		final := filepath.Join(st.dir, name)
		err := os.Link(p.part, final)
		if err == nil {
			os.Remove(p.part)
			os.Remove(p.meta)
			return final, nil
		}
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		// No hard links here: rename, after checking the name is free.
		if exists(final) {
			continue
		}
		if err := os.Rename(p.part, final); err != nil {
			return "", fmt.Errorf("filetransfer: %w", err)
		}
		os.Remove(p.meta)
		return final, nil
	}
	return "", fmt.Errorf("%w for %q in %s", ErrNoFreeName, base, st.dir)
}

// abort closes the part. With keep, it stays for a later resume; otherwise
// it and its sidecar are removed.
func (p *partFile) abort(keep bool) {
	if p.done {
		return
	}
	p.done = true
	p.f.Close()
	if !keep {
		os.Remove(p.part)
		os.Remove(p.meta)
	}
	p.release()
}

func (p *partFile) release() {
	p.st.mu.Lock()
	delete(p.st.busy, p.name)
	p.st.mu.Unlock()
}
