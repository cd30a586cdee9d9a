package filetransfer

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

const (
	// partSuffix names the file the data lands in until it is verified.
	partSuffix = ".part"
	// metaSuffix is kept in the name reserve: names ending in it were the
	// sidecars of older versions.
	metaSuffix = ".meta"
	// StateDirName is the directory inside a Handler's Dir that holds the
	// resume records of the .part files (mode 0700, created when the first
	// byte of a file arrives, removed when empty). Offered names can never
	// reach it: SanitizeName removes leading dots.
	StateDirName = ".jinglekit-partial"
	// maxCandidates bounds the "name (n).ext" search.
	maxCandidates = 1000
	// maxMetaBytes bounds a resume record read back.
	maxMetaBytes = 64 << 10
	// maxStateEntries bounds the resume records looked at for one offer.
	maxStateEntries = 4096
)

// ErrNoFreeName is returned when no unused local name is left for a file.
var ErrNoFreeName = errors.New("filetransfer: no free file name")

// store places received files in one directory: it picks free names,
// creates the .part files exclusively when their first byte arrives and
// renames them once verified. It never follows a symbolic link it did not
// create and never replaces a file unless asked to.
//
// What a .part belongs to (peer, name, size, hashes) is recorded in
// StateDirName, under a random name, with the identity (device and inode)
// of the .part: a peer can offer a file called "x.part", but never forge
// the record that would make another peer's offer resume it.
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
	// Part is the base name of the .part in the directory; Dev and Ino
	// its identity when it was created.
	Part string `json:"part,omitempty"`
	Dev  uint64 `json:"dev,omitempty"`
	Ino  uint64 `json:"ino,omitempty"`
	// Encrypted marks the .part of an encrypted transfer: its bytes were
	// not authenticated (AES-GCM checks only at the end), so it is never
	// resumed from.
	Encrypted bool `json:"encrypted,omitempty"`
}

// matches reports whether a .part recorded with m can be resumed for an
// offer described by o: same peer, name and size, the same date and hash
// values where both know them.
func (m partMeta) matches(o partMeta) bool {
	return !m.Encrypted && !o.Encrypted && m.sameFile(o)
}

