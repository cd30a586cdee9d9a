package filetransfer_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jingletest"
	"github.com/jinglekit/jinglekit/xmpptest"
	"mellium.im/xmpp/jid"
)

// TestSendSizes sends files of several sizes and checks they arrive byte
// for byte, verified, and that the final name appears only after
// verification: when the last byte is written the directory must hold the
// .part and not the file.
func TestSendSizes(t *testing.T) {
	for _, size := range []int{0, 1, 1 << 20, 32 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			var mu sync.Mutex
			var seenFull bool
			var dirAtEnd []string
			var bob *party
			n, alice, bob := newPair(t, func(h *filetransfer.Handler) {
				h.Progress = func(p filetransfer.Progress) {
					if p.Sending || p.Bytes != p.Total {
						return
					}
					mu.Lock()
					defer mu.Unlock()
					seenFull = true
					dirAtEnd = listDir(t, h.Dir)
				}
			})
			_ = bob
			data := randomBytes(size, uint64(size))
			name := fmt.Sprintf("data-%d.bin", size)
			// Look at bob's directory while the checksum is on its way:
			// all the data is there, nothing is verified yet.
			var atChecksum []string
			var partSize int64 = -1
			n.SetFilter(func(from, to jid.JID, st []byte) []byte {
				if bytes.Contains(st, []byte("<checksum")) {
					mu.Lock()
					atChecksum = listDir(t, bob.dir)
					if fi, err := os.Stat(filepath.Join(bob.dir, name+".part")); err == nil {
						partSize = fi.Size()
					}
					mu.Unlock()
				}
				return st
			})
			res, err := filetransfer.Send(tctx(t), alice.m, bob.jid, filetransfer.BytesSource(name, data))
			if err != nil {
				t.Fatalf("send: %v", err)
			}
			got := bob.result(t)
			if got.Err != nil {
				t.Fatalf("receive: %v", got.Err)
			}
			if !got.Verified || got.Hash.Algo != filetransfer.SHA256 || !bytes.Equal(got.Hash.Sum, sha256Of(data)) {
				t.Fatalf("receiver's hash %v verified=%v, want sha-256 %x", got.Hash, got.Verified, sha256Of(data))
			}
			if want := filepath.Join(bob.dir, name); got.Path != want {
				t.Fatalf("received into %s, want %s", got.Path, want)
			}
			wantFile(t, got.Path, data)
			if files := listDir(t, bob.dir); !slices.Equal(files, []string{name}) {
				t.Fatalf("bob's directory holds %v, want only %s", files, name)
			}
			mu.Lock()
			if !seenFull {
				t.Fatal("no progress report of the complete data")
			}
			// Nothing is created before the first byte: an empty file
			// has no .part at all.
			want := []string{filetransfer.StateDirName, name + ".part"}
			if size == 0 {
				want = nil
			}
			// The checksum may overtake the data: then the .part may not
			// exist yet, but the final name never does.
			if !slices.Equal(dirAtEnd, want) || slices.Contains(atChecksum, name) || len(atChecksum) > len(want) {
				t.Fatalf("when the last byte was written the directory held %v, and when the checksum came %v; want %v", dirAtEnd, atChecksum, want)
			}
			if partSize > int64(size) {
				t.Fatalf("the .part had %d bytes when the checksum came (of %d)", partSize, size)
			}
			mu.Unlock()
			if len(res) != 1 || res[0].Err != nil || !res[0].Verified || res[0].Bytes != int64(size) {
				t.Fatalf("sender's result %+v", res)
			}
			if res[0].Transport != jingletest.PipeNS || got.Transport != jingletest.PipeNS {
				t.Fatalf("transports %q and %q, want %q", res[0].Transport, got.Transport, jingletest.PipeNS)
			}
		})
	}
}

// TestSendSeveralFiles sends three files in one session.
func TestSendSeveralFiles(t *testing.T) {
	_, alice, bob := newPair(t, nil)
	var srcs []filetransfer.Source
	datas := map[string][]byte{}
	for i, size := range []int{10, 300 << 10, 2 << 20} {
		name := fmt.Sprintf("f%d.dat", i)
		d := randomBytes(size, uint64(100+i))
		datas[name] = d
		srcs = append(srcs, filetransfer.BytesSource(name, d))
	}
	res, err := filetransfer.Send(tctx(t), alice.m, bob.jid, srcs...)
	if err != nil {
		t.Fatal(err)
	}
	sids := map[string]bool{}
	for i := range srcs {
		got := bob.result(t)
		if got.Err != nil || !got.Verified {
			t.Fatalf("file %d: %+v", i, got)
		}
		wantFile(t, got.Path, datas[got.Name])
		sids[got.SID] = true
		if !res[i].Verified || res[i].Err != nil {
			t.Fatalf("sender's result %d: %+v", i, res[i])
		}
	}
	if len(sids) != 1 {
		t.Fatalf("files came in %d sessions, want 1", len(sids))
	}
	if got := completeFiles(t, bob.dir); len(got) != 3 || len(listDir(t, bob.dir)) != 3 {
		t.Fatalf("bob's directory: %v", listDir(t, bob.dir))
	}
}

