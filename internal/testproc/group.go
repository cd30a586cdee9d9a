package testproc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	// tagPrefix starts the name of the environment variable that marks
	// the processes of a group: tagPrefix + token, value "1".
	tagPrefix = "JINGLEKIT_TESTPROC_"
	// guardEnv holds the record path of the group a guard watches; a
	// process started with it set runs as a guard (see init in guard.go).
	guardEnv = "JINGLEKIT_TESTPROC_GUARD_RECORD"

	defaultGrace = 5 * time.Second
	killWait     = 3 * time.Second
	pollInterval = 50 * time.Millisecond
)

// GroupOptions configure a Group. The zero value is usable.
type GroupOptions struct {
	// Guard starts a watchdog process that stops the group's processes as
	// soon as this process dies, however it dies. Use it when the group
	// runs daemons that leave their process group (setsid, double fork),
	// which PR_SET_PDEATHSIG does not reach.
	Guard bool
	// Grace is how long Close waits after SIGTERM before SIGKILL.
	// Default 5s.
	Grace time.Duration
	// Logger receives warnings (leftovers killed). Default slog.Default().
	Logger *slog.Logger
}

// Leftover is a process of a dead group that NewGroup or CleanStale killed.
type Leftover struct {
	Pid     int
	Cmdline string
}

// procID identifies a process for good: a PID and its start time.
type procID struct {
	Pid   int    `json:"pid"`
	Start uint64 `json:"start"`
}

// record is the file of a live group in DirFor(name).
type record struct {
	Token   string   `json:"token"`
	Owner   procID   `json:"owner"`
	Adopted []procID `json:"adopted,omitempty"`
}

// Group is a set of processes started for one harness instance: the
// processes it tags (Command, CommandContext, Tag) and their descendants,
// and the PIDs it adopts. Close stops them all.
type Group struct {
	name  string
	path  string // record file
	tag   string // "NAME=1" environment entry
	grace time.Duration
	log   *slog.Logger

	leftovers []Leftover

	mu     sync.Mutex // guards rec, guard, closed
	rec    record
	guard  *guard
	closed bool
}

// DirFor returns the directory where the groups of harness name record
// themselves: os.TempDir()/jinglekit-testproc/name.
func DirFor(name string) string {
	return filepath.Join(os.TempDir(), "jinglekit-testproc", name)
}

// NewGroup cleans up after the dead groups of harness name (CleanStale),
// logging what it had to kill, and records a new group. name is a short
// identifier of the harness, like "prosodytest" (a-z, 0-9, '-').
func NewGroup(name string, opts GroupOptions) (*Group, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if opts.Grace <= 0 {
		opts.Grace = defaultGrace
	}
	leftovers, err := CleanStale(name)
	for _, l := range leftovers {
		log.Warn("testproc: killed a leftover of a previous run of this harness", "harness", name, "pid", l.Pid, "cmd", l.Cmdline)
	}
	if err != nil {
		return nil, err
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails: Go crashes the program if the system RNG does
	token := strings.ReplaceAll(name, "-", "_") + "_" + hex.EncodeToString(b)
	me, err := procStartTime(os.Getpid())
	if err != nil {
		return nil, fmt.Errorf("testproc: own start time: %w", err)
	}
	g := &Group{
		name:      name,
		path:      filepath.Join(DirFor(name), token+".json"),
		tag:       tagPrefix + token + "=1",
		grace:     opts.Grace,
		log:       log,
		leftovers: leftovers,
		rec:       record{Token: token, Owner: procID{Pid: os.Getpid(), Start: me}},
	}
	if err := writeRecord(g.path, g.rec); err != nil {
		return nil, err
	}
	if opts.Guard {
		gd, err := startGuard(g.path)
		if err != nil {
			_ = os.Remove(g.path)
			return nil, err
		}
		g.guard = gd
	}
	return g, nil
}

func checkName(name string) error {
	if name == "" {
		return errors.New("testproc: empty group name")
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("testproc: group name %q: use a-z, 0-9 and -", name)
		}
	}
	return nil
}

// Leftovers returns the processes of dead groups that NewGroup killed.
func (g *Group) Leftovers() []Leftover { return append([]Leftover(nil), g.leftovers...) }

// Env returns base (os.Environ() when nil) with the group's tag added.
func (g *Group) Env(base []string) []string {
	if base == nil {
		base = os.Environ()
	}
	return append(base[:len(base):len(base)], g.tag)
}

// Tag adds the group's tag to cmd's environment (os.Environ() when
// cmd.Env is nil) and prepares cmd (Prepare).
func (g *Group) Tag(cmd *exec.Cmd) *exec.Cmd {
	cmd.Env = g.Env(cmd.Env)
	Prepare(cmd)
	return cmd
}

// Command returns a tagged and prepared exec.Command.
func (g *Group) Command(name string, arg ...string) *exec.Cmd {
	return g.Tag(exec.Command(name, arg...))
}

