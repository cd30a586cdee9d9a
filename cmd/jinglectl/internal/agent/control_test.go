package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func shortDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("/tmp", "jka")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func TestListenControl(t *testing.T) {
	dir := shortDir(t)
	sock := filepath.Join(dir, "sub", "agent.sock")
	ln, err := ListenControl(sock)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(sock)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket %v, mode %v", err, fi.Mode())
	}
	if di, _ := os.Stat(filepath.Dir(sock)); di.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v", di.Mode().Perm())
	}
	// A second agent on the same socket is refused.
	if _, err := ListenControl(sock); !errors.Is(err, ErrControl) || !strings.Contains(err.Error(), "already listening") {
		t.Errorf("second listener: %v", err)
	}
	ln.Close()
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("socket left after Close: %v", err)
	}

	// A stale socket is replaced.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	ln, err = ListenControl(sock)
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	ln.Close()

	// A regular file is never removed.
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("precious"), 0o600)
	if _, err := ListenControl(file); !errors.Is(err, ErrControl) || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("regular file: %v", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "precious" {
		t.Error("the file was touched")
	}
	if _, err := DialControl(t.Context(), file); !errors.Is(err, ErrControl) {
		t.Errorf("dial a regular file: %v", err)
	}
	if _, err := DialControl(t.Context(), filepath.Join(dir, "none")); !errors.Is(err, ErrControl) || !strings.Contains(err.Error(), "no agent") {
		t.Errorf("dial nothing: %v", err)
	}
}

func TestControlSocketOfAnotherUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to give a socket to another user")
	}
	sock := filepath.Join(shortDir(t), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := os.Chown(sock, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if _, err := DialControl(t.Context(), sock); !errors.Is(err, ErrControl) || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Errorf("dial: %v", err)
	}
	if _, err := ListenControl(sock); !errors.Is(err, ErrControl) || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Errorf("listen: %v", err)
	}
}

// serveOnly runs an agent's control socket without any XMPP connection.
func serveOnly(t *testing.T) (*Agent, string) {
	t.Helper()
	dir := shortDir(t)
	a := New(Config{Socket: filepath.Join(dir, "a.sock"), StateFile: filepath.Join(dir, "state.json"), Concurrency: 1}, slog.New(slog.DiscardHandler))
	ln, err := ListenControl(a.cfg.Socket)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); a.acceptLoop(ctx, ln, &wg) }()
	t.Cleanup(func() {
		cancel()
		a.mu.Lock()
		for w := range a.watchers {
			w.close()
		}
		a.mu.Unlock()
		ln.Close()
		wg.Wait()
	})
	return a, a.cfg.Socket
}

