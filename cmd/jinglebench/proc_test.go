package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

const statusSample = `Name:	bench
Umask:	0022
State:	S (sleeping)
VmPeak:	 1300000 kB
VmSize:	 1250000 kB
VmHWM:	   52340 kB
VmRSS:	   18020 kB
RssAnon:	   10000 kB
Threads:	9
`

func TestParseStatus(t *testing.T) {
	m, err := parseStatus(strings.NewReader(statusSample))
	if err != nil {
		t.Fatal(err)
	}
	if m.HWM != 52340<<10 || m.RSS != 18020<<10 {
		t.Errorf("got %+v, want HWM %d RSS %d", m, 52340<<10, 18020<<10)
	}
}

func TestParseStatusHostile(t *testing.T) {
	for name, in := range map[string]string{
		"empty":      "",
		"no HWM":     "VmRSS:\t 10 kB\n",
		"no RSS":     "VmHWM:\t 10 kB\n",
		"bad unit":   "VmHWM:\t 10 MB\nVmRSS:\t 1 kB\n",
		"bad number": "VmHWM:\t ten kB\nVmRSS:\t 1 kB\n",
		"negative":   "VmHWM:\t -10 kB\nVmRSS:\t 1 kB\n",
		"no value":   "VmHWM:\nVmRSS:\t 1 kB\n",
	} {
		if m, err := parseStatus(strings.NewReader(in)); err == nil {
			t.Errorf("%s: parsed %+v, want an error", name, m)
		}
	}
}

// TestSelfMemory reads this process's status and checks that the peak
// follows an allocation and that ResetPeak brings it back down.
func TestSelfMemory(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc")
	}
	m0, err := SelfMemory()
	if err != nil {
		t.Fatal(err)
	}
	if m0.RSS <= 0 || m0.HWM < m0.RSS {
		t.Fatalf("implausible %+v", m0)
	}
	const big = 64 << 20
	b := make([]byte, big)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1 // touch every page
	}
	m1, err := SelfMemory()
	if err != nil {
		t.Fatal(err)
	}
	if m1.HWM < m0.RSS+big/2 {
		t.Errorf("after touching %d bytes, HWM %d (RSS before %d)", big, m1.HWM, m0.RSS)
	}
	b = nil
	resetPeak()
	if err := ResetPeak(); err != nil {
		t.Skipf("clear_refs: %v", err)
	}
	m2, err := SelfMemory()
	if err != nil {
		t.Fatal(err)
	}
	if m2.HWM >= m1.HWM {
		t.Errorf("ResetPeak left HWM at %d (was %d; RSS now %d)", m2.HWM, m1.HWM, m2.RSS)
	}
}

func TestParseStatCPU(t *testing.T) {
	// utime 250 and stime 50 ticks; the command name holds ") (" and
	// spaces, as a hostile one may.
	stat := "4242 (lua5.4 ) (x) S 1 4242 4242 0 -1 4194560 9000 0 0 0 250 50 0 0 20 0 1 0 100 1000 500 18446744073709551615\n"
	got, err := parseStatCPU([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	if want := 3 * time.Second; got != want {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, bad := range []string{"", "4242 lua S 1", "1 (x) S 1 2 3", "1 (x) S 1 2 3 4 5 6 7 8 9 10 x y z"} {
		if d, err := parseStatCPU([]byte(bad)); err == nil {
			t.Errorf("parseStatCPU(%q) = %v, want an error", bad, d)
		}
	}
}

// TestProcCPU checks ProcCPU of this process against getrusage: both
// count the same CPU time, /proc in 10 ms ticks.
func TestProcCPU(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	deadline := time.Now().Add(200 * time.Millisecond)
	x := 0
	for time.Now().Before(deadline) {
		x++
	}
	p, err := ProcCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	r := SelfCPU()
	if p < 100*time.Millisecond || p > r+50*time.Millisecond || r-p > 200*time.Millisecond {
		t.Errorf("/proc says %v, getrusage %v (spun %d times)", p, r, x)
	}
}