// TestExistingFileNotOverwritten offers a file whose name exists.
func TestExistingFileNotOverwritten(t *testing.T) {
	_, alice, bob := newPair(t, nil)
	old := []byte("precious")
	if err := os.WriteFile(filepath.Join(bob.dir, "report.pdf"), old, 0o600); err != nil {
		t.Fatal(err)
	}
	data := randomBytes(5000, 7)
	if _, err := filetransfer.Send(tctx(t), alice.m, bob.jid, filetransfer.BytesSource("report.pdf", data)); err != nil {
		t.Fatal(err)
	}
	got := bob.result(t)
	if got.Err != nil {
		t.Fatal(got.Err)
	}
	if want := filepath.Join(bob.dir, "report (1).pdf"); got.Path != want {
		t.Fatalf("received as %s, want %s", got.Path, want)
	}
	wantFile(t, got.Path, data)
	wantFile(t, filepath.Join(bob.dir, "report.pdf"), old)
}

// TestDeclinedByPolicy: a JID the policy refuses gets decline and nothing
// is written.
func TestDeclinedByPolicy(t *testing.T) {
	_, alice, bob := newPair(t, func(h *filetransfer.Handler) {
		h.Policy = filetransfer.AcceptFrom(jid.MustParse("carol@example.net"))
	})
	res, err := filetransfer.Send(tctx(t), alice.m, bob.jid, filetransfer.BytesSource("x.txt", []byte("hi")))
	if !errors.Is(err, filetransfer.ErrDeclined) || !errors.Is(res[0].Err, filetransfer.ErrDeclined) {
		t.Fatalf("got %v, want declined", err)
	}
	if got := bob.result(t); !errors.Is(got.Err, filetransfer.ErrDeclined) {
		t.Fatalf("bob's result: %v", got.Err)
	}
	if files := listDir(t, bob.dir); len(files) != 0 {
		t.Fatalf("bob's directory holds %v", files)
	}
}

// TestResume cuts the stream at about half, then sends the same file
// again: the receiver resumes its .part with a <range/> and the whole-file
// hash verifies.
func TestResume(t *testing.T) {
	n := xmpptest.NewNetwork(t)
	x := jingletest.NewExchange()
	const size, cut = 3<<20 + 517, 3<<19 + 100
	alice := newParty(t, n, xmpptest.Alice, x, nil, &cutMethod{PipeMethod: &jingletest.PipeMethod{X: x}, cut: cut})
	bob := newParty(t, n, xmpptest.Bob, x, func(h *filetransfer.Handler) { h.Policy = filetransfer.AcceptAll })
	data := randomBytes(size, 42)
	src := filetransfer.BytesSource("movie.mkv", data)

	res, err := filetransfer.Send(tctx(t), alice.m, bob.jid, src)
	if !errors.Is(err, filetransfer.ErrTransport) {
		t.Fatalf("first send: %v, want a transport failure", err)
	}
	first := bob.result(t)
	if !errors.Is(first.Err, filetransfer.ErrTransport) {
		t.Fatalf("first receive: %v, want a transport failure", first.Err)
	}
	part := filepath.Join(bob.dir, "movie.mkv.part")
	if first.Path != part {
		t.Fatalf("partial file at %q, want %q", first.Path, part)
	}
	if got := completeFiles(t, bob.dir); len(got) != 0 {
		t.Fatalf("a complete-looking file after the cut: %v", got)
	}
	fi, err := os.Stat(part)
	if err != nil || fi.Size() != cut {
		t.Fatalf("partial file: %v, %d bytes, want %d", err, fi.Size(), cut)
	}
	if res[0].Bytes != cut {
		t.Fatalf("sender reports %d bytes sent, want %d", res[0].Bytes, cut)
	}

	res, err = filetransfer.Send(tctx(t), alice.m, bob.jid, src)
	if err != nil {
		t.Fatalf("second send: %v", err)
	}
	second := bob.result(t)
	if second.Err != nil || !second.Verified {
		t.Fatalf("second receive: %+v", second)
	}
	if second.Offset != cut || second.Bytes != size-cut || res[0].Offset != cut || res[0].Bytes != size-cut {
		t.Fatalf("resumed at %d/%d with %d/%d bytes; want %d and %d", second.Offset, res[0].Offset, second.Bytes, res[0].Bytes, cut, size-cut)
	}
	if second.Path != filepath.Join(bob.dir, "movie.mkv") || !bytes.Equal(second.Hash.Sum, sha256Of(data)) {
		t.Fatalf("resumed file %s with %v", second.Path, second.Hash)
	}
	wantFile(t, second.Path, data)
	if files := listDir(t, bob.dir); !slices.Equal(files, []string{"movie.mkv"}) {
		t.Fatalf("bob's directory holds %v", files)
	}
}

