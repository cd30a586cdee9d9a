package linklocal_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/mdns/v2"
	"golang.org/x/net/ipv4"

	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/internal/testproc"
	"github.com/jinglekit/jinglekit/jingletest"
	"github.com/jinglekit/jinglekit/linklocal"
	"github.com/jinglekit/jinglekit/transports/ibb"
	"github.com/jinglekit/jinglekit/transports/socks5"
)

// Multicast DNS is tested in network namespaces this test makes: the
// host's loopback has no MULTICAST flag, and mDNS must never go out on the
// machine's real interfaces. The test binary re-executes itself inside a
// namespace (ip netns exec) to run a helper test selected by helperEnv.

var nsSeq atomic.Int32

// netns creates a network namespace with loopback up and multicast on, and
// deletes it when the test ends. It skips the test where namespaces
// cannot be made (not root, no ip(8), no permission).
func netns(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root; mDNS tests skipped")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("ip(8) not found; mDNS tests skipped")
	}
	removeStaleNamespaces(t)
	name := fmt.Sprintf("%s%d-%d", nsPrefix, os.Getpid(), nsSeq.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("cannot create a network namespace (%v: %s); mDNS tests skipped", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("deleting namespace %s: %v: %s", name, err, out)
		}
	})
	inNS(t, name, "ip", "link", "set", "lo", "up")
	inNS(t, name, "ip", "link", "set", "lo", "multicast", "on")
	return name
}

// inNS runs a command in a namespace and fails the test if it fails.
func inNS(t *testing.T, ns string, args ...string) {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// nsPrefix starts the names of the namespaces of these tests, followed by
// the PID of the test binary that made them.
const nsPrefix = "jk-ll-"

// removeStaleNamespaces deletes the namespaces of test binaries that died
// without deleting theirs (killed by -timeout or SIGKILL).
func removeStaleNamespaces(t *testing.T) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		rest, ok := strings.CutPrefix(name, nsPrefix)
		if !ok {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			continue // its test binary is still running
		}
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Logf("deleting stale namespace %s: %v: %s", name, err, out)
		} else {
			t.Logf("deleted namespace %s of a test binary that died without deleting it", name)
		}
	}
}

// helperCmd is the test binary running one helper test inside ns. It dies
// with this test binary (ip netns exec execs it in place).
func helperCmd(ctx context.Context, ns, helper string, env ...string) *exec.Cmd {
	args := []string{"netns", "exec", ns, os.Args[0], "-test.run=^TestHelper$", "-test.v", "-test.count=1"}
	cmd := testproc.CommandContext(ctx, "ip", args...)
	cmd.Env = append(append(os.Environ(), helperEnv+"="+helper), env...)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// runHelper runs a helper to completion and returns its output; it fails
// the test if the helper fails.
func runHelper(t *testing.T, ctx context.Context, ns, helper string, env ...string) string {
	t.Helper()
	out, err := testproc.CombinedOutput(helperCmd(ctx, ns, helper, env...))
	if err != nil || !bytes.Contains(out, []byte("--- PASS: TestHelper")) {
		t.Fatalf("helper %s in %s: %v\n%s", helper, ns, err, out)
	}
	return string(out)
}

// TestMDNSLoopback: two nodes in one namespace discover each other over
// multicast DNS on its loopback, check each other's streams against their
// advertisements, transfer a file, see a presence change and a goodbye;
// advertisements with a bad TXT record are listed without it.
func TestMDNSLoopback(t *testing.T) {
	ns := netns(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	runHelper(t, ctx, ns, "mdns-pair")
}

// TestMDNSVeth: discovery across a real (virtual) link between two
// namespaces, then a file over SOCKS5 (direct candidate on the link) with
// IBB as fallback. The receiver is strict: the sender's stream must come
// from its advertised address.
func TestMDNSVeth(t *testing.T) {
	ns1, ns2 := netns(t), netns(t)
	id := nsSeq.Add(1)
	va, vb := fmt.Sprintf("jkva%d", id), fmt.Sprintf("jkvb%d", id)
	if out, err := exec.Command("ip", "link", "add", va, "netns", ns1, "type", "veth", "peer", "name", vb, "netns", ns2).CombinedOutput(); err != nil {
		t.Skipf("cannot create a veth pair (%v: %s); skipped", err, bytes.TrimSpace(out))
	}
	// Deleting the namespaces deletes the pair.
	// 198.18.0.0/15 is the benchmarking range (RFC 2544): test hosts of our
	// own, inside namespaces of our own.
	inNS(t, ns1, "ip", "addr", "add", "198.18.174.1/24", "dev", va)
	inNS(t, ns2, "ip", "addr", "add", "198.18.174.2/24", "dev", vb)
	inNS(t, ns1, "ip", "link", "set", va, "up")
	inNS(t, ns2, "ip", "link", "set", vb, "up")

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var recvOut bytes.Buffer
	recv := helperCmd(ctx, ns1, "veth-recv", "LL_IFACE="+va)
	recv.Stdout, recv.Stderr = &recvOut, &recvOut
	proc, err := testproc.Start(recv)
	if err != nil {
		t.Fatal(err)
	}
	sendOut := runHelper(t, ctx, ns2, "veth-send", "LL_IFACE="+vb)
	if err := proc.Wait(); err != nil || !strings.Contains(recvOut.String(), "--- PASS: TestHelper") {
		t.Fatalf("receiver: %v\n%s\nsender:\n%s", err, recvOut.String(), sendOut)
	}
	sent, got := field(sendOut, "SENT"), field(recvOut.String(), "RECEIVED")
	if sent == "" || sent != got {
		t.Fatalf("sent %q, received %q\nsender:\n%s\nreceiver:\n%s", sent, got, sendOut, recvOut.String())
	}
	if tr := field(sendOut, "TRANSPORT"); tr != socks5.NS {
		t.Errorf("transport %q, want %s (direct candidate over the link)", tr, socks5.NS)
	}
}

// field returns the value after "KEY " on a line of out.
func field(out, key string) string {
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), key+" "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// TestHelper runs inside a namespace (see helperCmd); it is skipped in a
// normal run.
func TestHelper(t *testing.T) {
	switch h := os.Getenv(helperEnv); h {
	case "":
		t.Skip("helper of the netns tests")
	case "mdns-pair":
		helperMDNSPair(t)
	case "veth-recv":
		helperVethRecv(t)
	case "veth-send":
		helperVethSend(t)
	default:
		t.Fatalf("unknown helper %q", h)
	}
}

// watcher keeps every Browse event, so that tests can wait for events in
// any order.
type watcher struct {
	ch   <-chan linklocal.PeerEvent
	seen []linklocal.PeerEvent
}

// waitPeer waits for an event about name satisfying ok (one seen earlier
// counts, once).
func (w *watcher) waitPeer(t *testing.T, name string, ok func(linklocal.PeerEvent) bool) linklocal.PeerEvent {
	t.Helper()
	for i, ev := range w.seen {
		if ev.Peer.Name.String() == name && ok(ev) {
			w.seen = append(w.seen[:i:i], w.seen[i+1:]...)
			return ev
		}
	}
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev, open := <-w.ch:
			if !open {
				t.Fatalf("browse channel closed while waiting for %s", name)
			}
			if ev.Peer.Name.String() == name && ok(ev) {
				return ev
			}
			w.seen = append(w.seen, ev)
		case <-timeout:
			t.Fatalf("no matching event for %s; events: %+v", name, w.seen)
		}
	}
}

