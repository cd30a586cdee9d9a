package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/internal/prosodytest"
	"github.com/jinglekit/jinglekit/internal/testproc"
	"github.com/jinglekit/jinglekit/internal/xmltest"
	"github.com/jinglekit/jinglekit/transports/ibb"
	"github.com/jinglekit/jinglekit/transports/socks5"
)

// EnvRequireLibervia makes a missing Libervia fail the interop test
// instead of skipping it (CI sets it).
const EnvRequireLibervia = "JINGLEKIT_REQUIRE_LIBERVIA"

// lvHarness runs the Libervia interop harness of ../shared/peers/libervia
// from a copy (the shared folder is read-only): a private Prosody on
// 127.0.0.1:15222 and libervia backends for alice and bob.
//
// The harness's scripts start their daemons with setsid (Prosody, the
// libervia backends and their dbus-daemons), out of reach of the process
// group and PR_SET_PDEATHSIG of the script: every script runs in a
// testproc group with a guard, which kills whatever they started as soon
// as the test binary dies, and the next run kills what a dead run left.
type lvHarness struct {
	dir   string // the copy of the harness
	state string // parent of the daemons' state directories
	ca    string // the CA of its Prosody
	group *testproc.Group
}

// lvPorts are the fixed ports of the harness's Prosody (c2s, proxy65).
var lvPorts = []string{"127.0.0.1:15222", "127.0.0.1:15000"}

func startLibervia(t *testing.T) *lvHarness {
	t.Helper()
	missing := func(what string) {
		msg := fmt.Sprintf("libervia interop needs %s: apt-get install --no-install-recommends "+
			"prosody lua-unbound libervia-backend libervia-cli dbus python3-progressbar", what)
		if os.Getenv(EnvRequireLibervia) == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	for _, cmd := range []string{"prosody", "libervia-backend", "libervia-cli", "dbus-daemon"} {
		if _, err := exec.LookPath(cmd); err != nil {
			missing(cmd)
		}
	}
	// Without it libervia-cli file receive never exits (../shared/peers/libervia/README.md).
	if exec.Command("/usr/bin/python3", "-c", "import progressbar").Run() != nil {
		missing("python3-progressbar")
	}
	src := filepath.Join(xmltest.SharedDir(t), "peers", "libervia")
	h := &lvHarness{dir: filepath.Join(t.TempDir(), "libervia"), state: t.TempDir()}
	group, err := testproc.NewGroup("libervia", testproc.GroupOptions{Guard: true})
	if err != nil {
		t.Fatal(err)
	}
	h.group = group
	for _, l := range group.Leftovers() {
		t.Logf("killed a leftover of an earlier run of this harness that was killed: pid %d: %s", l.Pid, l.Cmdline)
	}
	t.Cleanup(func() {
		h.run(t, nil, "./libervia-down")
		h.run(t, nil, "./prosody-down")
		// Whatever the scripts did not stop, before the directories go.
		if err := group.Close(); err != nil {
			t.Errorf("stopping what the Libervia harness started: %v", err)
		}
	})
	for _, addr := range lvPorts {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = c.Close()
			t.Fatalf("%s is in use, and not by a leftover of this harness (those were killed above): "+
				"another run of the Libervia harness? Run them one at a time (flock /tmp/jinglekit-libervia.lock)", addr)
		}
	}
	if out, err := exec.Command("cp", "-r", src, h.dir).CombinedOutput(); err != nil {
		t.Fatalf("copying the harness: %v: %s", err, out)
	}
	_ = exec.Command("chmod", "-R", "u+w", h.dir).Run()
	_ = os.RemoveAll(filepath.Join(h.dir, "run"))
	pdir := filepath.Join(h.state, "prosody")
	h.mustRun(t, nil, "./prosody-up", pdir)
	h.ca = filepath.Join(pdir, "certs", "ca.crt")
	h.up(t, nil, "bob")
	return h
}

// up starts a libervia backend for profile, with a fresh state directory
// in h.state.
func (h *lvHarness) up(t *testing.T, env []string, profile string) {
	t.Helper()
	dir, err := os.MkdirTemp(h.state, profile+"-")
	if err != nil {
		t.Fatal(err)
	}
	h.mustRun(t, env, "./libervia-up", profile, dir)
}