// TestResumeOtherPeerStartsOver: a .part recorded for alice is not resumed
// by carol's offer of a file with the same name and size.
func TestResumeOtherPeerStartsOver(t *testing.T) {
	n := xmpptest.NewNetwork(t)
	x := jingletest.NewExchange()
	const size, cut = 1 << 20, 1 << 19
	alice := newParty(t, n, xmpptest.Alice, x, nil, &cutMethod{PipeMethod: &jingletest.PipeMethod{X: x}, cut: cut})
	carol := newParty(t, n, "carol@example.net/c", x, nil)
	bob := newParty(t, n, xmpptest.Bob, x, func(h *filetransfer.Handler) { h.Policy = filetransfer.AcceptAll })
	data := randomBytes(size, 43)
	if _, err := filetransfer.Send(tctx(t), alice.m, bob.jid, filetransfer.BytesSource("a.bin", data)); !errors.Is(err, filetransfer.ErrTransport) {
		t.Fatalf("first send: %v", err)
	}
	bob.result(t)
	other := randomBytes(size, 44)
	res, err := filetransfer.Send(tctx(t), carol.m, bob.jid, filetransfer.BytesSource("a.bin", other))
	if err != nil {
		t.Fatal(err)
	}
	got := bob.result(t)
	if got.Err != nil || got.Offset != 0 || res[0].Offset != 0 {
		t.Fatalf("carol's file: %+v", got)
	}
	if got.Path != filepath.Join(bob.dir, "a (1).bin") {
		t.Fatalf("carol's file at %s", got.Path)
	}
	wantFile(t, got.Path, other)
	if _, err := os.Stat(filepath.Join(bob.dir, "a.bin.part")); err != nil {
		t.Fatalf("alice's partial file is gone: %v", err)
	}
}

// serveFrom returns a Serve hook that serves the named in-memory files.
func serveFrom(files map[string][]byte) func(context.Context, filetransfer.Request) (filetransfer.Source, error) {
	return func(_ context.Context, r filetransfer.Request) (filetransfer.Source, error) {
		d, ok := files[r.Name]
		if !ok {
			return filetransfer.Source{}, fmt.Errorf("no %q here", r.Name)
		}
		return filetransfer.BytesSource(r.Name, d), nil
	}
}

// TestFetch pulls a file (XEP-0234 file request) and asks for one that
// does not exist.
func TestFetch(t *testing.T) {
	data := randomBytes(700<<10, 9)
	_, alice, bob := newPair(t, func(h *filetransfer.Handler) {
		h.Serve = serveFrom(map[string][]byte{"doc.txt": data})
	})
	res, err := alice.h.Fetch(tctx(t), alice.m, bob.jid, filetransfer.Request{Name: "doc.txt"})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Verified || res.Path != filepath.Join(alice.dir, "doc.txt") {
		t.Fatalf("fetched %+v", res)
	}
	wantFile(t, res.Path, data)
	if done := alice.result(t); done.Path != res.Path {
		t.Fatalf("Done reported %+v", done)
	}

	_, err = alice.h.Fetch(tctx(t), alice.m, bob.jid, filetransfer.Request{Name: "missing.txt"})
	if !errors.Is(err, filetransfer.ErrNotAvailable) {
		t.Fatalf("fetching a missing file: %v, want not available", err)
	}
	alice.result(t)
	if got := listDir(t, alice.dir); !slices.Equal(got, []string{"doc.txt"}) {
		t.Fatalf("alice's directory: %v", got)
	}
}

// TestFetchResume cuts a fetch at about half and fetches again.
func TestFetchResume(t *testing.T) {
	n := xmpptest.NewNetwork(t)
	x := jingletest.NewExchange()
	const size, cut = 2<<20 + 3, 1<<20 + 7
	data := randomBytes(size, 10)
	alice := newParty(t, n, xmpptest.Alice, x, nil)
	// bob sends (he is the responder): cut his side of the first transport.
	bob := newParty(t, n, xmpptest.Bob, x, func(h *filetransfer.Handler) {
		h.Serve = serveFrom(map[string][]byte{"big.iso": data})
	}, &cutMethod{PipeMethod: &jingletest.PipeMethod{X: x}, cut: cut, responder: true})
	_, err := alice.h.Fetch(tctx(t), alice.m, bob.jid, filetransfer.Request{Name: "big.iso"})
	if !errors.Is(err, filetransfer.ErrTransport) {
		t.Fatalf("first fetch: %v", err)
	}
	alice.result(t)
	if fi, err := os.Stat(filepath.Join(alice.dir, "big.iso.part")); err != nil || fi.Size() != cut {
		t.Fatalf("partial file: %v", err)
	}
	res, err := alice.h.Fetch(tctx(t), alice.m, bob.jid, filetransfer.Request{Name: "big.iso"})
	if err != nil {
		t.Fatal(err)
	}
	alice.result(t)
	if res.Offset != cut || res.Bytes != size-cut || !res.Verified {
		t.Fatalf("second fetch: %+v", res)
	}
	wantFile(t, res.Path, data)
	if got := listDir(t, alice.dir); !slices.Equal(got, []string{"big.iso"}) {
		t.Fatalf("alice's directory: %v", got)
	}
}