func anyEvent(linklocal.PeerEvent) bool { return true }

func helperMDNSPair(t *testing.T) {
	x := jingletest.NewExchange()
	dir := t.TempDir()
	done := make(chan filetransfer.Result, 1)
	a := newParty(t, partyOpts{name: "alice@pronto", x: x, ftDir: t.TempDir(), mdns: []string{"lo"}})
	ctx := tctx(t)
	events := &watcher{ch: a.node.Browse(ctx)}
	b := newParty(t, partyOpts{name: "bob@forza", x: x, ftDir: dir, mdns: []string{"lo"}, onDone: func(r filetransfer.Result) { done <- r }})

	// Hostile advertisements, made with pion directly: a TXT record of
	// another version and one too large. They are listed, without TXT.
	advertise(t, "mallory@evil", []mdns.TXTEntry{mdns.NewTXTString("txtvers", "9"), mdns.NewTXTString("nick", "Mallory")})
	var big []mdns.TXTEntry
	for i := 0; i < 25; i++ {
		big = append(big, mdns.NewTXTString(fmt.Sprintf("k%02d", i), strings.Repeat("v", 200)))
	}
	advertise(t, "huge@evil", big)

	ev := events.waitPeer(t, "bob@forza", anyEvent)
	p := ev.Peer
	if p.Source != linklocal.Browsed {
		t.Fatalf("bob as browsed: %+v", p)
	}
	if p.TXT.Nick != "nick of bob@forza" || p.TXT.Ver != b.caps.Ver() || p.TXT.Hash != "sha-1" || p.Addr.String() != "127.0.0.1" || p.Host != "forza.local." {
		t.Fatalf("bob as browsed: %+v", p)
	}
	if p.Port != tcpPort(t, b.node.Addr().String()) || p.TXT.PortP2PJ != p.Port {
		t.Fatalf("bob's port %d (port.p2pj %d), listening on %s", p.Port, p.TXT.PortP2PJ, b.node.Addr())
	}
	for _, bad := range []struct {
		name string
		err  error
	}{{"mallory@evil", linklocal.ErrTXTVersion}, {"huge@evil", linklocal.ErrTXTTooLarge}} {
		ev := events.waitPeer(t, bad.name, func(ev linklocal.PeerEvent) bool { return ev.Peer.TXTErr != nil })
		if !errors.Is(ev.Peer.TXTErr, bad.err) || ev.Peer.TXT.Nick != "" {
			t.Fatalf("%s: TXTErr %v, TXT %+v; want %v", bad.name, ev.Peer.TXTErr, ev.Peer.TXT, bad.err)
		}
	}
	// Resolve finds bob too.
	if r, err := a.node.Resolve(ctx, "bob@forza"); err != nil || r.Port != p.Port {
		t.Fatalf("resolve: %+v, %v", r, err)
	}
	// Disco and a file over IBB; bob checks alice's stream against her
	// advertisement (strict: AcceptUnadvertised is off).
	info, err := a.node.Disco(ctx, b.jid())
	if err != nil || !info.HasFeature(filetransfer.NS) {
		t.Fatalf("disco: %+v, %v", info, err)
	}
	data := make([]byte, 64<<10)
	_, _ = rand.Read(data)
	snd := filetransfer.Sender{Transports: []string{ibb.NSTransport}}
	if res, err := snd.Send(ctx, a.m, b.jid(), filetransfer.BytesSource("m.bin", data)); err != nil || !res[0].Verified {
		t.Fatalf("send: %+v, %v", res, err)
	}
	if r := <-done; r.Err != nil || !r.Verified {
		t.Fatalf("bob's result %+v", r)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "m.bin")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("received %d bytes, %v", len(got), err)
	}
	// Presence change: the TXT record is announced again.
	if err := b.node.SetPresence(linklocal.StatusAway, "gone fishing"); err != nil {
		t.Fatal(err)
	}
	events.waitPeer(t, "bob@forza", func(ev linklocal.PeerEvent) bool {
		return ev.Peer.TXT.Show() == linklocal.StatusAway && ev.Peer.TXT.Msg == "gone fishing"
	})
	// Goodbye: bob closes, alice removes him.
	if err := b.node.Close(); err != nil {
		t.Fatal(err)
	}
	events.waitPeer(t, "bob@forza", func(ev linklocal.PeerEvent) bool { return ev.Type == linklocal.PeerRemoved })
	t.Log("mDNS on loopback: discovery, TXT, hostile records, transfer, presence, goodbye OK")
}

