//go:build linux

package testproc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperEnv makes the test binary act as a helper process (see TestMain).
const helperEnv = "TESTPROC_TEST_HELPER"

// TestMain runs the helper modes of the tests that kill a test binary:
// the helper starts processes, prints their PIDs and waits to be killed.
func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "pdeathsig":
		p, err := Start(exec.Command("sleep", "300"))
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("pid", p.Pid())
	case "guard":
		g, err := NewGroup("testproc-test-guard", GroupOptions{Guard: true})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		// A daemon that leaves the process group, as libervia-up starts them.
		out, err := CombinedOutput(g.Command("sh", "-c", "setsid sleep 300 >/dev/null 2>&1 </dev/null & echo $!"))
		if err != nil {
			fmt.Println("error", err, string(out))
			os.Exit(1)
		}
		fmt.Println("pid", strings.TrimSpace(string(out)))
	}
	select {} // until killed
}

// gone reports whether pid has exited (a zombie counts as exited).
func gone(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(data), ')')
	return i >= 0 && strings.HasPrefix(string(data[i+1:]), " Z")
}

func waitExit(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !gone(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("process %d (%s) still alive", pid, cmdline(pid))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runHelper starts the test binary in a helper mode, returns the PID it
// reports, then SIGKILLs the helper.
func runHelper(t *testing.T, mode string) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	f := strings.Fields(line)
	if err != nil || len(f) != 2 || f[0] != "pid" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("helper said %q (%v)", line, err)
	}
	pid, err := strconv.Atoi(f[1])
	if err != nil {
		t.Fatal(err)
	}
	if gone(pid) {
		t.Fatalf("helper's child %d not running", pid)
	}
	_ = cmd.Process.Kill() // SIGKILL: no cleanup code of the helper runs
	_ = cmd.Wait()
	return pid
}

func TestPdeathsigKillsChildOfKilledBinary(t *testing.T) {
	waitExit(t, runHelper(t, "pdeathsig"))
}

