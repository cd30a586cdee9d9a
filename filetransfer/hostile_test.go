package filetransfer_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jingletest"
	"github.com/jinglekit/jinglekit/xmpptest"
)

// TestHostileNames sends files under names a hostile peer might offer:
// each lands inside the receiver's directory under its sanitized name.
func TestHostileNames(t *testing.T) {
	_, alice, bob := newPair(t, nil)
	for i, tc := range []struct{ offered, want string }{
		{"../../x", "x"},
		{"/etc/passwd", "passwd"},
		{".bashrc", "bashrc"},
		{"..", filetransfer.DefaultName},
		{".", filetransfer.DefaultName},
		{"", filetransfer.DefaultName},
		{"dir/sub/file.txt", "file.txt"},
		{`..\..\windows\system32\evil.dll`, "evil.dll"},
		{`a\b`, "b"},
		{"CON", "CON"},
		{"-rf", "_rf"},
		{"invoice\u202egpj.exe", "invoicegpj.exe"},
		{"  ...hidden  ", "hidden"},
		{"tab\there", "tab_here"},
		{"e\u0301te\u0301.txt", "\u00e9t\u00e9.txt"},
		{strings.Repeat("n", 10<<10) + ".txt", strings.Repeat("n", 255-16-4) + ".txt"},
	} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			data := []byte(fmt.Sprintf("file %d", i))
			if _, err := filetransfer.Send(tctx(t), alice.m, bob.jid, filetransfer.BytesSource(tc.offered, data)); err != nil {
				t.Fatal(err)
			}
			got := bob.result(t)
			if got.Err != nil {
				t.Fatal(got.Err)
			}
			wantInside(t, bob.dir, got.Path)
			if base := filepath.Base(got.Path); base != tc.want {
				t.Fatalf("%q stored as %q, want %q", tc.offered, base, tc.want)
			}
			wantFile(t, got.Path, data)
			if err := os.Remove(got.Path); err != nil {
				t.Fatal(err)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(bob.dir), "x")); err == nil {
		t.Fatal("a file escaped the directory")
	}
}

// TestSymlinkNotFollowed: links planted where the file or its .part would
// go are neither followed nor replaced.
func TestSymlinkNotFollowed(t *testing.T) {
	_, alice, bob := newPair(t, nil)
	target := filepath.Join(t.TempDir(), "target")
	if err := os.WriteFile(target, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"a.txt", "b.txt.part"} {
		if err := os.Symlink(target, filepath.Join(bob.dir, l)); err != nil {
			t.Skip("no symbolic links:", err)
		}
	}
	for _, name := range []string{"a.txt", "b.txt"} {
		if _, err := filetransfer.Send(tctx(t), alice.m, bob.jid, filetransfer.BytesSource(name, []byte("attack"))); err != nil {
			t.Fatal(err)
		}
		got := bob.result(t)
		if got.Err != nil {
			t.Fatal(got.Err)
		}
		if fi, err := os.Lstat(got.Path); err != nil || !fi.Mode().IsRegular() {
			t.Fatalf("%s received into %s (%v)", name, got.Path, err)
		}
		wantFile(t, got.Path, []byte("attack"))
	}
	wantFile(t, target, []byte("keep"))
	for _, l := range []string{"a.txt", "b.txt.part"} {
		if fi, err := os.Lstat(filepath.Join(bob.dir, l)); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Fatalf("link %s replaced", l)
		}
	}
}

// hostileSender offers a hand-made <file/> from alice's Manager, without
// the package's sending logic, and returns the session once bob accepted.
func hostileSender(t *testing.T, alice *party, to jid.JID, f filetransfer.File) *jingle.Session {
	t.Helper()
	ctx := tctx(t)
	el, err := jingle.NewElement(filetransfer.Description{File: &f})
	if err != nil {
		t.Fatal(err)
	}
	s, err := alice.m.Initiate(ctx, to, jingle.Offer{Name: "f", Senders: jingle.SendersInitiator, Description: el, Transports: []string{jingletest.PipeNS}})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := s.NextEvent(ctx)
	if err != nil || ev.Action != jingle.ActionSessionAccept {
		t.Fatalf("waiting for accept: %v %v", ev.Action, err)
	}
	return s
}