// sameFile reports whether m and o describe the same file of the same
// peer, encrypted or not.
func (m partMeta) sameFile(o partMeta) bool {
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

// ownName renames a name that looks like one of the store's own files
// (NAME.part, or an older version's NAME.part.meta): "x.part" becomes
// "x_part", so that a received file is never taken for a partial one.
func ownName(base string) string {
	for _, suf := range []string{partSuffix + metaSuffix, partSuffix} {
		if strings.HasSuffix(base, suf) {
			return strings.TrimSuffix(base, suf) + "_" + suf[1:]
		}
	}
	return base
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil || !errors.Is(err, fs.ErrNotExist)
}

// partFile is a file being received. Nothing exists on disk for it until
// its first byte is written (or it is committed empty).
type partFile struct {
	st     *store
	base   string // the name asked for, before "name (n)"
	name   string // final base name reserved
	final  string // final path
	part   string // path of the .part ("" until created)
	record string // path of the resume record ("" when there is none)
	meta   partMeta
	f      *os.File // nil until the first byte
	offset int64    // bytes already present when opened (resume)
	// restarted is the length of a .part of the same file that was
	// emptied because this transfer or the earlier one is encrypted.
	restarted int64
	size      int64 // the file's size as the record says (resume)
	done      bool
}

// open reserves a local name for base. With resume, a .part whose record
// matches m is reopened and its length returned as offset; otherwise the
// first name that neither exists nor is reserved is taken, and its .part
// is created with the first byte. With overwrite, base itself is used even
// if a file of that name exists (it is replaced on commit).
func (st *store) open(base string, m partMeta, resume, overwrite bool) (*partFile, error) {
	base = ownName(base)
	st.mu.Lock()
	defer st.mu.Unlock()
	if resume && m.Size >= 0 {
		if pf := st.findResumable(m, m.Size, false); pf != nil {
			pf.base = base
			return pf, nil
		}
		// The same file, but this transfer or the one that left the .part
		// is encrypted: start again from the first byte in the same
		// .part, recorded as this transfer's (an encrypted .part is never
		// resumed, nor left behind by a crash to be resumed later).
		if pf := st.findResumable(m, m.Size, true); pf != nil {
			n := pf.offset
			if err := pf.truncate(0); err == nil && pf.replaceMeta(m) == nil {
				pf.base, pf.restarted = base, n
				return pf, nil
			}
			// Neither resumable nor restartable: drop it (st.mu is held).
			pf.f.Close()
			os.Remove(pf.part)
			pf.dropRecord()
			delete(st.busy, pf.name)
		}
	}
	return st.reserve(base, m, overwrite)
}

// reserve picks a free name for base; st.mu is held.
func (st *store) reserve(base string, m partMeta, overwrite bool) (*partFile, error) {
	for i := 0; i < maxCandidates; i++ {
		name := candidate(base, i)
		if st.busy[name] {
			continue
		}
		final := filepath.Join(st.dir, name)
		if exists(final+partSuffix) || (exists(final) && !(overwrite && i == 0)) {
			continue
		}
		st.busy[name] = true
		return &partFile{st: st, base: base, name: name, final: final, meta: m, size: m.Size}, nil
	}
	return nil, fmt.Errorf("%w for %q in %s", ErrNoFreeName, base, st.dir)
}

// openRequested is open for a File Request, whose size is not known yet:
// a .part recorded for the same peer and name (any size) is resumed, else a
// name is reserved whose record gets the size later (setSize).
func (st *store) openRequested(base string, m partMeta, resume bool) (*partFile, error) {
	base = ownName(base)
	st.mu.Lock()
	defer st.mu.Unlock()
	if resume {
		if pf := st.findResumable(m, -1, false); pf != nil {
			pf.base = base
			return pf, nil
		}
	}
	return st.reserve(base, m, false)
}

// replaceMeta records m (keeping the .part's name and identity) as what
// the .part belongs to.
func (p *partFile) replaceMeta(m partMeta) error {
	m.Part, m.Dev, m.Ino = p.meta.Part, p.meta.Dev, p.meta.Ino
	p.meta = m
	if p.record == "" {
		return nil
	}
	tmp := p.record + ".tmp"
	os.Remove(tmp)
	if err := writeMeta(tmp, m, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, p.record)
}

// stateDir returns the directory of the resume records, creating it when
// create is set. It refuses one that is a link, not ours, or open to
// others. st.mu is held.
func (st *store) stateDir(create bool) (string, error) {
	dir := filepath.Join(st.dir, StateDirName)
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) && create {
		if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("filetransfer: creating %s: %w", dir, err)
		}
		fi, err = os.Lstat(dir)
	}
	if err != nil {
		return "", err
	}
	if !fi.IsDir() || fi.Mode().Perm()&0o077 != 0 || !ownedByUs(fi) {
		return "", fmt.Errorf("filetransfer: %s is not a private directory of this user (mode %v)", dir, fi.Mode())
	}
	return dir, nil
}

// findResumable looks for a .part recorded for m that no live transfer
// uses and reopens it; size is what the record must say (-1: any). With
// encrypted it looks for a .part of the same file that cannot be resumed
// because m or its record is encrypted. st.mu is held.
func (st *store) findResumable(m partMeta, size int64, encrypted bool) *partFile {
	dir, err := st.stateDir(false)
	if err != nil {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return nil
	}
	ents, _ := d.ReadDir(maxStateEntries)
	d.Close()
	for _, ent := range ents {
		if !ent.Type().IsRegular() || !strings.HasSuffix(ent.Name(), ".json") {
			continue
		}
		rec := filepath.Join(dir, ent.Name())
		pm, ok := readMeta(rec)
		match := pm.matches(m)
		if encrypted {
			match = (pm.Encrypted || m.Encrypted) && pm.sameFile(m)
		}
		if !ok || !match || (size >= 0 && pm.Size != size) {
			continue
		}
		if pm.Part == "" || pm.Part != filepath.Base(pm.Part) || !strings.HasSuffix(pm.Part, partSuffix) {
			continue
		}
		name := strings.TrimSuffix(pm.Part, partSuffix)
		if st.busy[name] {
			continue
		}
		pf, err := st.reopen(name, pm, rec)
		if err != nil {
			continue
		}
		return pf
	}
	return nil
}