// TestCancelFile: the receiver cancels one of two files mid-way; the other
// completes, and the cancelled one's .part stays for a resume.
func TestCancelFile(t *testing.T) {
	var once sync.Once
	_, alice, bob := newPair(t, func(h *filetransfer.Handler) {
		h.Progress = func(p filetransfer.Progress) {
			if p.Name == "a.bin" && p.Bytes >= 1<<20 {
				once.Do(p.Cancel)
			}
		}
	})
	a, b := randomBytes(4<<20, 1), randomBytes(3<<20, 2)
	res, err := filetransfer.Send(tctx(t), alice.m, bob.jid, filetransfer.BytesSource("a.bin", a), filetransfer.BytesSource("b.bin", b))
	if !errors.Is(err, filetransfer.ErrCanceled) || !errors.Is(res[0].Err, filetransfer.ErrCanceled) || res[1].Err != nil || !res[1].Verified {
		t.Fatalf("sender: %v / %+v", err, res)
	}
	byName := map[string]filetransfer.Result{}
	for range 2 {
		r := bob.result(t)
		byName[r.Name] = r
	}
	if r := byName["a.bin"]; !errors.Is(r.Err, filetransfer.ErrCanceled) || r.Path != filepath.Join(bob.dir, "a.bin.part") {
		t.Fatalf("cancelled file: %+v", r)
	}
	wantFile(t, byName["b.bin"].Path, b)
	if got := completeFiles(t, bob.dir); !slices.Equal(got, []string{"b.bin"}) {
		t.Fatalf("complete files: %v", got)
	}
}

// TestCancelSession: the sender gives up mid-way (its context ends); the
// receiver reports the cancellation and keeps the .part.
func TestCancelSession(t *testing.T) {
	_, alice, bob := newPair(t, nil)
	ctx, cancel := context.WithCancel(tctx(t))
	defer cancel()
	s := filetransfer.Sender{Progress: func(p filetransfer.Progress) {
		if p.Bytes >= 1<<20 {
			cancel()
		}
	}}
	res, err := s.Send(ctx, alice.m, bob.jid, filetransfer.BytesSource("c.bin", randomBytes(4<<20, 3)))
	if !errors.Is(err, filetransfer.ErrCanceled) || !errors.Is(res[0].Err, context.Canceled) {
		t.Fatalf("sender: %v", err)
	}
	r := bob.result(t)
	if !errors.Is(r.Err, filetransfer.ErrCanceled) || r.Path != filepath.Join(bob.dir, "c.bin.part") {
		t.Fatalf("receiver: %+v", r)
	}
	var te *filetransfer.TransferError
	if !errors.As(r.Err, &te) || te.Reason == nil || te.Reason.Condition != "cancel" {
		t.Fatalf("receiver's error %#v, want the peer's cancel reason", r.Err)
	}
	if got := completeFiles(t, bob.dir); len(got) != 0 {
		t.Fatalf("complete files: %v", got)
	}
}