// endReason reads the session's events until it ends and returns the
// reason of the peer's session-terminate or content-remove.
func endReason(t *testing.T, s *jingle.Session) *jingle.Reason {
	t.Helper()
	ctx := tctx(t)
	for {
		ev, err := s.NextEvent(ctx)
		if err != nil {
			t.Fatalf("session ended without a reason from the peer: %v", err)
		}
		if ev.Action == jingle.ActionSessionTerminate || ev.Action == jingle.ActionContentRemove {
			return ev.Reason
		}
	}
}

func checksumEl(t *testing.T, hashes ...filetransfer.Hash) jingle.Element {
	el, err := jingle.NewElement(filetransfer.Checksum{Creator: jingle.CreatorInitiator, Name: "f", File: filetransfer.File{Hashes: hashes}})
	if err != nil {
		t.Fatal(err)
	}
	return el
}

func size(n int64) *int64 { return &n }

func sha256Hash(b []byte) filetransfer.Hash {
	s := sha256.Sum256(b)
	return filetransfer.Hash{Algo: "sha-256", Value: base64.StdEncoding.EncodeToString(s[:])}
}

// TestHostileSender: a sender that sends more than offered, a wrong hash,
// or stops short never leaves a complete-looking file.
func TestHostileSender(t *testing.T) {
	// 3 MiB: the receiver hashes in a second goroutine (pipeMin).
	for _, n := range []int{100 << 10, 3 << 20} {
		t.Run(fmt.Sprint(n), func(t *testing.T) { testHostileSender(t, n) })
	}
}

