package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat. Linux
// fixes it at 100 for user space whatever the kernel's HZ (getconf CLK_TCK).
const clockTicks = 100

// Memory is what /proc/PID/status says about a process's resident memory.
type Memory struct {
	// RSS is the resident set size now (VmRSS), HWM its peak (VmHWM), in
	// bytes.
	RSS, HWM int64
}

// ReadMemory reads VmRSS and VmHWM from a /proc/PID/status file.
func ReadMemory(path string) (Memory, error) {
	f, err := os.Open(path)
	if err != nil {
		return Memory{}, err
	}
	defer f.Close()
	return parseStatus(f)
}

// SelfMemory is ReadMemory of this process.
func SelfMemory() (Memory, error) { return ReadMemory("/proc/self/status") }

// parseStatus reads the VmRSS and VmHWM lines ("VmHWM:     1772 kB") of a
// status file. Both must be present.
func parseStatus(r io.Reader) (Memory, error) {
	var m Memory
	var seen int
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		fields := strings.Fields(val)
		if len(fields) != 2 || fields[1] != "kB" {
			return Memory{}, fmt.Errorf("bench: malformed status line %q", sc.Text())
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil || kb < 0 {
			return Memory{}, fmt.Errorf("bench: malformed status line %q", sc.Text())
		}
		if key == "VmRSS" {
			m.RSS = kb << 10
			seen |= 1
		} else {
			m.HWM = kb << 10
			seen |= 2
		}
	}
	if err := sc.Err(); err != nil {
		return Memory{}, err
	}
	if seen != 3 {
		return Memory{}, errors.New("bench: status has no VmRSS or VmHWM")
	}
	return m, nil
}

// ResetPeak resets this process's VmHWM to its current RSS by writing "5"
// to /proc/self/clear_refs (Linux 4.0 and later).
func ResetPeak() error {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// SelfCPU returns the CPU time (user + system) this process has used.
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ProcCPU returns the CPU time (user + system) process pid has used, from
// /proc/PID/stat.
func ProcCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

// parseStatCPU extracts utime + stime (fields 14 and 15, in clock ticks)
// from the content of a /proc/PID/stat file. The command name (field 2) is
// in parentheses and may hold spaces and parentheses itself, so the fields
// are counted from the last ')'.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("bench: malformed stat: no command name")
	}
	// After ')' come field 3 (state) onwards: utime is field 14, the 12th
	// of these.
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("bench: malformed stat: %d fields after the command", len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bench: malformed stat times %q %q", f[11], f[12])
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// cpuMeter adds up the CPU time this process, Prosody and a receiving
// child use over intervals of wall time (begin … end), so that work
// between the intervals (the paired baselines) is not counted.
type cpuMeter struct {
	prosody, recv int // pids, 0 for none

	wall, self, pr, rc time.Duration
	wall0              time.Time
	self0, pr0, rc0    time.Duration
	prOK, rcOK         bool
}

func newCPUMeter(prosodyPid, receiverPid int) *cpuMeter {
	return &cpuMeter{prosody: prosodyPid, recv: receiverPid, prOK: prosodyPid > 0, rcOK: receiverPid > 0}
}

func (m *cpuMeter) begin() {
	m.wall0, m.self0 = time.Now(), SelfCPU()
	m.pr0, m.rc0 = m.read(m.prosody, &m.prOK), m.read(m.recv, &m.rcOK)
}

func (m *cpuMeter) end() {
	m.wall += time.Since(m.wall0)
	m.self += SelfCPU() - m.self0
	m.pr += m.read(m.prosody, &m.prOK) - m.pr0
	m.rc += m.read(m.recv, &m.rcOK) - m.rc0
}

func (m *cpuMeter) read(pid int, ok *bool) time.Duration {
	if !*ok {
		return 0
	}
	d, err := ProcCPU(pid)
	if err != nil {
		*ok = false
	}
	return d
}

// use returns the totals.
func (m *cpuMeter) use() *CPUUse {
	u := &CPUUse{WallS: m.wall.Seconds(), SelfS: m.self.Seconds()}
	if m.prOK {
		u.ProsodyS = f64(m.pr.Seconds())
	}
	if m.rcOK {
		u.ReceiverS = f64(m.rc.Seconds())
	}
	return u
}
