package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jinglekit/jinglekit/cmd/jinglectl/internal/agent"
)

// metricsAddr finds the metrics address in an agent's JSON log.
func metricsAddr(t *testing.T, bg *background) string {
	t.Helper()
	var addr string
	waitFor(t, 10*time.Second, "metrics address in the log", func() bool {
		sc := bufio.NewScanner(strings.NewReader(bg.stderr.String()))
		for sc.Scan() {
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == "jinglectl agent: metrics" {
				addr, _ = rec["address"].(string)
				return true
			}
		}
		return false
	})
	return addr
}

// TestAgentControl exercises the agent's control commands, disco, the
// proxy-only transport and the metrics endpoint.
func TestAgentControl(t *testing.T) {
	srv := prosody.Get(t)
	c := newCLI(t, srv)
	alice, bob, eve := newAccount(t, srv, "alice"), newAccount(t, srv, "bob"), newAccount(t, srv, "eve")
	subscribe(t, srv, alice, bob)
	as := writeAgentConfig(t, srv, alice, false, "limit_rate = \"256K\"")
	bs := writeAgentConfig(t, srv, bob, true, "")
	// Metrics on an ephemeral port.
	f, err := os.OpenFile(as.config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, "metrics = \"127.0.0.1:0\"")
	f.Close()
	aliceAgent := c.startAgent(t, as)
	c.startAgent(t, bs)
	waitBothUp(t, c, as, bs)
	src := t.TempDir()

	t.Run("disco", func(t *testing.T) {
		r := c.run(30*time.Second, alice, append([]string{"disco"}, append(c.accountArgs(alice, ""), bob.jid)...)...)
		if r.code != 0 {
			t.Fatalf("disco: %s", r)
		}
		for _, want := range []string{bob.jid + "/agent", "client/bot (jinglectl)", "jingle:         yes", "file-transfer:5", "s5b, ibb", "sha-256", "send files:     yes, over s5b then ice then ibb"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("disco output lacks %q:\n%s", want, r.stdout)
			}
		}
	})

	t.Run("cancel", func(t *testing.T) {
		big := randomFile(t, src, "slow.bin", 4<<20)
		r := c.run(15*time.Second, account{}, "send", "--agent="+as.socket, "--detach", bob.jid, big)
		if r.code != 0 {
			t.Fatalf("send --detach: %s", r)
		}
		id := strings.TrimSpace(r.stdout)
		waitFor(t, 30*time.Second, "slow.bin started", func() bool { return partFiles(bs.dir)["slow.bin.part"] > 0 })
		r = c.run(15*time.Second, account{}, "status", "--socket", as.socket)
		if r.code != 0 || !regexp.MustCompile(id+`\s+send\s+`+regexp.QuoteMeta(bob.jid)+`\s+slow.bin\s+active`).MatchString(r.stdout) {
			t.Errorf("status while sending:\n%s", r)
		}
		if !strings.Contains(r.stdout, "through "+srv.C2SAddr) {
			t.Errorf("status does not say which server the agent is on (%s):\n%s", srv.C2SAddr, r)
		}
		r = c.run(15*time.Second, account{}, "cancel", "--socket", as.socket, id)
		if r.code != 0 || strings.TrimSpace(r.stdout) != "cancelled "+id {
			t.Fatalf("cancel: %s", r)
		}
		waitFor(t, 15*time.Second, "cancelled state", func() bool {
			st, _ := c.agentStatus(as)
			for _, tr := range st.Transfers {
				if tr.ID == id {
					return tr.State == agent.StateCanceled && tr.Outcome == agent.OutcomeCanceled
				}
			}
			return false
		})
		if _, err := os.Stat(filepath.Join(bs.dir, "slow.bin")); err == nil {
			t.Errorf("a cancelled file has its final name")
		}
		r = c.run(15*time.Second, account{}, "cancel", "--socket", as.socket, id, "s999")
		if r.code != exitFailure || !strings.Contains(r.stderr, "already canceled") || !strings.Contains(r.stderr, `no transfer "s999"`) {
			t.Errorf("cancel of finished and unknown ids: %s", r)
		}
	})

	t.Run("send --agent --json", func(t *testing.T) {
		f1 := randomFile(t, src, "x.bin", 10<<10)
		f2 := randomFile(t, src, "y.bin", 20<<10)
		r := c.run(60*time.Second, account{}, "send", "--agent="+as.socket, "--json", bob.jid, f1, f2)
		if r.code != 0 {
			t.Fatalf("send --agent: %s", r)
		}
		evs := parseEvents(t, r.stdout)
		firsts := map[string]string{}
		done := 0
		for _, e := range evs {
			if _, ok := firsts[e.ID]; !ok {
				firsts[e.ID] = e.Event
			}
			if e.Event == agent.EventDone {
				done++
			}
		}
		if done != 2 || len(firsts) != 2 {
			t.Errorf("%d done events for %d ids:\n%s", done, len(firsts), r.stdout)
		}
		for id, ev := range firsts {
			if ev != agent.EventQueued {
				t.Errorf("first event of %s is %q, want queued", id, ev)
			}
		}
		sameContent(t, f1, filepath.Join(bs.dir, "x.bin"))
		sameContent(t, f2, filepath.Join(bs.dir, "y.bin"))
	})

	t.Run("proxy only", func(t *testing.T) {
		// Neither direct candidates of ours nor bob's: only Prosody's
		// proxy65, named with --proxy, can carry the data.
		f := randomFile(t, src, "via-proxy.bin", 100<<10)
		r := c.run(60*time.Second, alice, append([]string{"send"}, append(c.accountArgs(alice, ""), "--no-direct", "--proxy", srv.ProxyJID, "--allow-loopback", "--transport", "s5b", "--json", bob.jid, f)...)...)
		if r.code != 0 {
			t.Fatalf("send --no-direct: %s", r)
		}
		if !strings.Contains(r.stdout, `"event":"transport"`) || !strings.Contains(r.stdout, `"transport":"s5b"`) {
			t.Errorf("no s5b transport event:\n%s", r.stdout)
		}
		sameContent(t, f, filepath.Join(bs.dir, "via-proxy.bin"))
	})

	t.Run("stranger declined", func(t *testing.T) {
		// eve is not on bob's roster: the agent's default policy declines.
		f := randomFile(t, src, "spam.bin", 1000)
		r := c.run(60*time.Second, eve, append([]string{"send"}, append(c.accountArgs(eve, ""), "--allow-loopback", bob.jid+"/agent", f)...)...)
		if r.code != exitDeclined {
			t.Fatalf("exit %d, want %d: %s", r.code, exitDeclined, r)
		}
		if _, err := os.Stat(filepath.Join(bs.dir, "spam.bin")); err == nil {
			t.Errorf("a declined file was stored")
		}
	})

	t.Run("metrics", func(t *testing.T) {
		addr := metricsAddr(t, aliceAgent)
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
			t.Errorf("Content-Type %q", ct)
		}
		m := parseMetrics(t, string(body))
		checks := map[string]func(float64) bool{
			`jinglectl_transfers_total{direction="send",outcome="ok",transport="s5b"}`:       func(v float64) bool { return v >= 2 },
			`jinglectl_transfers_total{direction="send",outcome="canceled",transport="s5b"}`: func(v float64) bool { return v == 1 },
			`jinglectl_bytes_total{direction="send"}`:                                        func(v float64) bool { return v >= 30<<10 },
			`jinglectl_connected`:        func(v float64) bool { return v == 1 },
			`jinglectl_active_sessions`:  func(v float64) bool { return v == 0 },
			`jinglectl_queued_transfers`: func(v float64) bool { return v == 0 },
			`jinglectl_reconnects_total`: func(v float64) bool { return v == 0 },
		}
		for k, ok := range checks {
			v, found := m[k]
			if !found || !ok(v) {
				t.Errorf("%s = %v (found %v)\n%s", k, v, found, body)
			}
		}
	})
}

// parseMetrics reads the text exposition format strictly: every sample
// line is NAME{LABELS} VALUE after its # TYPE line (a summary's and a
// histogram's samples with their suffixes).
func parseMetrics(t *testing.T, body string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	typed := map[string]bool{}
	sample := regexp.MustCompile(`^([a-z_]+)(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? (\S+)$`)
	for _, l := range strings.Split(strings.TrimSpace(body), "\n") {
		if strings.HasPrefix(l, "# TYPE ") {
			f := strings.Fields(l)
			typed[f[2]] = true
			// A summary's or histogram's samples carry suffixes.
			switch f[3] {
			case "summary":
				typed[f[2]+"_sum"], typed[f[2]+"_count"] = true, true
			case "histogram":
				typed[f[2]+"_sum"], typed[f[2]+"_count"], typed[f[2]+"_bucket"] = true, true, true
			}
			continue
		}
		if strings.HasPrefix(l, "# HELP ") {
			continue
		}
		m := sample.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("malformed metrics line %q", l)
		}
		if !typed[m[1]] {
			t.Errorf("sample %q before its # TYPE", l)
		}
		v, err := strconv.ParseFloat(m[4], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", l, err)
		}
		out[m[1]+m[2]] = v
	}
	return out
}