func (h *lvHarness) command(ctx context.Context, env []string, name string, args ...string) *exec.Cmd {
	cmd := h.group.CommandContext(ctx, name, args...)
	cmd.Dir = h.dir
	cmd.Env = append(cmd.Env, env...)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

func (h *lvHarness) run(t *testing.T, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := testproc.CombinedOutput(h.command(ctx, env, name, args...))
	return string(out), err
}

func (h *lvHarness) mustRun(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	out, err := h.run(t, env, name, args...)
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return out
}

var receivedRE = regexp.MustCompile(`receive-file: OK (\S+) size=(\d+) sha256=([0-9a-f]+) hash_verified=(\w+)`)

// TestLibervia exchanges 10 MiB files with a real Libervia 0.9 in both
// directions over S5B and over IBB; every file must arrive byte-identical,
// and Libervia must have verified our checksum.
func TestLibervia(t *testing.T) {
	h := startLibervia(t)
	const size = 10 << 20
	opts := peerOpts{s5b: socks5.Settings{NoProxyDiscovery: true}}
	carol := newPeerOn(t, &prosodytest.Server{Domain: "localhost", C2SAddr: "127.0.0.1:15222", CAFile: h.ca},
		"carol@localhost/jinglekit", "pass", opts)
	bob := jid.MustParse("bob@localhost/libervia")

	for _, tc := range []struct {
		name      string
		transport string
	}{{"s5b", socks5.NS}, {"ibb", ibb.NSTransport}} {
		t.Run("to-libervia-"+tc.name, func(t *testing.T) {
			path, sum := randomFile(t, "to-lv-"+tc.name+".bin", size, 11)
			ready := filepath.Join(t.TempDir(), "ready")
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			recv := h.command(ctx, []string{"READY_FILE=" + ready, "RECEIVE_TIMEOUT=150"}, "./receive-file", "bob", t.TempDir())
			var out lockedBuffer
			recv.Stdout, recv.Stderr = &out, &out
			proc, err := testproc.Start(recv)
			if err != nil {
				t.Fatal(err)
			}
			waitFile(t, ready, &out)
			src, err := filetransfer.FileSource(path)
			if err != nil {
				t.Fatal(err)
			}
			s := filetransfer.Sender{Transports: []string{tc.transport}, HashEncoding: filetransfer.HexBase64}
			res, serr := s.Send(ctx, carol.m, bob, src)
			werr := proc.Wait()
			if serr != nil || werr != nil {
				t.Fatalf("send: %v; receive-file: %v\n%s", serr, werr, out.String())
			}
			m := receivedRE.FindStringSubmatch(out.String())
			if m == nil {
				t.Fatalf("receive-file did not report a file:\n%s", out.String())
			}
			if m[3] != sum || m[2] != fmt.Sprint(size) {
				t.Fatalf("libervia got size %s sha256 %s, want %d %s", m[2], m[3], size, sum)
			}
			if m[4] != "yes" {
				t.Fatalf("libervia did not verify our checksum (hash_verified=%s)", m[4])
			}
			if res[0].Transport != tc.transport {
				t.Fatalf("sent over %s, want %s", res[0].Transport, tc.transport)
			}
		})
	}

	for _, tc := range []struct {
		name      string
		transport string
		env       []string
	}{{"s5b", socks5.NS, nil}, {"ibb", ibb.NSTransport, []string{"LV_FORCE_IBB=1"}}} {
		t.Run("from-libervia-"+tc.name, func(t *testing.T) {
			h.run(t, nil, "./libervia-down", "alice")
			h.up(t, tc.env, "alice")
			path, sum := randomFile(t, "from-lv-"+tc.name+".bin", size, 12)
			out, err := h.run(t, []string{"SEND_TIMEOUT=150"}, "./send-file", "alice", carol.jid.String(), path)
			if err != nil {
				t.Fatalf("send-file: %v\n%s", err, out)
			}
			r := carol.result(t)
			checkReceived(t, r, sum, size)
			if r.Transport != tc.transport {
				t.Fatalf("received over %s, want %s", r.Transport, tc.transport)
			}
		})
	}
}

// lockedBuffer collects the output of a running command, which the test
// reads meanwhile.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// waitFile waits until path exists (a ready marker).
func waitFile(t *testing.T, path string, log *lockedBuffer) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			sc := bufio.NewScanner(strings.NewReader(log.String()))
			var tail []string
			for sc.Scan() {
				tail = append(tail, sc.Text())
			}
			t.Fatalf("receiver never got ready:\n%s", strings.Join(tail, "\n"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