func tcpPort(t *testing.T, hostport string) int {
	var port int
	if i := strings.LastIndex(hostport, ":"); i >= 0 {
		_, _ = fmt.Sscan(hostport[i+1:], &port)
	}
	return port
}

// advertise registers a _presence._tcp instance with pion alone, the way a
// hostile or broken peer could.
func advertise(t *testing.T, instance string, txt []mdns.TXTEntry) *mdns.Conn {
	t.Helper()
	lc := listenReuse()
	pc, err := lc.ListenPacket(context.Background(), "udp4", "224.0.0.251:5353")
	if err != nil {
		t.Fatal(err)
	}
	lo, err := netInterface("lo")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := mdns.NewServer(ipv4.NewPacketConn(pc), nil,
		mdns.WithInterfaces(*lo), mdns.WithIncludeLoopback(true), mdns.WithLocalNames("evil.local"),
		mdns.WithService(mdns.ServiceInstance{Instance: instance, Service: linklocal.ServiceType, Domain: "local", Host: "evil.local.", Port: 5298, Text: txt}),
		mdns.WithLoggerFactory(nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func helperVethRecv(t *testing.T) {
	dir := t.TempDir()
	done := make(chan filetransfer.Result, 1)
	b := newParty(t, partyOpts{name: "bob@forza", ftDir: dir, mdns: []string{os.Getenv("LL_IFACE")}, s5: true, onDone: func(r filetransfer.Result) { done <- r }})
	_ = b
	select {
	case r := <-done:
		if r.Err != nil || !r.Verified {
			t.Fatalf("result %+v", r)
		}
		data, err := os.ReadFile(r.Path)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		fmt.Printf("RECEIVED %s\n", hex.EncodeToString(sum[:]))
		fmt.Printf("FROM %s\n", r.Peer)
	case <-time.After(60 * time.Second):
		t.Fatal("no file received")
	}
}

func helperVethSend(t *testing.T) {
	a := newParty(t, partyOpts{name: "alice@pronto", ftDir: t.TempDir(), mdns: []string{os.Getenv("LL_IFACE")}, s5: true})
	ctx := tctx(t)
	p, err := a.node.Resolve(ctx, "bob@forza")
	if err != nil {
		t.Fatal(err)
	}
	if p.Addr.String() != "198.18.174.1" {
		t.Fatalf("bob resolved at %s", p.Addr)
	}
	data := make([]byte, 2<<20)
	_, _ = rand.Read(data)
	sum := sha256.Sum256(data)
	snd := filetransfer.Sender{Transports: []string{socks5.NS, ibb.NSTransport}}
	res, err := snd.Send(ctx, a.m, p.Name, filetransfer.BytesSource("veth.bin", data))
	if err != nil || len(res) != 1 || !res[0].Verified {
		t.Fatalf("send: %+v, %v", res, err)
	}
	fmt.Printf("SENT %s\n", hex.EncodeToString(sum[:]))
	fmt.Printf("TRANSPORT %s\n", res[0].Transport)
}
