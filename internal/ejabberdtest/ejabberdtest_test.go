package ejabberdtest_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/internal/ejabberdtest"
	"github.com/jinglekit/jinglekit/internal/testserver"
	"github.com/jinglekit/jinglekit/transports/ice"
	"github.com/jinglekit/jinglekit/xmppclient"
)

// shared is the node of the tests that do not stop it.
var shared ejabberdtest.Lazy

// envChild makes the test binary a child of TestKilledTestLeavesNothing.
const envChild = "EJABBERDTEST_CHILD_MARKER"

func TestMain(m *testing.M) {
	if marker := os.Getenv(envChild); marker != "" {
		os.Exit(child(marker))
	}
	os.Exit(testserver.MainNoLeaks(m, &shared))
}

// child starts a node, writes "DIR PID" of it to marker and waits to be
// killed.
func child(marker string) int {
	s, err := ejabberdtest.Start(context.Background(), ejabberdtest.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	pid := pidListening(s.C2SAddr)
	if err := os.WriteFile(marker, fmt.Appendf(nil, "%s %d", s.Dir, pid), 0o600); err != nil {
		return 4
	}
	time.Sleep(time.Minute)
	return 5
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func login(t *testing.T, addr, server, ca, pass string) *xmppclient.Client {
	t.Helper()
	c, err := xmppclient.Dial(testContext(t), xmppclient.Config{
		JID: jid.MustParse(addr), Password: pass, Server: server, CAFile: ca, CAFileOnly: true,
		Handler: mux.New(stanza.NSClient, xmppclient.HandleDisco(xmppclient.Caps{})),
	})
	if err != nil {
		t.Fatalf("login %s on %s: %v", addr, server, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestNode logs in to one node over STARTTLS with the harness's CA, finds
// the proxy65 service and reaches its streamhost, and checks the rosters
// MutualSubscribe wrote.
func TestNode(t *testing.T) {
	s := shared.Get(t)
	ctx := testContext(t)
	alice, pass := s.NewUser(t, "alice")
	bob, _ := s.NewUser(t, "bob")
	if err := s.MutualSubscribe(ctx, alice, bob); err != nil {
		t.Fatal(err)
	}
	out, err := s.API(ctx, "get_roster", map[string]any{"user": strings.Split(alice, "@")[0], "host": s.Domain})
	if err != nil || !strings.Contains(out, `"jid":"`+bob+`"`) || !strings.Contains(out, `"subscription":"both"`) {
		t.Fatalf("alice's roster: %s (%v)", out, err)
	}
	c := login(t, alice+"/t", s.C2SAddr, s.CAFile, pass)
	info, err := xmppclient.GetInfo(ctx, c.Session(), jid.MustParse(s.ProxyJID), "")
	if err != nil || !info.HasFeature("http://jabber.org/protocol/bytestreams") {
		t.Errorf("disco#info of %s: %+v, %v; want a bytestreams proxy", s.ProxyJID, info, err)
	}
	conn, err := net.DialTimeout("tcp", s.ProxyAddr, 5*time.Second)
	if err != nil {
		t.Fatalf("proxy65 streamhost: %v", err)
	}
	conn.Close()
	if err := s.AddUser(ctx, "UPPER", "x"); err == nil {
		t.Error("a localpart with upper-case letters was accepted")
	}
	// The configuration and the certificates load without complaint.
	log, err := os.ReadFile(s.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(log), "\n") {
		if (strings.Contains(line, "[warning]") || strings.Contains(line, "[error]")) &&
			(strings.Contains(line, "ejabberd_pkix") || strings.Contains(line, "ejabberd_config") || strings.Contains(line, "ejabberd_listener")) {
			t.Errorf("ejabberd.log: %s", line)
		}
	}
}

// TestExternalServices checks what mod_stun_disco announces through
// XEP-0215: the node's STUN and TURN listener, with TURN credentials.
func TestExternalServices(t *testing.T) {
	s := shared.Get(t)
	addr, pass := s.NewUser(t, "carol")
	c := login(t, addr+"/t", s.C2SAddr, s.CAFile, pass)
	servers, err := (&ice.Discovery{}).Servers(testContext(t), c.Session())
	if err != nil {
		t.Fatal(err)
	}
	var stun, turn bool
	for _, srv := range servers {
		switch {
		case srv.URL == "stun:"+s.STUNAddr:
			stun = true
		case srv.URL == "turn:"+s.STUNAddr+"?transport=udp" && srv.Username != "" && srv.Password != "":
			turn = true
		}
	}
	if !stun || !turn {
		t.Fatalf("announced %+v, want STUN and TURN (with credentials) at %s", servers, s.STUNAddr)
	}
}

// TestCluster joins two nodes: an account registered through node 1 logs
// in on node 2, a message crosses from a client of node 1 to one of node
// 2, and when node 2 stops its clients are cut off while node 1 serves on.
func TestCluster(t *testing.T) {
	c, err := ejabberdtest.StartCluster(testContext(t), ejabberdtest.Options{})
	if err != nil {
		skipIfMissing(t, err)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
	})
	n1, n2 := c.Nodes[0], c.Nodes[1]
	if n1.CAFile != n2.CAFile {
		t.Errorf("the nodes have different CAs: %s, %s", n1.CAFile, n2.CAFile)
	}
	alice, apass := c.NewUser(t, "alice")
	bob, bpass := c.NewUser(t, "bob")
	a := login(t, alice+"/n1", n1.C2SAddr, n1.CAFile, apass)
	b := login(t, bob+"/n2", n2.C2SAddr, n1.CAFile, bpass)
	ctx := testContext(t)
	// A disco#info from alice (node 1) to bob's full JID (node 2) is
	// answered by bob's client library across the cluster.
	if err := c.WaitSession(ctx, b.LocalAddr().String()); err != nil {
		t.Fatal(err)
	}
	if _, err := xmppclient.GetInfo(ctx, a.Session(), b.LocalAddr(), ""); err != nil {
		t.Fatalf("disco#info across the cluster: %v", err)
	}
	if err := n2.StopNode(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("bob's connection to the stopped node is still up")
	}
	if n2.Running() {
		t.Fatal("node 2 still runs")
	}
	_ = login(t, bob+"/n1", n1.C2SAddr, n1.CAFile, bpass)
}

// TestKilledTestLeavesNothing kills a test binary that started a node:
// the kernel kills the node and its epmd with it, and the next start
// removes the directory it left.
func TestKilledTestLeavesNothing(t *testing.T) {
	shared.Get(t) // skips without ejabberd
	marker := filepath.Join(t.TempDir(), "marker")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"="+marker)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var dir string
	var beam int
	deadline := time.Now().Add(60 * time.Second)
	for {
		if b, err := os.ReadFile(marker); err == nil {
			if _, err := fmt.Sscanf(string(b), "%s %d", &dir, &beam); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("the child did not start a node: %s", stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if beam == 0 {
		t.Fatal("no process listens on the child's c2s port")
	}
	epmdPids := processesWithCwd(dir)
	if len(epmdPids) == 0 {
		t.Fatalf("no process runs in %s", dir)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	for _, pid := range append(epmdPids, beam) {
		waitGone(t, pid)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the killed child's directory: %v; want it left for the next start", err)
	}
	// The next start removes it.
	s, err := ejabberdtest.Start(testContext(t), ejabberdtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale directory %s after the next start: %v", dir, err)
	}
}

// waitGone waits until pid has exited (or is a zombie).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	for range 100 {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return
		}
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && bytes.HasPrefix(bytes.TrimSpace(stat[i+1:]), []byte("Z")) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("process %d outlived the killed test binary", pid)
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// processesWithCwd lists the processes whose working directory is under dir.
func processesWithCwd(dir string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if cwd, _ := os.Readlink(filepath.Join("/proc", e.Name(), "cwd")); strings.HasPrefix(cwd, dir) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// pidListening finds the process with a socket listening on addr (TCP,
// IPv4), through /proc/net/tcp and the processes' file descriptors.
func pidListening(addr string) int {
	_, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return 0
	}
	defer f.Close()
	var inode string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 9 && strings.HasSuffix(fields[1], fmt.Sprintf(":%04X", port)) && fields[3] == "0A" {
			inode = fields[9]
		}
	}
	if inode == "" {
		return 0
	}
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range fds {
		if l, _ := os.Readlink(fd); l == "socket:["+inode+"]" {
			pid, _ := strconv.Atoi(strings.Split(fd, "/")[2])
			return pid
		}
	}
	return 0
}

func skipIfMissing(t *testing.T, err error) {
	t.Helper()
	if errors.Is(err, ejabberdtest.ErrNotInstalled) && os.Getenv(ejabberdtest.EnvRequire) != "1" {
		t.Skip(err)
	}
}

// TestMissing reports a missing ejabberd as ErrNotInstalled, which Lazy
// turns into a skip, or a failure with JINGLEKIT_REQUIRE_EJABBERD=1.
func TestMissing(t *testing.T) {
	_, err := ejabberdtest.Start(t.Context(), ejabberdtest.Options{Erl: "/nonexistent/erl"})
	if !errors.Is(err, ejabberdtest.ErrNotInstalled) {
		t.Fatalf("Start without erl: %v", err)
	}
	_, err = ejabberdtest.Start(t.Context(), ejabberdtest.Options{ErlLibs: t.TempDir()})
	if !errors.Is(err, ejabberdtest.ErrNotInstalled) {
		t.Fatalf("Start without the ejabberd application: %v", err)
	}
	t.Run("required", func(t *testing.T) {
		t.Setenv(ejabberdtest.EnvRequire, "1")
		ft := &fakeT{TB: t}
		l := ejabberdtest.Lazy{Options: ejabberdtest.Options{Erl: "/nonexistent/erl"}}
		func() {
			defer func() { _ = recover() }()
			l.Get(ft)
		}()
		if !ft.failed || ft.skipped {
			t.Fatalf("required: failed=%v skipped=%v", ft.failed, ft.skipped)
		}
	})
	t.Run("optional", func(t *testing.T) {
		t.Setenv(ejabberdtest.EnvRequire, "")
		ft := &fakeT{TB: t}
		l := ejabberdtest.Lazy{Options: ejabberdtest.Options{Erl: "/nonexistent/erl"}}
		func() {
			defer func() { _ = recover() }()
			l.Get(ft)
		}()
		if ft.failed || !ft.skipped {
			t.Fatalf("optional: failed=%v skipped=%v", ft.failed, ft.skipped)
		}
	})
}

// fakeT records Skip and Fatal instead of ending the test.
type fakeT struct {
	testing.TB
	failed, skipped bool
}

type stop struct{}

func (f *fakeT) Helper()                  {}
func (f *fakeT) Skip(...any)              { f.skipped = true; panic(stop{}) }
func (f *fakeT) Fatal(...any)             { f.failed = true; panic(stop{}) }
func (f *fakeT) Context() context.Context { return context.Background() }