// TestContentAdd: a file added to a running session (content-add) is
// accepted and received like the first.
func TestContentAdd(t *testing.T) {
	_, alice, bob := newPair(t, nil)
	ctx := tctx(t)
	d1, d2 := randomBytes(50000, 11), randomBytes(60000, 12)
	s := hostileSender(t, alice, bob.jid, filetransfer.File{Name: "first", Size: size(int64(len(d1))), Hashes: []filetransfer.Hash{sha256Hash(d1)}})
	el, err := jingle.NewElement(filetransfer.Description{File: &filetransfer.File{Name: "second", Size: size(int64(len(d2))), Hashes: []filetransfer.Hash{sha256Hash(d2)}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddContent(ctx, jingle.Offer{Name: "g", Senders: jingle.SendersInitiator, Description: el, Transports: []string{jingletest.PipeNS}}); err != nil {
		t.Fatal(err)
	}
	for {
		ev, err := s.NextEvent(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Action == jingle.ActionContentAccept {
			break
		}
	}
	for name, d := range map[string][]byte{"f": d1, "g": d2} {
		c, err := s.Conn(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(d); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]bool{}
	for range 2 {
		r := bob.result(t)
		if r.Err != nil || !r.Verified {
			t.Fatalf("%+v", r)
		}
		got[filepath.Base(r.Path)] = true
	}
	if !got["first"] || !got["second"] {
		t.Fatalf("received %v", got)
	}
	if r := endReason(t, s); r == nil || r.Condition != jingle.ReasonSuccess {
		t.Fatalf("session ended with %v", r)
	}
}

// BenchmarkTransfer sends an 8 MiB file over the in-memory network and the
// pipe transport: signalling, hashing on both sides and the disk.
func BenchmarkTransfer(b *testing.B) {
	const size = 8 << 20
	_, alice, bob := newPair(b, nil)
	src := filetransfer.BytesSource("bench.bin", randomBytes(size, 1))
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := filetransfer.Send(tctx(b), alice.m, bob.jid, src); err != nil {
			b.Fatal(err)
		}
		r := bob.result(b)
		if r.Err != nil {
			b.Fatal(r.Err)
		}
		os.Remove(r.Path)
	}
}

// TestNoChecksumNoFile drops the sender's checksum: the receiver has all
// the data but cannot verify it, so no complete file may appear; the full
// .part stays and a second offer completes it with nothing but the
// checksum.
func TestNoChecksumNoFile(t *testing.T) {
	n, alice, bob := newPair(t, func(h *filetransfer.Handler) {
		h.Timeouts.Checksum = 300 * time.Millisecond
	})
	var mu sync.Mutex
	drop := true
	n.SetFilter(func(from, to jid.JID, st []byte) []byte {
		mu.Lock()
		defer mu.Unlock()
		if drop && bytes.Contains(st, []byte("<checksum")) {
			return nil
		}
		return st
	})
	data := randomBytes(200<<10, 8)
	src := filetransfer.BytesSource("unverified.bin", data)
	if _, err := filetransfer.Send(tctx(t), alice.m, bob.jid, src); err == nil {
		t.Fatal("the sender reports success without the receiver's verification")
	}
	r := bob.result(t)
	if !errors.Is(r.Err, filetransfer.ErrUnverified) {
		t.Fatalf("receiver: %v, want unverified", r.Err)
	}
	if got := listDir(t, bob.dir); !slices.Equal(got, []string{filetransfer.StateDirName, "unverified.bin.part"}) {
		t.Fatalf("bob's directory: %v", got)
	}
	mu.Lock()
	drop = false
	mu.Unlock()
	res, err := filetransfer.Send(tctx(t), alice.m, bob.jid, src)
	if err != nil {
		t.Fatal(err)
	}
	r = bob.result(t)
	if r.Err != nil || r.Offset != int64(len(data)) || r.Bytes != 0 || res[0].Bytes != 0 {
		t.Fatalf("second offer: %+v", r)
	}
	wantFile(t, r.Path, data)
}

// TestHashOptions: stronger algorithms, hashes known in advance, and the
// Libervia encoding all verify.
func TestHashOptions(t *testing.T) {
	data := randomBytes(123456, 21)
	_, alice, bob := newPair(t, nil)
	for _, tc := range []struct {
		name     string
		sender   filetransfer.Sender
		src      func() filetransfer.Source
		wantAlgo string
	}{
		{"strong algorithms", filetransfer.Sender{Hashes: []string{filetransfer.BLAKE2b256, filetransfer.SHA3256, filetransfer.SHA512}},
			func() filetransfer.Source { return filetransfer.BytesSource("strong", data) }, filetransfer.SHA512},
		{"sha-1 only", filetransfer.Sender{Hashes: []string{filetransfer.SHA1}},
			func() filetransfer.Source { return filetransfer.BytesSource("weak", data) }, filetransfer.SHA1},
		{"hash in the offer", filetransfer.Sender{},
			func() filetransfer.Source {
				s := filetransfer.BytesSource("prehashed", data)
				s.Hashes = []filetransfer.Digest{{Algo: filetransfer.SHA256, Sum: sha256Of(data)}}
				return s
			}, filetransfer.SHA256},
		{"Libervia's encoding", filetransfer.Sender{HashEncoding: filetransfer.HexBase64},
			func() filetransfer.Source { return filetransfer.BytesSource("libervia", data) }, filetransfer.SHA256},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := tc.sender.Send(tctx(t), alice.m, bob.jid, tc.src())
			if err != nil {
				t.Fatal(err)
			}
			r := bob.result(t)
			if r.Err != nil || !r.Verified || r.Hash.Algo != tc.wantAlgo || !res[0].Verified {
				t.Fatalf("receiver %+v", r)
			}
			wantFile(t, r.Path, data)
		})
	}
}

// TestSuccessBeforeWorkerReport: with the hashes in the offer, the
// receiver verifies the file and ends the session with success as soon as
// the last byte arrives, possibly before the sender's worker has reported
// that it wrote everything (here, held by a slow Progress callback after
// the last write). The sender must wait for its worker, not call the file
// canceled.
func TestSuccessBeforeWorkerReport(t *testing.T) {
	data := randomBytes(123456, 22)
	_, alice, bob := newPair(t, nil)
	src := filetransfer.BytesSource("prehashed", data)
	src.Hashes = []filetransfer.Digest{{Algo: filetransfer.SHA256, Sum: sha256Of(data)}}
	s := filetransfer.Sender{Progress: func(p filetransfer.Progress) {
		if p.Bytes == p.Total {
			time.Sleep(300 * time.Millisecond) // the receiver's verdict arrives meanwhile
		}
	}}
	res, err := s.Send(tctx(t), alice.m, bob.jid, src)
	if err != nil {
		t.Fatal(err)
	}
	if r := bob.result(t); r.Err != nil || !r.Verified {
		t.Fatalf("receiver %+v", r)
	}
	if !res[0].Verified || res[0].Bytes != int64(len(data)) {
		t.Fatalf("sender %+v", res[0])
	}
}

// TestSourceWithoutReader: a Source whose Open returns neither a reader
// nor an error fails the file with ErrIO; it used to panic on the nil
// reader in the sending worker.
func TestSourceWithoutReader(t *testing.T) {
	_, alice, bob := newPair(t, nil)
	src := filetransfer.Source{Name: "nothing.bin", Size: 10, Open: func() (io.ReadCloser, error) { return nil, nil }}
	_, err := filetransfer.Send(tctx(t), alice.m, bob.jid, src)
	if !errors.Is(err, filetransfer.ErrIO) {
		t.Fatalf("Send = %v, want ErrIO", err)
	}
	if r := bob.result(t); r.Err == nil {
		t.Fatalf("receiver %+v, want a failure", r)
	}
}

// TestTransportFallback: the first transport cannot connect; the session
// falls back to the next one, or fails with a transport error when there
// is none.
func TestTransportFallback(t *testing.T) {
	n := xmpptest.NewNetwork(t)
	x := jingletest.NewExchange()
	methods := func() []jingle.TransportMethod {
		return []jingle.TransportMethod{&jingletest.PipeMethod{X: x, NS: jingletest.BrokenNS, Fail: true}, &jingletest.PipeMethod{X: x}}
	}
	alice := newParty(t, n, xmpptest.Alice, x, nil, methods()...)
	bob := newParty(t, n, xmpptest.Bob, x, func(h *filetransfer.Handler) { h.Policy = filetransfer.AcceptAll }, methods()...)
	data := []byte("over the second transport")

	s := filetransfer.Sender{Transports: []string{jingletest.BrokenNS, jingletest.PipeNS}}
	res, err := s.Send(tctx(t), alice.m, bob.jid, filetransfer.BytesSource("fb.txt", data))
	if err != nil || res[0].Transport != jingletest.PipeNS {
		t.Fatalf("with a fallback: %v, transport %q", err, res[0].Transport)
	}
	wantFile(t, bob.result(t).Path, data)

	s = filetransfer.Sender{Transports: []string{jingletest.BrokenNS}}
	_, err = s.Send(tctx(t), alice.m, bob.jid, filetransfer.BytesSource("nofb.txt", data))
	if !errors.Is(err, filetransfer.ErrTransport) || !errors.Is(err, jingle.ErrTransportFailed) {
		t.Fatalf("without a fallback: %v, want a transport failure", err)
	}
	if r := bob.result(t); !errors.Is(r.Err, filetransfer.ErrTransport) {
		t.Fatalf("receiver: %v", r.Err)
	}
	if got := completeFiles(t, bob.dir); !slices.Equal(got, []string{"fb.txt"}) {
		t.Fatalf("bob's directory: %v", listDir(t, bob.dir))
	}
}

// TestForeignReceiver sends to a hand-driven receiver: one that ends the
// session with success after the checksum without <received/> (as
// Libervia does), one that refuses the hash, and one that never answers.
func TestForeignReceiver(t *testing.T) {
	for _, tc := range []struct {
		name    string
		verdict string // session-terminate reason, "" for none
		kind    error  // nil: success
	}{
		{"success without received", "<success/>", nil},
		{"media-error", "<media-error/>", filetransfer.ErrHashMismatch},
		{"silence", "", filetransfer.ErrTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := xmpptest.NewNetwork(t)
			x := jingletest.NewExchange()
			alice := newParty(t, n, xmpptest.Alice, x, nil)
			peer := newRawPeer(t, n, "lv@example.net/libervia")
			data := randomBytes(40000, 31)
			type out struct {
				res []filetransfer.Result
				err error
			}
			done := make(chan out, 1)
			s := filetransfer.Sender{Timeouts: filetransfer.Timeouts{Verdict: 2 * time.Second}} // long enough for a loaded machine; "silence" waits it out
			go func() {
				res, err := s.Send(tctx(t), alice.m, peer.jid, filetransfer.BytesSource("to-lv.bin", data))
				done <- out{res, err}
			}()
			init := peer.expect(t, jingle.ActionSessionInitiate)
			ctx := tctx(t)
			c := init.Contents[0]
			if err := peer.send(ctx, alice.jid, `<jingle xmlns='urn:xmpp:jingle:1' action='session-accept' sid='`+init.SID+`' responder='lv@example.net/libervia'>`+
				`<content creator='initiator' name='`+c.Name+`' senders='initiator'>`+c.Description.String()+`<transport xmlns='`+jingletest.PipeNS+`'/></content></jingle>`); err != nil {
				t.Fatal(err)
			}
			conn := pipeConn(t, x, init.SID, c.Name, false)
			got := make([]byte, len(data))
			if _, err := io.ReadFull(conn, got); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read %v", err)
			}
			info := peer.expect(t, jingle.ActionSessionInfo)
			if len(info.Info) != 1 || info.Info[0].XMLName.Local != "checksum" {
				t.Fatalf("session-info %v, want a checksum", info.Info)
			}
			if tc.verdict != "" {
				if err := peer.send(ctx, alice.jid, `<jingle xmlns='urn:xmpp:jingle:1' action='session-terminate' sid='`+init.SID+`'><reason>`+tc.verdict+`</reason></jingle>`); err != nil {
					t.Fatal(err)
				}
			}
			o := <-done
			if tc.kind == nil {
				if o.err != nil || !o.res[0].Verified {
					t.Fatalf("%v %+v", o.err, o.res)
				}
				return
			}
			if !errors.Is(o.err, tc.kind) {
				t.Fatalf("got %v, want %v", o.err, tc.kind)
			}
		})
	}
}