func testHostileSender(t *testing.T, n int) {
	offered := randomBytes(n, 5)
	extra := append(append([]byte(nil), offered...), []byte("and more")...)
	wrong := append([]byte(nil), offered...)
	wrong[n-1234] ^= 1
	usedSHA256 := []filetransfer.HashUsed{{Algo: "sha-256"}}
	for _, tc := range []struct {
		name     string
		file     filetransfer.File
		send     []byte
		close    bool                // close the stream after sending
		checksum []filetransfer.Hash // nil: none
		cond     jingle.ReasonCondition
		tooLarge bool
		kind     error
		keepPart bool
	}{
		{name: "more bytes than offered, no checksum", file: filetransfer.File{Name: "a", Size: size(int64(len(offered))), HashUsed: usedSHA256},
			send: extra, cond: jingle.ReasonMediaError, tooLarge: true, kind: filetransfer.ErrTooLarge},
		{name: "more bytes than offered, checksum of the offered bytes", file: filetransfer.File{Name: "a", Size: size(int64(len(offered))), HashUsed: usedSHA256},
			send: extra, checksum: []filetransfer.Hash{sha256Hash(offered)}, cond: jingle.ReasonMediaError, tooLarge: true, kind: filetransfer.ErrTooLarge},
		{name: "more bytes than offered, hash in the offer", file: filetransfer.File{Name: "a", Size: size(int64(len(offered))), Hashes: []filetransfer.Hash{sha256Hash(extra)}},
			send: extra, cond: jingle.ReasonMediaError, kind: filetransfer.ErrHashMismatch},
		{name: "wrong checksum", file: filetransfer.File{Name: "a", Size: size(int64(len(offered))), HashUsed: usedSHA256},
			send: wrong, checksum: []filetransfer.Hash{sha256Hash(offered)}, cond: jingle.ReasonMediaError, kind: filetransfer.ErrHashMismatch},
		{name: "wrong hash in the offer", file: filetransfer.File{Name: "a", Size: size(int64(len(offered))), Hashes: []filetransfer.Hash{sha256Hash(offered)}},
			send: wrong, cond: jingle.ReasonMediaError, kind: filetransfer.ErrHashMismatch},
		{name: "one right and one wrong hash", file: filetransfer.File{Name: "a", Size: size(int64(len(offered))), HashUsed: []filetransfer.HashUsed{{Algo: "sha-256"}, {Algo: "sha-1"}}},
			send: offered, checksum: []filetransfer.Hash{sha256Hash(offered), {Algo: "sha-1", Value: base64.StdEncoding.EncodeToString(make([]byte, 20))}},
			cond: jingle.ReasonMediaError, kind: filetransfer.ErrHashMismatch},
		{name: "checksum of an algorithm nobody announced", file: filetransfer.File{Name: "a", Size: size(int64(len(offered))), HashUsed: usedSHA256},
			send: offered, checksum: []filetransfer.Hash{{Algo: "md5", Value: "AAAAAAAAAAAAAAAAAAAAAA=="}},
			cond: jingle.ReasonMediaError, kind: filetransfer.ErrUnverified, keepPart: true},
		{name: "fewer bytes than offered", file: filetransfer.File{Name: "a", Size: size(int64(len(offered))), HashUsed: usedSHA256},
			send: offered[:n/2], close: true, cond: jingle.ReasonConnectivityError, kind: filetransfer.ErrTransport, keepPart: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, alice, bob := newPair(t, nil)
			ctx := tctx(t)
			s := hostileSender(t, alice, bob.jid, tc.file)
			conn, err := s.Conn(ctx, "f")
			if err != nil {
				t.Fatal(err)
			}
			_, _ = conn.Write(tc.send)
			if tc.close {
				conn.Close()
			}
			if tc.checksum != nil {
				_ = s.Info(ctx, checksumEl(t, tc.checksum...))
			}
			r := endReason(t, s)
			if r == nil || r.Condition != tc.cond {
				t.Fatalf("bob ended with %v, want %s", r, tc.cond)
			}
			if got := slices.ContainsFunc(r.Extra, func(e jingle.Element) bool { return e.XMLName.Local == filetransfer.CondFileTooLarge }); got != tc.tooLarge {
				t.Fatalf("file-too-large in the reason: %v, want %v", got, tc.tooLarge)
			}
			res := bob.result(t)
			if !errors.Is(res.Err, tc.kind) {
				t.Fatalf("bob's result: %v, want %v", res.Err, tc.kind)
			}
			if got := completeFiles(t, bob.dir); len(got) != 0 {
				t.Fatalf("complete-looking files: %v", got)
			}
			var want []string
			if tc.keepPart {
				want = []string{filetransfer.StateDirName, "a.part"}
			}
			if got := listDir(t, bob.dir); !slices.Equal(got, want) {
				t.Fatalf("bob's directory: %v, want %v", got, want)
			}
		})
	}
}

// TestBadOffers: offers a receiver cannot honour are refused with the
// right reason and leave nothing behind.
func TestBadOffers(t *testing.T) {
	for _, tc := range []struct {
		name string
		file filetransfer.File
		cond jingle.ReasonCondition
	}{
		{"negative size", filetransfer.File{Name: "a", Size: size(-1), HashUsed: []filetransfer.HashUsed{{Algo: "sha-256"}}}, jingle.ReasonFailedApplication},
		{"only unknown hash algorithms", filetransfer.File{Name: "a", Size: size(3), HashUsed: []filetransfer.HashUsed{{Algo: "md5"}}}, jingle.ReasonFailedApplication},
		{"range beyond the size", filetransfer.File{Name: "a", Size: size(3), Range: &filetransfer.Range{Offset: size(4)}, HashUsed: []filetransfer.HashUsed{{Algo: "sha-256"}}}, jingle.ReasonFailedApplication},
		{"too large", filetransfer.File{Name: "a", Size: size(1 << 40), HashUsed: []filetransfer.HashUsed{{Algo: "sha-256"}}}, jingle.ReasonMediaError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, alice, bob := newPair(t, nil)
			ctx := tctx(t)
			el, err := jingle.NewElement(filetransfer.Description{File: &tc.file})
			if err != nil {
				t.Fatal(err)
			}
			s, err := alice.m.Initiate(ctx, bob.jid, jingle.Offer{Name: "f", Senders: jingle.SendersInitiator, Description: el, Transports: []string{jingletest.PipeNS}})
			if err != nil {
				t.Fatal(err)
			}
			if r := endReason(t, s); r == nil || r.Condition != tc.cond {
				t.Fatalf("ended with %v, want %s", r, tc.cond)
			}
			if r := bob.result(t); r.Err == nil {
				t.Fatal("bob reports success")
			}
			if got := listDir(t, bob.dir); len(got) != 0 {
				t.Fatalf("bob's directory: %v", got)
			}
		})
	}
}