// reopen opens an existing .part for resuming; st.mu is held.
func (st *store) reopen(name string, pm partMeta, rec string) (*partFile, error) {
	final := filepath.Join(st.dir, name)
	part := final + partSuffix
	fi, err := os.Lstat(part)
	if err != nil || !fi.Mode().IsRegular() || (pm.Size >= 0 && fi.Size() > pm.Size) {
		return nil, errors.New("not resumable")
	}
	if dev, ino, ok := fileID(fi); ok && (dev != pm.Dev || ino != pm.Ino) {
		return nil, errors.New("not the .part that was recorded")
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
	return &partFile{st: st, name: name, final: final, part: part, record: rec, meta: pm, f: f,
		offset: fi2.Size(), size: pm.Size}, nil
}

// create makes the .part (exclusively) and its resume record, when the
// first byte arrives. A name taken meanwhile by someone else makes it pick
// the next free one.
func (p *partFile) create() error {
	st := p.st
	st.mu.Lock()
	defer st.mu.Unlock()
	for i := 0; i < maxCandidates; i++ {
		part := p.final + partSuffix
		f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE|os.O_EXCL|oNoFollow, st.perm)
		if err == nil {
			p.f, p.part = f, part
			p.writeRecord()
			return nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("filetransfer: creating %s: %w", part, err)
		}
		delete(st.busy, p.name)
		np, rerr := st.reserve(p.base, p.meta, false)
		if rerr != nil {
			return rerr
		}
		p.name, p.final = np.name, np.final
	}
	return fmt.Errorf("%w for %q in %s", ErrNoFreeName, p.base, st.dir)
}

// writeRecord records what the .part belongs to, for a later resume; st.mu
// is held. Without a usable state directory the file is still received,
// only not resumable.
func (p *partFile) writeRecord() {
	if p.meta.Peer == "" {
		return
	}
	dir, err := p.st.stateDir(true)
	if err != nil {
		return
	}
	m := p.meta
	m.Part = filepath.Base(p.part)
	if fi, err := p.f.Stat(); err == nil {
		m.Dev, m.Ino, _ = fileID(fi)
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	rec := filepath.Join(dir, hex.EncodeToString(b[:])+".json")
	if err := writeMeta(rec, m, 0o600); err != nil {
		return
	}
	p.meta, p.record = m, rec
}

// Write appends to the .part, creating it with the first byte.
func (p *partFile) Write(b []byte) (int, error) {
	if p.f == nil {
		if len(b) == 0 {
			return 0, nil
		}
		if err := p.create(); err != nil {
			return 0, err
		}
	}
	return p.f.Write(b)
}

// setSize records the size of a requested file, so that a broken transfer
// can be resumed.
func (p *partFile) setSize(m partMeta, size int64) error {
	m.Size = size
	p.size = size
	return p.replaceMeta(m)
}

func readMeta(path string) (partMeta, bool) {
	f, err := os.OpenFile(path, os.O_RDONLY|oNoFollow, 0)
	if err != nil {
		return partMeta{}, false
	}
	defer f.Close()
	var m partMeta
	if err := json.NewDecoder(io.LimitReader(f, maxMetaBytes)).Decode(&m); err != nil || m.Version != 2 {
		return partMeta{}, false
	}
	return m, true
}

func writeMeta(path string, m partMeta, perm os.FileMode) error {
	m.Version = 2
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
	if p.f != nil {
		if err := p.f.Truncate(n); err != nil {
			return err
		}
	}
	p.offset = n
	return nil
}

// dropRecord removes the resume record, and the state directory once it is
// empty; st.mu is held.
func (p *partFile) dropRecord() {
	if p.record == "" {
		return
	}
	os.Remove(p.record)
	p.record = ""
	os.Remove(filepath.Join(p.st.dir, StateDirName)) // fails while not empty
}

// commit makes the verified file visible under its final name and returns
// its path. Without overwrite it never replaces an existing file: when the
// name was taken meanwhile, the next free one is used.
func (p *partFile) commit(overwrite bool) (string, error) {
	if p.done {
		return "", errors.New("filetransfer: part already closed")
	}
	if p.f == nil {
		// An empty file: it exists from now on.
		if err := p.create(); err != nil {
			p.done = true
			p.release()
			return "", err
		}
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
		p.dropRecord()
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
			p.dropRecord()
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
		p.dropRecord()
		return final, nil
	}
	return "", fmt.Errorf("%w for %q in %s", ErrNoFreeName, base, st.dir)
}

// abort closes the part. With keep, it stays for a later resume; otherwise
// it and its record are removed.
func (p *partFile) abort(keep bool) {
	if p.done {
		return
	}
	p.done = true
	if p.f != nil {
		p.f.Close()
		if !keep {
			os.Remove(p.part)
			p.st.mu.Lock()
			p.dropRecord()
			p.st.mu.Unlock()
		}
	}
	p.release()
}

func (p *partFile) release() {
	p.st.mu.Lock()
	delete(p.st.busy, p.name)
	p.st.mu.Unlock()
}