// exchange writes raw to the control socket and returns the reply lines.
func exchange(t *testing.T, sock, raw string) []Reply {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	c.(*net.UnixConn).CloseWrite()
	var out []Reply
	sc := bufio.NewScanner(c)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r Reply
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("reply %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

// TestControlProtocolHostile sends malformed and abusive requests: each
// gets one error reply and changes nothing.
func TestControlProtocolHostile(t *testing.T) {
	a, sock := serveOnly(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	os.WriteFile(file, []byte("x"), 0o600)
	for _, tc := range []struct{ name, raw, want string }{
		{"not json", "hello\n", "malformed request"},
		{"unknown op", `{"op":"format-disk"}` + "\n", `unknown operation "format-disk"`},
		{"no peer", `{"op":"send","files":["` + file + `"]}` + "\n", "invalid recipient"},
		{"bad peer", `{"op":"send","peer":"@@","files":["` + file + `"]}` + "\n", "invalid recipient"},
		{"no files", `{"op":"send","peer":"bob@example.org"}` + "\n", "between 1 and"},
		{"relative path", `{"op":"send","peer":"bob@example.org","files":["f"]}` + "\n", "absolute paths"},
		{"missing file", `{"op":"send","peer":"bob@example.org","files":["/nonexistent/x"]}` + "\n", "no such file"},
		{"directory", `{"op":"send","peer":"bob@example.org","files":["` + dir + `"]}` + "\n", "not a regular file"},
		{"bad transport", `{"op":"send","peer":"bob@example.org","files":["` + file + `"],"transport":"udp"}` + "\n", "unknown transport"},
		{"bad encryption mode", `{"op":"send","peer":"bob@example.org","files":["` + file + `"],"encrypt":"maybe"}` + "\n", "unknown encryption mode"},
		{"cancel nothing", `{"op":"cancel"}` + "\n", "no transfer id"},
		{"too long", strings.Repeat("x", MaxRequestBytes+10) + "\n", "reading the request"},
		{"empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := exchange(t, sock, tc.raw)
			if tc.want == "" {
				if len(rs) != 0 {
					t.Errorf("replies to nothing: %+v", rs)
				}
				return
			}
			if len(rs) != 1 || rs[0].Event.Event != EventError || !strings.Contains(rs[0].Error, tc.want) {
				t.Errorf("replies %+v, want one error with %q", rs, tc.want)
			}
		})
	}
	if st := a.status(); len(st.Transfers) != 0 || st.Queued != 0 {
		t.Errorf("hostile requests changed the state: %+v", st)
	}
	// Cancel of unknown ids answers per id.
	rs := exchange(t, sock, `{"op":"cancel","ids":["s1","../etc"]}`+"\n")
	if len(rs) != 2 || rs[0].ID != "s1" || !strings.Contains(rs[1].Error, "no transfer") {
		t.Errorf("cancel replies %+v", rs)
	}
	// A queued send can be cancelled while disconnected, and is saved.
	rs = exchange(t, sock, `{"op":"send","peer":"bob@example.org","files":["`+file+`","`+file+`"]}`+"\n")
	if len(rs) != 1 || rs[0].Event.Event != EventQueued || len(rs[0].IDs) != 2 {
		t.Fatalf("send replies %+v", rs)
	}
	st := a.status()
	if st.Queued != 2 || st.Connected {
		t.Errorf("status after queueing: %+v", st)
	}
	b, _ := os.ReadFile(a.cfg.StateFile)
	if !strings.Contains(string(b), rs[0].IDs[0]) || !strings.Contains(string(b), rs[0].IDs[1]) {
		t.Errorf("state file: %s", b)
	}
	cr := exchange(t, sock, `{"op":"cancel","ids":["`+rs[0].IDs[0]+`"]}`+"\n")
	if len(cr) != 1 || cr[0].Event.Event != ReplyCanceled {
		t.Errorf("cancel replies %+v", cr)
	}
	if st := a.status(); st.Queued != 1 || st.Transfers[0].State != StateCanceled || st.Transfers[0].Outcome != OutcomeCanceled {
		t.Errorf("status after cancel: %+v", st)
	}
	b, _ = os.ReadFile(a.cfg.StateFile)
	if strings.Contains(string(b), `"`+rs[0].IDs[0]+`"`) {
		t.Errorf("cancelled file still in the state file: %s", b)
	}

	// A new agent on the same state file takes the queue over.
	a2 := New(Config{StateFile: a.cfg.StateFile}, slog.New(slog.DiscardHandler))
	if err := a2.loadState(); err != nil {
		t.Fatal(err)
	}
	if st := a2.status(); st.Queued != 1 || st.Transfers[0].ID != rs[0].IDs[1] {
		t.Errorf("reloaded: %+v", st)
	}
	// A corrupt state file is an error, not a crash.
	os.WriteFile(a.cfg.StateFile, []byte("{"), 0o600)
	if err := New(Config{StateFile: a.cfg.StateFile}, nil).loadState(); err == nil {
		t.Error("corrupt state file accepted")
	}
}

// TestWatcherSlowClient: a client that does not read is cut off rather
// than blocking the agent.
func TestWatcherSlowClient(t *testing.T) {
	a := New(Config{}, slog.New(slog.DiscardHandler))
	w := newWatcher()
	a.watchers[w] = struct{}{}
	a.mu.Lock()
	for i := range watcherBuffer * 2 {
		a.broadcastLocked(Event{Event: EventProgress, ID: "x", Bytes: int64(i)})
	}
	if len(a.watchers) != 1 {
		t.Error("a slow client lost progress events must stay")
	}
	for range watcherBuffer * 2 {
		a.broadcastLocked(Event{Event: EventAccepted, ID: "x"})
	}
	a.mu.Unlock()
	if len(a.watchers) != 0 || !w.closed {
		t.Error("a client that fell behind on important events must be dropped")
	}
}

// TestControlSocketDirHostile plants what another local user could leave
// where the agent puts its socket (/tmp/jinglectl-UID when XDG_RUNTIME_DIR
// is unset): each is refused and nothing is changed through it.
func TestControlSocketDirHostile(t *testing.T) {
	t.Run("world-writable directory", func(t *testing.T) {
		dir := filepath.Join(shortDir(t), "jinglectl-1000")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		// os.Chmod, not Mkdir's mode: the umask must not hide the 0777.
		if err := os.Chmod(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		sock := filepath.Join(dir, "agent.sock")
		if ln, err := ListenControl(sock); !errors.Is(err, ErrControl) || !strings.Contains(err.Error(), "others can write") {
			if ln != nil {
				ln.Close()
			}
			t.Errorf("listen in a 0777 directory: %v", err)
		}
		if _, err := os.Lstat(sock); !os.IsNotExist(err) {
			t.Errorf("a socket was created in the 0777 directory: %v", err)
		}
		if di, _ := os.Lstat(dir); di.Mode().Perm() != 0o777 {
			t.Errorf("the planted directory was changed to %v", di.Mode().Perm())
		}
	})
	t.Run("symbolic link to a directory", func(t *testing.T) {
		base := shortDir(t)
		target := filepath.Join(base, "target")
		if err := os.Mkdir(target, 0o700); err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(base, "jinglectl-1000")
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		if ln, err := ListenControl(filepath.Join(link, "agent.sock")); !errors.Is(err, ErrControl) || !strings.Contains(err.Error(), "symbolic link") {
			if ln != nil {
				ln.Close()
			}
			t.Errorf("listen through a symlinked directory: %v", err)
		}
		if ents, _ := os.ReadDir(target); len(ents) != 0 {
			t.Errorf("something was created through the link: %v", ents)
		}
	})
	t.Run("symbolic link as the socket", func(t *testing.T) {
		// The planted link points at a file of someone else's: neither
		// removed, nor followed, nor chmod-ed.
		base := shortDir(t)
		victim := filepath.Join(base, "victim")
		if err := os.WriteFile(victim, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(base, "d")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		sock := filepath.Join(dir, "agent.sock")
		if err := os.Symlink(victim, sock); err != nil {
			t.Fatal(err)
		}
		if ln, err := ListenControl(sock); !errors.Is(err, ErrControl) {
			if ln != nil {
				ln.Close()
			}
			t.Errorf("listen on a planted link: %v", err)
		}
		if fi, _ := os.Stat(victim); fi.Mode().Perm() != 0o644 {
			t.Errorf("the link's target was changed to %v", fi.Mode().Perm())
		}
		if fi, err := os.Lstat(sock); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("the planted link was removed: %v", err)
		}
	})
	t.Run("directory of another user", func(t *testing.T) {
		if os.Getuid() != 0 {
			t.Skip("needs root to give a directory to another user")
		}
		dir := filepath.Join(shortDir(t), "jinglectl-0")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		sock := filepath.Join(dir, "agent.sock")
		if ln, err := ListenControl(sock); !errors.Is(err, ErrControl) || !strings.Contains(err.Error(), "owned by uid 65534") {
			if ln != nil {
				ln.Close()
			}
			t.Errorf("listen in another user's directory: %v", err)
		}
		if _, err := os.Lstat(sock); !os.IsNotExist(err) {
			t.Errorf("a socket was created in another user's directory: %v", err)
		}
	})
	t.Run("client refuses a 0777 directory", func(t *testing.T) {
		dir := filepath.Join(shortDir(t), "d")
		os.Mkdir(dir, 0o700)
		sock := filepath.Join(dir, "agent.sock")
		ln, err := ListenControl(sock)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		os.Chmod(dir, 0o777)
		if c, err := DialControl(t.Context(), sock); !errors.Is(err, ErrControl) || !strings.Contains(err.Error(), "others can write") {
			if c != nil {
				c.Close()
			}
			t.Errorf("dial in a 0777 directory: %v", err)
		}
	})
}

// TestControlPeerCheckFailsClosed: a connection whose peer's uid cannot
// be read is refused, by the agent and by the client.
func TestControlPeerCheckFailsClosed(t *testing.T) {
	sock := filepath.Join(shortDir(t), "p.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	if err := checkPeer(c, true); err != nil {
		t.Errorf("our own connection refused: %v", err)
	}
	// A closed connection: its peer's credentials cannot be read.
	c.Close()
	if err := checkPeer(c, true); !errors.Is(err, ErrControl) || !strings.Contains(err.Error(), "cannot read the uid") {
		t.Errorf("unreadable peer: %v", err)
	}
}