// TestLimits: offers over the size limit and beyond the number of files
// are declined; nothing is written for them.
func TestLimits(t *testing.T) {
	_, alice, bob := newPair(t, func(h *filetransfer.Handler) {
		h.Limits = filetransfer.Limits{MaxFileSize: 1000, MaxFiles: 2}
	})
	_, err := filetransfer.Send(tctx(t), alice.m, bob.jid, filetransfer.BytesSource("big", make([]byte, 1001)))
	if !errors.Is(err, filetransfer.ErrTooLarge) || !strings.Contains(err.Error(), "maximum file size is 1000") {
		t.Fatalf("too large: %v, want the receiver's reason to name its limit", err)
	}
	if got := bob.result(t); !errors.Is(got.Err, filetransfer.ErrTooLarge) {
		t.Fatalf("bob's result: %v", got.Err)
	}
	if files := listDir(t, bob.dir); len(files) != 0 {
		t.Fatalf("bob's directory: %v", files)
	}

	res, err := filetransfer.Send(tctx(t), alice.m, bob.jid,
		filetransfer.BytesSource("one", []byte("1")), filetransfer.BytesSource("two", []byte("2")), filetransfer.BytesSource("three", []byte("3")))
	if res[0].Err != nil || res[1].Err != nil || !errors.Is(res[2].Err, filetransfer.ErrDeclined) {
		t.Fatalf("three files, two allowed: %v", err)
	}
	// Issue 13: a receiver that refuses for a limit says which.
	if !strings.Contains(res[2].Err.Error(), "more than 2 files in one session, the receiver's limit of files per session") {
		t.Fatalf("the refusal does not name the limit: %v", res[2].Err)
	}
	for range 3 {
		bob.result(t)
	}
	if files := listDir(t, bob.dir); !slices.Equal(files, []string{"one", "two"}) {
		t.Fatalf("bob's directory: %v", files)
	}
}