// TestPolicy checks what the policy is shown and that its Decision is
// applied: a chosen name, and overwriting when it says so.
func TestPolicy(t *testing.T) {
	var mu sync.Mutex
	var seen []filetransfer.Offer
	_, alice, bob := newPair(t, func(h *filetransfer.Handler) {
		h.Policy = func(o filetransfer.Offer) filetransfer.Decision {
			mu.Lock()
			seen = append(seen, o)
			mu.Unlock()
			switch o.Name {
			case "rename-me":
				return filetransfer.Decision{Accept: true, Name: "../renamed.txt"}
			case "replace.txt":
				return filetransfer.Decision{Accept: true, Overwrite: true}
			}
			return filetransfer.Decision{}
		}
	})
	if err := os.WriteFile(filepath.Join(bob.dir, "replace.txt"), []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := filetransfer.BytesSource("rename-me", []byte("renamed"))
	src.MediaType, src.Desc = "text/plain", "a note"
	s := filetransfer.Sender{Hashes: []string{filetransfer.SHA256, filetransfer.SHA512}}
	if _, err := s.Send(tctx(t), alice.m, bob.jid, src, filetransfer.BytesSource("replace.txt", []byte("new"))); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		bob.result(t)
	}
	wantFile(t, filepath.Join(bob.dir, "renamed.txt"), []byte("renamed"))
	wantFile(t, filepath.Join(bob.dir, "replace.txt"), []byte("new"))
	if got := listDir(t, bob.dir); !slices.Equal(got, []string{"renamed.txt", "replace.txt"}) {
		t.Fatalf("bob's directory: %v", got)
	}
	mu.Lock()
	defer mu.Unlock()
	o := seen[0]
	if !o.From.Equal(alice.jid) || o.LocalName != "rename-me" || o.Size != 7 || o.MediaType != "text/plain" || o.Desc != "a note" ||
		!slices.Equal(o.HashAlgos, []string{filetransfer.SHA256, filetransfer.SHA512}) || o.Namespace != filetransfer.NS || o.SID == "" {
		t.Fatalf("the policy saw %+v", o)
	}
}