// CommandContext returns a tagged and prepared exec.CommandContext.
func (g *Group) CommandContext(ctx context.Context, name string, arg ...string) *exec.Cmd {
	return g.Tag(exec.CommandContext(ctx, name, arg...))
}

// Adopt adds process pid, which must be alive, to the group: a process
// that does not carry the group's tag because it was not started through
// it or scrubbed its environment. It is identified by its start time, so
// that a later process with the same PID is never touched.
func (g *Group) Adopt(pid int) error {
	st, err := procStartTime(pid)
	if err != nil {
		return fmt.Errorf("testproc: adopt %d: %w", pid, err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return errors.New("testproc: adopt in a closed group")
	}
	g.rec.Adopted = append(g.rec.Adopted, procID{Pid: pid, Start: st})
	return writeRecord(g.path, g.rec)
}

// Members returns the PIDs of the group's live processes.
func (g *Group) Members() ([]int, error) {
	g.mu.Lock()
	rec := g.rec
	g.mu.Unlock()
	return members(rec)
}

// Close stops every process of the group: SIGTERM, then SIGKILL to those
// still alive after the grace period. It then stops the guard and removes
// the group's record. It reports processes that survived SIGKILL. Close
// is idempotent.
func (g *Group) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	g.closed = true
	err := stopAll(g.rec, g.grace)
	// The record goes first: the guard, woken next, finds none and exits.
	if rerr := os.Remove(g.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		err = errors.Join(err, fmt.Errorf("testproc: remove record: %w", rerr))
	}
	if g.guard != nil {
		err = errors.Join(err, g.guard.stop())
	}
	return err
}

// members returns the live processes of rec: tagged or adopted.
func members(rec record) ([]int, error) {
	pids, err := processes()
	if err != nil {
		return nil, err
	}
	tag := tagPrefix + rec.Token + "=1"
	seen := map[int]bool{}
	var out []int
	for _, pid := range pids {
		if hasEnv(pid, tag) {
			seen[pid] = true
			out = append(out, pid)
		}
	}
	for _, a := range rec.Adopted {
		if !seen[a.Pid] && alive(a.Pid, a.Start) {
			seen[a.Pid] = true
			out = append(out, a.Pid)
		}
	}
	return out, nil
}

// stopAll sends SIGTERM to the members of rec (none when grace is 0),
// waits until they are gone or grace has passed, then SIGKILLs the rest.
func stopAll(rec record, grace time.Duration) error {
	if grace > 0 {
		if err := signalAll(rec, syscall.SIGTERM); err != nil {
			return err
		}
		if waitGone(rec, grace) {
			return nil
		}
	}
	if err := signalAll(rec, syscall.SIGKILL); err != nil {
		return err
	}
	if waitGone(rec, killWait) {
		return nil
	}
	left, _ := members(rec)
	return fmt.Errorf("testproc: processes %v survived SIGKILL", left)
}

func signalAll(rec record, sig syscall.Signal) error {
	pids, err := members(rec)
	if err != nil {
		return err
	}
	for _, pid := range pids {
		_ = killPid(pid, sig) // gone meanwhile: fine
	}
	return nil
}

// waitGone polls until rec has no live member or d has passed.
func waitGone(rec record, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		pids, err := members(rec)
		if err == nil && len(pids) == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollInterval)
	}
}

// CleanStale kills the processes of the groups of harness name whose owner
// has died (a killed test binary), and removes their records. It returns
// what it killed.
func CleanStale(name string) ([]Leftover, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	dir := DirFor(name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("testproc: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("testproc: %w", err)
	}
	var killed []Leftover
	var errs []error
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		rec, err := readRecord(path)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
			continue
		}
		if alive(rec.Owner.Pid, rec.Owner.Start) {
			continue
		}
		k, err := reap(rec, path)
		killed = append(killed, k...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return killed, errors.Join(errs...)
}

// reap kills the live members of a dead owner's group and removes its
// record.
func reap(rec record, path string) ([]Leftover, error) {
	pids, err := members(rec)
	if err != nil {
		return nil, err
	}
	var killed []Leftover
	for _, pid := range pids {
		killed = append(killed, Leftover{Pid: pid, Cmdline: cmdline(pid)})
	}
	err = stopAll(rec, 0)
	if rerr := os.Remove(path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	return killed, err
}

func readRecord(path string) (record, error) {
	var rec record
	data, err := os.ReadFile(path)
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(data, &rec); err != nil || rec.Token == "" {
		// Records are written by rename, never partially: this is not ours.
		return rec, fmt.Errorf("testproc: bad record %s: %v", path, err)
	}
	return rec, nil
}

// writeRecord replaces the record at path atomically.
func writeRecord(path string, rec record) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("testproc: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("testproc: write record: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("testproc: write record: %w", err)
	}
	return nil
}