// TestOldNamespaces injects hand-written :4 and :3 offers, as older peers
// send them, and checks the answers come in the same namespace and the
// files arrive verified.
func TestOldNamespaces(t *testing.T) {
	data := randomBytes(30000, 77)
	sum := sha256.Sum256(data)
	hexSum := hex.EncodeToString(sum[:])
	for _, tc := range []struct {
		name, ns, desc, checksum string
	}{
		{
			name: "ft:4 with hashes:1 hex checksum",
			ns:   filetransfer.NS4,
			desc: `<description xmlns='urn:xmpp:jingle:apps:file-transfer:4'><file><name>four.bin</name><size>30000</size><hash xmlns='urn:xmpp:hashes:1' algo='sha-256'/></file></description>`,
			checksum: `<checksum xmlns='urn:xmpp:jingle:apps:file-transfer:4' creator='initiator' name='c'><file><hash xmlns='urn:xmpp:hashes:1' algo='sha-256'>` + hexSum +
				`</hash></file></checksum>`,
		},
		{
			name: "ft:3 offer wrapper, hex hash in the offer",
			ns:   filetransfer.NS3,
			desc: `<description xmlns='urn:xmpp:jingle:apps:file-transfer:3'><offer><file><name>three.bin</name><size>30000</size><hash xmlns='urn:xmpp:hashes:1' algo='sha-256'>` + hexSum + `</hash></file></offer></description>`,
		},
		{
			name: "ft:5 with Libervia's base64-of-hex checksum",
			ns:   filetransfer.NS,
			desc: `<description xmlns='urn:xmpp:jingle:apps:file-transfer:5'><file><name>five.bin</name><size>30000</size><media-type>application/octet-stream</media-type><desc/><range/><hash-used xmlns='urn:xmpp:hashes:2' algo='sha-256'/></file></description>`,
			checksum: `<checksum xmlns='urn:xmpp:jingle:apps:file-transfer:5' creator='initiator' name='c'><file><hash xmlns='urn:xmpp:hashes:2' algo='sha-256'>` +
				base64.StdEncoding.EncodeToString([]byte(hexSum)) + `</hash></file></checksum>`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := xmpptest.NewNetwork(t)
			x := jingletest.NewExchange()
			bob := newParty(t, n, xmpptest.Bob, x, func(h *filetransfer.Handler) { h.Policy = filetransfer.AcceptAll })
			old := newRawPeer(t, n, "old@example.net/client")
			ctx := tctx(t)
			sid := fmt.Sprintf("old-%x", sha256.Sum256([]byte(tc.name)))
			// Two files: the end of the first is acknowledged with
			// <received/>; the end of the second, which ends the session,
			// by the session-terminate alone.
			names := []string{"c", "d"}
			var contents string
			for _, name := range names {
				contents += `<content creator='initiator' name='` + name + `'>` + tc.desc + `<transport xmlns='` + jingletest.PipeNS + `'/></content>`
			}
			err := old.send(ctx, bob.jid, `<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='`+sid+`' initiator='old@example.net/client'>`+
				contents+`</jingle>`)
			if err != nil {
				t.Fatal(err)
			}
			acc := old.expect(t, jingle.ActionSessionAccept)
			if d := acc.Contents[0].Description; d == nil || d.Namespace() != tc.ns {
				t.Fatalf("answered with %v, want namespace %s", d, tc.ns)
			}
			if tc.ns == filetransfer.NS3 && !strings.Contains(acc.Contents[0].Description.String(), "<offer") {
				t.Fatalf("ft:3 answer without <offer/>: %s", acc.Contents[0].Description)
			}
			for i, name := range names {
				conn := pipeConn(t, x, sid, name, true)
				if _, err := conn.Write(data); err != nil {
					t.Fatal(err)
				}
				if tc.checksum != "" {
					cs := strings.Replace(tc.checksum, "name='c'", "name='"+name+"'", 1)
					if err := old.send(ctx, bob.jid, `<jingle xmlns='urn:xmpp:jingle:1' action='session-info' sid='`+sid+`'>`+cs+`</jingle>`); err != nil {
						t.Fatal(err)
					}
				}
				res := bob.result(t)
				if res.Err != nil || !res.Verified || !slices.Equal(res.Hash.Sum, sum[:]) {
					t.Fatalf("bob's result: %+v", res)
				}
				wantFile(t, res.Path, data)
				if tc.ns != filetransfer.NS3 && i == 0 {
					rc := old.expect(t, jingle.ActionSessionInfo)
					if len(rc.Info) != 1 || rc.Info[0].XMLName.Local != "received" || rc.Info[0].Namespace() != tc.ns {
						t.Fatalf("session-info %v, want <received/> in %s", rc.Info, tc.ns)
					}
				}
			}
			// Nothing (no <received/> for the last file) before the
			// session-terminate, nothing after it.
			var term *jingle.Jingle
			select {
			case term = <-old.seen:
			case <-time.After(30 * time.Second):
				t.Fatal("no session-terminate")
			}
			if term.Action != jingle.ActionSessionTerminate || term.Reason == nil || term.Reason.Condition != jingle.ReasonSuccess {
				t.Fatalf("got %s (%v), want session-terminate with success", term.Action, term.Reason)
			}
			select {
			case j := <-old.seen:
				t.Fatalf("after the session-terminate: %s", j.Action)
			case <-time.After(100 * time.Millisecond):
			}
		})
	}
}