// TestUnknownSize: an offer without <size/> is read to the end of the
// stream, within the size limit.
func TestUnknownSize(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int
		kind error
	}{
		{"within the limit", 5000, nil},
		{"over the limit", 20000, filetransfer.ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, alice, bob := newPair(t, func(h *filetransfer.Handler) { h.Limits.MaxFileSize = 10000 })
			ctx := tctx(t)
			data := randomBytes(tc.n, 3)
			s := hostileSender(t, alice, bob.jid, filetransfer.File{Name: "nosize", HashUsed: []filetransfer.HashUsed{{Algo: "sha-256"}}})
			c, err := s.Conn(ctx, "f")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Write(data); err == nil {
				c.Close()
				_ = s.Info(ctx, checksumEl(t, sha256Hash(data)))
			}
			r := bob.result(t)
			if tc.kind == nil {
				if r.Err != nil || !r.Verified {
					t.Fatalf("%+v", r)
				}
				wantFile(t, r.Path, data)
				return
			}
			if !errors.Is(r.Err, tc.kind) {
				t.Fatalf("got %v, want %v", r.Err, tc.kind)
			}
			if got := listDir(t, bob.dir); len(got) != 0 {
				t.Fatalf("bob's directory: %v", got)
			}
		})
	}
}

// TestUnansweredReceived: a sender that never answers the receiver's
// session-info <received/> (StanzaJS 12.22.1 drops it unanswered, and
// stalls on it) does not hold up the end of the session: the receiver
// terminates it with success within 2 s of the last byte, and both sides
// succeed. For the last file no <received/> is sent at all: the
// session-terminate says it.
func TestUnansweredReceived(t *testing.T) {
	for _, files := range []int{1, 2} {
		t.Run(fmt.Sprintf("files=%d", files), func(t *testing.T) {
			var mu sync.Mutex
			var lastByte time.Time
			n, alice, bob := newPair(t, func(h *filetransfer.Handler) {
				h.Progress = func(p filetransfer.Progress) {
					if !p.Sending && p.Bytes == p.Total {
						mu.Lock()
						lastByte = time.Now()
						mu.Unlock()
					}
				}
			})
			var dropped atomic.Int32
			n.SetFilter(func(from, to jid.JID, st []byte) []byte {
				if to.Bare().Equal(alice.jid.Bare()) && bytes.Contains(st, []byte("<received")) {
					dropped.Add(1)
					return nil // the IQ never reaches alice, so nobody answers it
				}
				return st
			})
			var srcs []filetransfer.Source
			datas := map[string][]byte{}
			for i := range files {
				name := fmt.Sprintf("f%d.bin", i)
				datas[name] = randomBytes(1<<20, uint64(7+i))
				srcs = append(srcs, filetransfer.BytesSource(name, datas[name]))
			}
			res, err := filetransfer.Send(tctx(t), alice.m, bob.jid, srcs...)
			sent := time.Now()
			if err != nil {
				t.Fatalf("send: %v", err)
			}
			for range files {
				got := bob.result(t)
				if got.Err != nil || !got.Verified {
					t.Fatalf("receive: %v (verified %v)", got.Err, got.Verified)
				}
				wantFile(t, got.Path, datas[got.Name])
			}
			for i, r := range res {
				if r.Err != nil || !r.Verified {
					t.Fatalf("sender's result %d: %+v", i, r)
				}
			}
			// One <received/> per file but the last, whose end ends the
			// session.
			if got := int(dropped.Load()); got != files-1 {
				t.Fatalf("the receiver sent %d <received/>, want %d", got, files-1)
			}
			mu.Lock()
			defer mu.Unlock()
			if lastByte.IsZero() {
				t.Fatal("no progress report of the last byte")
			}
			if d := sent.Sub(lastByte); d > 2*time.Second {
				t.Fatalf("the session ended %s after the last byte, want at most 2s", d)
			}
			if s := bob.m.Sessions(); len(s) != 0 {
				t.Fatalf("bob still has %d sessions", len(s))
			}
		})
	}
}

// TestDoneThenClose: a receiver that shuts down as soon as Done reports its
// last file (as examples/receivefile -once does) must not fail the sender's
// transfer: the session-terminate <success/> is on its way before Done runs.
// Done here holds on until the manager's Close has had its say on the wire
// (or a second has passed), which makes the old order fail every time.
func TestDoneThenClose(t *testing.T) {
	got := make(chan struct{}, 1)
	gone := make(chan struct{})
	var once sync.Once
	n, alice, bob := newPair(t, func(h *filetransfer.Handler) {
		h.Done = func(filetransfer.Result) {
			got <- struct{}{}
			select {
			case <-gone:
			case <-time.After(time.Second):
			}
		}
	})
	n.SetFilter(func(from, to jid.JID, st []byte) []byte {
		if from.Equal(bob.jid) && bytes.Contains(st, []byte("session-terminate")) {
			once.Do(func() { close(gone) })
		}
		return st
	})
	go func() {
		<-got
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = bob.m.Close(ctx)
	}()
	res, err := filetransfer.Send(tctx(t), alice.m, bob.jid, filetransfer.BytesSource("a.txt", []byte("not really a photo")))
	if err != nil || !res[0].Verified {
		t.Fatalf("Send: %+v, %v", res, err)
	}
}
