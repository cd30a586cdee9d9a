package filetransfer

import (
	"os"
	"path/filepath"
	"testing"
)

// TestStoreResumeRecord (issue 13, D1): a .part is resumed only through
// its record in the private state directory, for the same peer, name,
// size and hash, and only while the .part is the file that was recorded.
func TestStoreResumeRecord(t *testing.T) {
	dir := t.TempDir()
	st := newStore(dir, 0)
	m := partMeta{Peer: "alice@example.net", Name: "x.bin", Size: 10,
		Hashes: []Digest{{Algo: SHA256, Sum: make([]byte, 32)}}}
	// Nothing exists before the first byte.
	p, err := st.open("x.bin", m, true, false)
	if err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("created before the first byte: %v", ents)
	}
	if _, err := p.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	p.abort(true)
	state := filepath.Join(dir, StateDirName)
	if fi, err := os.Stat(state); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("state directory: %v %v", err, fi)
	}

	resumes := func(o partMeta) bool {
		t.Helper()
		p, err := st.open("x.bin", o, true, false)
		if err != nil {
			t.Fatal(err)
		}
		defer p.abort(true)
		return p.offset == 5
	}
	other := m
	other.Peer = "mallory@example.net"
	bigger := m
	bigger.Size = 11
	wrongHash := m
	wrongHash.Hashes = []Digest{{Algo: SHA256, Sum: make([]byte, 32)}}
	wrongHash.Hashes[0].Sum[0] = 1
	for _, tc := range []struct {
		name string
		o    partMeta
		want bool
	}{
		{"same offer", m, true},
		{"another peer", other, false},
		{"another size", bigger, false},
		{"another hash", wrongHash, false},
	} {
		if got := resumes(tc.o); got != tc.want {
			t.Errorf("%s: resumed %v, want %v", tc.name, got, tc.want)
		}
	}

	// A state directory others can write to is not trusted.
	if err := os.Chmod(state, 0o755); err != nil {
		t.Fatal(err)
	}
	if resumes(m) {
		t.Error("resumed through a state directory of mode 0755")
	}
	if err := os.Chmod(state, 0o700); err != nil {
		t.Fatal(err)
	}

	// A .part replaced by another file of the same name is not resumed.
	// (Offered names never end in .part: only a local user can do this.)
	part := filepath.Join(dir, "x.bin.part")
	if err := os.Rename(part, filepath.Join(dir, "elsewhere")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(part, []byte("EVIL!"), 0o600); err != nil {
		t.Fatal(err)
	}
	if resumes(m) {
		t.Error("resumed a .part that is not the recorded file")
	}
}

// TestStoreEncryptedRestart: a .part of the same file is never resumed
// when this transfer or the one that left it is encrypted; it is emptied
// and reused under its name (no "x (1).bin" beside a stale .part), and its
// record then says encrypted. Without the encryption the same .part
// resumes (the control).
func TestStoreEncryptedRestart(t *testing.T) {
	m := partMeta{Peer: "alice@example.net", Name: "x.bin", Size: 10}
	enc := m
	enc.Encrypted = true
	for _, tc := range []struct {
		name        string
		left, offer partMeta
		resumed     bool
	}{
		{"plain then plain", m, m, true},
		{"plain then encrypted", m, enc, false},
		{"encrypted (a crash) then plain", enc, m, false},
		{"encrypted then encrypted", enc, enc, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			st := newStore(dir, 0)
			p, err := st.open("x.bin", tc.left, true, false)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			p.abort(true) // as a crash leaves it
			q, err := st.open("x.bin", tc.offer, true, false)
			if err != nil {
				t.Fatal(err)
			}
			defer q.abort(false)
			if tc.resumed {
				if q.offset != 5 || q.restarted != 0 {
					t.Fatalf("offset %d, restarted %d: want a resume at 5", q.offset, q.restarted)
				}
				return
			}
			if q.offset != 0 || q.restarted != 5 || q.name != "x.bin" {
				t.Fatalf("offset %d, restarted %d, name %q: want x.bin restarted from 0 (5 bytes dropped)", q.offset, q.restarted, q.name)
			}
			if fi, err := os.Stat(filepath.Join(dir, "x.bin.part")); err != nil || fi.Size() != 0 {
				t.Fatalf("the .part after the restart: %v, %v", fi, err)
			}
			if rm, ok := readMeta(q.record); !ok || rm.Encrypted != tc.offer.Encrypted {
				t.Fatalf("record %+v (%v), want encrypted=%v", rm, ok, tc.offer.Encrypted)
			}
		})
	}
}