// TestPlantedResumeState (issue 13, D1): alice, an allowed sender, offers
// "X.dat.part" and a sidecar "X.dat.part.meta" claiming carol's X.dat.
// carol's genuine X.dat must not resume alice's bytes: it arrives whole
// and verified, and alice's files are stored under names that are not the
// store's own.
func TestPlantedResumeState(t *testing.T) {
	n := xmpptest.NewNetwork(t)
	x := jingletest.NewExchange()
	alice := newParty(t, n, xmpptest.Alice, x, nil)
	carol := newParty(t, n, "carol@example.net/c", x, nil)
	bob := newParty(t, n, xmpptest.Bob, x, func(h *filetransfer.Handler) { h.Policy = filetransfer.AcceptAll })
	data := randomBytes(1000, 77)
	meta := fmt.Sprintf(`{"v":1,"peer":"carol@example.net","name":"X.dat","size":%d}`, len(data))
	for _, v := range []int{1, 2} {
		// The current record format too, in case a peer learns it.
		meta := strings.Replace(meta, `"v":1`, fmt.Sprintf(`"v":%d,"part":"X.dat.part"`, v), 1)
		for _, f := range []filetransfer.Source{
			filetransfer.BytesSource("X.dat.part", []byte("EVILEVILEVILEVIL")),
			filetransfer.BytesSource("X.dat.part.meta", []byte(meta)),
			filetransfer.BytesSource("../"+filetransfer.StateDirName+"/0123.json", []byte(meta)),
		} {
			if _, err := filetransfer.Send(tctx(t), alice.m, bob.jid, f); err != nil {
				t.Fatal(err)
			}
			if r := bob.result(t); r.Err != nil {
				t.Fatal(r.Err)
			} else if base := filepath.Base(r.Path); strings.HasSuffix(base, ".part") || strings.HasSuffix(base, ".part.meta") || strings.HasPrefix(base, ".") {
				t.Fatalf("%q stored as %q, a name of the store's own", f.Name, base)
			}
		}
	}
	res, err := filetransfer.Send(tctx(t), carol.m, bob.jid, filetransfer.BytesSource("X.dat", data))
	if err != nil {
		t.Fatalf("carol's send: %v", err)
	}
	got := bob.result(t)
	if got.Err != nil || got.Offset != 0 || res[0].Offset != 0 {
		t.Fatalf("carol's file resumed planted state: offset %d/%d, %v", got.Offset, res[0].Offset, got.Err)
	}
	wantFile(t, got.Path, data)
	if _, err := os.Stat(filepath.Join(bob.dir, filetransfer.StateDirName)); err == nil {
		t.Fatal("the resume state directory outlives the transfers")
	}
}

// TestTransportNeverComesUp (issue 13, D2): a sender whose transport never
// comes up (an IBB <open/> that never arrives) is given Timeouts.Connect;
// then the file fails with a timeout that says which one, the session
// ends, and nothing was created on disk.
func TestTransportNeverComesUp(t *testing.T) {
	n := xmpptest.NewNetwork(t)
	x := jingletest.NewExchange()
	hang := func() jingle.TransportMethod { return &jingletest.PipeMethod{X: x, Hang: true} }
	alice := newParty(t, n, xmpptest.Alice, x, nil, hang())
	bob := newParty(t, n, xmpptest.Bob, x, func(h *filetransfer.Handler) {
		h.Policy = filetransfer.AcceptAll
		h.Timeouts.Connect = 300 * time.Millisecond
	}, hang())
	// alice offers, then never connects.
	s := hostileSender(t, alice, bob.jid, filetransfer.File{Name: "a", Size: size(10), HashUsed: []filetransfer.HashUsed{{Algo: "sha-256"}}})
	r := bob.result(t)
	if !errors.Is(r.Err, filetransfer.ErrTimeout) || !strings.Contains(r.Err.Error(), "connect timeout") {
		t.Fatalf("bob's result: %v, want a connect timeout", r.Err)
	}
	if reason := endReason(t, s); reason == nil {
		t.Fatal("the session did not end")
	}
	if got := listDir(t, bob.dir); len(got) != 0 {
		t.Fatalf("bob's directory: %v", got)
	}
	if got := len(bob.m.Sessions()); got != 0 {
		t.Fatalf("bob keeps %d sessions", got)
	}
}
