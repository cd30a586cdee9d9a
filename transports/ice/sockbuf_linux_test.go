//go:build linux

package ice

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/pion/transport/v2/stdnet"
)

// sysctlInt reads an integer from /proc/sys.
func sysctlInt(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

// rawUDP returns the socket under a conn returned by bufferedNet.
func rawUDP(t *testing.T, c any) *net.UDPConn {
	t.Helper()
	if bc, ok := c.(*batchConn); ok {
		c = bc.UDPConn
	}
	uc, ok := c.(*net.UDPConn)
	if !ok {
		t.Fatalf("conn is a %T, not a UDP socket", c)
	}
	return uc
}

// TestBufferedNetSocketBuffers checks that the UDP sockets pion opens
// through bufferedNet get Config.SocketBuffer, as read back with
// getsockopt: the kernel reports twice the size set, and caps the size at
// net.core.rmem_max/wmem_max.
func TestBufferedNetSocketBuffers(t *testing.T) {
	sn, err := stdnet.NewNet()
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{SocketBuffer: 1 << 20}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	n := &bufferedNet{Net: sn, size: cfg.socketBuffer(), log: log}
	wantRcv := 2 * min(n.size, sysctlInt(t, "/proc/sys/net/core/rmem_max"))
	wantSnd := 2 * min(n.size, sysctlInt(t, "/proc/sys/net/core/wmem_max"))

	uc, err := n.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	pc, err := n.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for name, c := range map[string]any{"ListenUDP": uc, "ListenPacket": pc} {
		rcv, snd, err := socketBuffers(syscall.Conn(rawUDP(t, c)))
		if err != nil {
			t.Fatalf("%s: getsockopt: %v", name, err)
		}
		if rcv < wantRcv || snd < wantSnd {
			t.Errorf("%s: SO_RCVBUF %d, SO_SNDBUF %d; want at least %d, %d (asked %d)",
				name, rcv, snd, wantRcv, wantSnd, n.size)
		}
		// The effective sizes are logged, since the kernel caps them silently.
		if want := fmt.Sprintf("so_rcvbuf=%d so_sndbuf=%d", rcv, snd); !strings.Contains(logs.String(), want) {
			t.Errorf("%s: no debug log with %q in:\n%s", name, want, logs.String())
		}
	}

	// A negative SocketBuffer keeps the system default: nothing is set.
	if got := (&Config{SocketBuffer: -1}).socketBuffer(); got != 0 {
		t.Errorf("SocketBuffer -1: socketBuffer() = %d, want 0", got)
	}
}
