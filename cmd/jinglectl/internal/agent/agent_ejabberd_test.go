package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jinglekit/jinglekit/internal/ejabberdtest"
	"github.com/jinglekit/jinglekit/internal/testserver"
)

// TestAgentFailover is the failover acceptance test on a two-node ejabberd
// cluster: alice's agent knows both nodes (node 2 first) and sends a file
// over IBB to bob's agent on node 1; node 2 stops in the middle of the
// transfer; alice's agent logs in again through node 1, its retry resumes
// the file by range from bob's .part, and the file arrives verified. status
// and the metrics name the node the agent is on, before and after.
func TestAgentFailover(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := ejabberdtest.StartCluster(ctx, ejabberdtest.Options{})
	if err != nil {
		testserver.React(t, err, ejabberdtest.ErrNotInstalled, ejabberdtest.EnvRequire) // skips, or fails
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
	})
	n1, n2 := c.Nodes[0], c.Nodes[1]
	acfg, bcfg, _ := agentPair(t, c, Config{CAFile: n1.CAFile, AllowLoopback: true, Transport: TransportIBB,
		ReconnectMin: 200 * time.Millisecond, ReconnectMax: time.Second, MaxAttempts: 50})
	acfg.LimitRate = 512 << 10
	acfg.Servers = []string{n2.C2SAddr, n1.C2SAddr}
	bcfg.Servers = []string{n1.C2SAddr}
	bj, in := mustJID(t, bcfg.JID).Bare().String(), bcfg.Dir
	alice := startTestAgent(t, acfg)
	startTestAgent(t, bcfg)
	if st := alice.a.status(); st.Server != n2.C2SAddr {
		t.Fatalf("alice logged in through %q, want node 2 (%s), the first of her list", st.Server, n2.C2SAddr)
	}
	checkServerMetric(t, alice.a, n2.C2SAddr)
	if err := c.WaitAvailable(ctx, bj+"/agent"); err != nil {
		t.Fatal(err)
	}

	const size = 4 << 20
	data := make([]byte, size)
	rand.Read(data)
	file := filepath.Join(t.TempDir(), "big.bin")
	os.WriteFile(file, data, 0o600)
	ctl, err := DialControl(ctx, acfg.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	// Resume by range is for plaintext transfers: both agents publish
	// OMEMO devices on ejabberd's PEP, and an encrypted transfer is never
	// resumed (its .part was not authenticated), so this one asks for none.
	if err := ctl.Send(Request{Op: OpSend, Peer: bj, Files: []string{file}, Encrypt: EncryptNever, Wait: true}); err != nil {
		t.Fatal(err)
	}
	if r, err := ctl.Next(); err != nil || len(r.IDs) != 1 {
		t.Fatalf("queued: %+v, %v", r, err)
	}
	stopped := make(chan error, 1)
	var done *Event
	retries := 0
	for done == nil {
		r, err := ctl.Next()
		if err != nil {
			t.Fatalf("waiting for the file: %v", err)
		}
		e := r.Event
		switch e.Event {
		case EventProgress:
			if e.Bytes > 1<<20 && retries == 0 && len(stopped) == 0 && n2.Running() {
				go func() { stopped <- n2.StopNode() }()
			}
		case EventRetry:
			retries++
		case EventDone:
			done = &e
		case EventError:
			t.Fatalf("error: %+v", e)
		}
	}
	if err := <-stopped; err != nil {
		t.Fatalf("stopping node 2: %v", err)
	}
	if retries == 0 || done.Offset == 0 || done.Offset >= size {
		t.Errorf("%d retries, done at offset %d: want a retry that resumed the .part by range", retries, done.Offset)
	}
	got, err := os.ReadFile(filepath.Join(in, "big.bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("received file: %v (%d bytes, want %d identical)", err, len(got), size)
	}
	st := alice.a.status()
	if !st.Connected || st.Server != n1.C2SAddr || st.Reconnects < 1 {
		t.Errorf("alice after the failover: connected=%v server=%q reconnects=%d; want node 1 (%s)", st.Connected, st.Server, st.Reconnects, n1.C2SAddr)
	}
	checkServerMetric(t, alice.a, n1.C2SAddr)
}

// checkServerMetric checks that /metrics names server as the agent's.
func checkServerMetric(t *testing.T, a *Agent, server string) {
	t.Helper()
	var b strings.Builder
	if err := a.met.write(&b, a.gauges()); err != nil {
		t.Fatal(err)
	}
	if want := `jinglectl_server_info{server="` + server + `"} 1`; !strings.Contains(b.String(), want) {
		t.Errorf("metrics lack %s:\n%s", want, b.String())
	}
}