func TestGuardKillsDaemonOfKilledBinary(t *testing.T) {
	waitExit(t, runHelper(t, "guard"))
	// The guard removes the dead group's record after killing.
	deadline := time.Now().Add(5 * time.Second)
	for {
		entries, _ := os.ReadDir(DirFor("testproc-test-guard"))
		if len(entries) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("record left behind: %s", entries[0].Name())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startReporting starts cmd, whose first line of output is a PID.
func startReporting(t *testing.T, cmd *exec.Cmd) (*Process, int) {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p, err := Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		_, _ = p.Stop(0)
		t.Fatalf("child pid %q: %v", line, err)
	}
	return p, pid
}

func TestProcessStopKillsGroup(t *testing.T) {
	// The shell and its background child ignore SIGTERM.
	p, child := startReporting(t, Command("sh", "-c", `trap "" TERM; sleep 300 & echo $!; wait`))
	killed, err := p.Stop(300 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if !killed {
		t.Errorf("Stop did not need SIGKILL for a shell that ignores SIGTERM")
	}
	waitExit(t, child)

	p, child = startReporting(t, Command("sh", "-c", `sleep 300 & echo $!; wait`))
	if killed, err := p.Stop(5 * time.Second); killed || err != nil {
		t.Errorf("Stop of a shell that obeys SIGTERM: killed %v, %v", killed, err)
	}
	waitExit(t, child)
}

func TestCommandContextKillsGroup(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p, child := startReporting(t, CommandContext(ctx, "sh", "-c", `sleep 300 & echo $!; wait`))
	cancel()
	if err := p.Wait(); err == nil {
		t.Errorf("Wait after cancel = nil")
	}
	waitExit(t, child)
}

func TestGroupCloseStopsDaemons(t *testing.T) {
	g, err := NewGroup("testproc-test", GroupOptions{Grace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	out, err := CombinedOutput(g.Command("sh", "-c", "setsid sleep 300 >/dev/null 2>&1 </dev/null & echo $!"))
	if err != nil {
		t.Fatal(err, string(out))
	}
	daemon, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	// An untagged process started outside, adopted by PID.
	other := exec.Command("sleep", "300")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer other.Process.Kill()
	if err := g.Adopt(other.Process.Pid); err != nil {
		t.Fatal(err)
	}
	members, err := g.Members()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(members)
	want := []int{daemon, other.Process.Pid}
	slices.Sort(want)
	if !slices.Equal(members, want) {
		t.Fatalf("Members = %v, want %v", members, want)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	_ = other.Wait()
	waitExit(t, daemon)
	if _, err := os.Stat(g.path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("record still there after Close: %v", err)
	}
	if err := g.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestCleanStale kills what provably belongs to a dead group, and only that.
func TestCleanStale(t *testing.T) {
	const name = "testproc-test-stale"
	if _, err := CleanStale(name); err != nil {
		t.Fatal(err)
	}
	// A dead owner: a process that has exited.
	exited := exec.Command("true")
	if err := exited.Run(); err != nil {
		t.Fatal(err)
	}
	dead := procID{Pid: exited.Process.Pid, Start: 1}
	startSleep := func(env ...string) *Process {
		t.Helper()
		cmd := exec.Command("sleep", "300")
		cmd.Env = append(os.Environ(), env...)
		p, err := Start(cmd)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = p.Stop(0) })
		return p
	}
	tagged := startSleep(tagPrefix + "stale_1=1")
	untagged := startSleep()
	adopted := startSleep()
	wrongStart := startSleep()
	liveTagged := startSleep(tagPrefix + "live_1=1")
	st := func(p *Process) uint64 {
		s, err := procStartTime(p.Pid())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	me, _ := procStartTime(os.Getpid())
	dir := DirFor(name)
	recs := map[string]record{
		"stale_1.json": {Token: "stale_1", Owner: dead, Adopted: []procID{
			{Pid: adopted.Pid(), Start: st(adopted)},
			{Pid: wrongStart.Pid(), Start: st(wrongStart) + 1},
		}},
		"live_1.json": {Token: "live_1", Owner: procID{Pid: os.Getpid(), Start: me}},
	}
	for file, rec := range recs {
		if err := writeRecord(filepath.Join(dir, file), rec); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = os.Remove(filepath.Join(dir, "live_1.json")) })

	killed, err := CleanStale(name)
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, k := range killed {
		got = append(got, k.Pid)
		if !strings.Contains(k.Cmdline, "sleep") {
			t.Errorf("leftover %d cmdline %q", k.Pid, k.Cmdline)
		}
	}
	slices.Sort(got)
	want := []int{tagged.Pid(), adopted.Pid()}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("killed %v, want %v", got, want)
	}
	for _, p := range []*Process{tagged, adopted} {
		select {
		case <-p.Done():
		case <-time.After(5 * time.Second):
			t.Errorf("%d not killed", p.Pid())
		}
	}
	for _, p := range []*Process{untagged, wrongStart, liveTagged} {
		if exited, err := p.Exited(); exited {
			t.Errorf("%d killed although not provably a leftover: %v", p.Pid(), err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "stale_1.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale record not removed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "live_1.json")); err != nil {
		t.Errorf("record of a live owner removed: %v", err)
	}
}

func TestNewGroupReportsLeftovers(t *testing.T) {
	const name = "testproc-test-leftover"
	if _, err := CleanStale(name); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sleep", "300")
	cmd.Env = append(os.Environ(), tagPrefix+"old_2=1")
	p, err := Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = p.Stop(0) })
	if err := writeRecord(filepath.Join(DirFor(name), "old_2.json"),
		record{Token: "old_2", Owner: procID{Pid: 1, Start: 1}}); err != nil {
		t.Fatal(err)
	}
	g, err := NewGroup(name, GroupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if l := g.Leftovers(); len(l) != 1 || l[0].Pid != p.Pid() {
		t.Errorf("Leftovers = %+v, want pid %d", l, p.Pid())
	}
	<-p.Done()
}

func TestCheckName(t *testing.T) {
	for _, bad := range []string{"", "A", "a/b", "a_b", ".."} {
		if _, err := NewGroup(bad, GroupOptions{}); err == nil {
			t.Errorf("NewGroup(%q) accepted", bad)
		}
	}
}
