// Package liberviatest runs the Libervia interop peer of
// ../shared/peers/libervia for tests and benchmarks: Debian's Prosody 0.12
// on fixed loopback ports (c2s 127.0.0.1:15222, proxy65 127.0.0.1:15000,
// so one harness runs at a time per machine) and Libervia 0.9 backends
// (libervia-backend + libervia-cli, Python/Twisted), one per profile.
//
// Launch copies the harness (the shared folder is read-only) to a
// temporary directory and starts its Prosody; Up starts a backend; Send
// and Receive drive `libervia-cli file send/receive` through the harness's
// send-file and receive-file scripts, every wait bounded. The scripts
// start their daemons with setsid, out of reach of a process group: every
// script runs in an internal/testproc group with a guard, which kills
// whatever they started as soon as this process dies, and the next run
// kills what a dead run left.
//
// Without prosody, libervia-backend, libervia-cli, dbus-daemon or
// python3-progressbar, Start skips the test, or fails it when
// JINGLEKIT_REQUIRE_LIBERVIA=1 (CI); Launch returns an error wrapping
// ErrNotInstalled.
package liberviatest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jinglekit/jinglekit/internal/prosodytest"
	"github.com/jinglekit/jinglekit/internal/testproc"
	"github.com/jinglekit/jinglekit/internal/xmltest"
)

// EnvRequire makes a missing Libervia fail the test instead of skipping
// it (CI sets it).
const EnvRequire = "JINGLEKIT_REQUIRE_LIBERVIA"

// The harness's fixed settings (see its README).
const (
	Domain    = "localhost"
	C2SAddr   = "127.0.0.1:15222"
	ProxyAddr = "127.0.0.1:15000"
	// Password is the password of every account (alice, bob, carol).
	Password = "pass"
)

// ErrNotInstalled is wrapped by Launch's error when a package the harness
// needs, or the harness itself, is missing.
var ErrNotInstalled = errors.New("liberviatest: Libervia harness not installed")

// installHint is the command that installs what the harness needs.
const installHint = "apt-get install --no-install-recommends prosody lua-unbound libervia-backend libervia-cli dbus python3-progressbar"

// JID returns the full JID of profile's backend: PROFILE@localhost/libervia.
func JID(profile string) string { return profile + "@" + Domain + "/libervia" }

// Options configure Launch.
type Options struct {
	// QuietProsody logs at info level instead of the harness's default
	// debug level with every stanza (PROSODY_STANZA_LOG=0): the stanza log
	// costs about 3 MB per MiB sent over IBB.
	QuietProsody bool
}

// Harness is a running copy of the Libervia harness.
type Harness struct {
	// Dir is the copy of the harness.
	Dir string
	// ProsodyDir holds the Prosody's config, certificates and log.
	ProsodyDir string
	// CAFile is the PEM of the CA that signed the Prosody's certificate.
	CAFile string

	state     string // parent of the backends' state directories
	group     *testproc.Group
	prosodyUp bool

	mu       sync.Mutex
	profiles map[string]string // running backends: profile → state directory
}

// Source returns the directory of the harness: ../shared/peers/libervia
// next to the module's root (xmltest.SharedPath).
func Source() (string, error) {
	shared, err := xmltest.SharedPath()
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNotInstalled, err)
	}
	src := filepath.Join(shared, "peers", "libervia")
	if _, err := os.Stat(filepath.Join(src, "libervia-up")); err != nil {
		return "", fmt.Errorf("%w: no harness in %s", ErrNotInstalled, src)
	}
	return src, nil
}

// Check reports, wrapping ErrNotInstalled, what the harness needs and this
// machine lacks.
func Check() error {
	for _, cmd := range []string{"prosody", "prosodyctl", "libervia-backend", "libervia-cli", "dbus-daemon", "openssl"} {
		if _, err := exec.LookPath(cmd); err != nil {
			return fmt.Errorf("%w: %s not found (%s)", ErrNotInstalled, cmd, installHint)
		}
	}
	// Without it libervia-cli file receive never exits (the harness's README).
	if exec.Command("/usr/bin/python3", "-c", "import progressbar").Run() != nil {
		return fmt.Errorf("%w: python3-progressbar missing (%s)", ErrNotInstalled, installHint)
	}
	return nil
}

// CheckOMEMO reports, wrapping ErrNotInstalled, that the Python packages
// Libervia's OMEMO (JET encryption) needs are missing.
func CheckOMEMO() error {
	if exec.Command("/usr/bin/python3", "-c", "import oldmemo, omemo, x3dh, doubleratchet, xeddsa").Run() != nil {
		return fmt.Errorf("%w: Libervia's OMEMO needs python3-oldmemo python3-omemo python3-twomemo "+
			"python3-x3dh python3-doubleratchet python3-xeddsa", ErrNotInstalled)
	}
	return nil
}

// SkipUnless skips t when err wraps ErrNotInstalled, or fails it when
// JINGLEKIT_REQUIRE_LIBERVIA=1; any other non-nil err fails t.
func SkipUnless(t testing.TB, err error) {
	t.Helper()
	switch {
	case err == nil:
	case !errors.Is(err, ErrNotInstalled) || os.Getenv(EnvRequire) == "1":
		t.Fatalf("Libervia interop: %v", err)
	default:
		t.Skipf("Libervia interop: %v", err)
	}
}

// Start starts the harness's Prosody for t (backends: Up); t's cleanup
// stops everything the harness started.
func Start(t testing.TB, opts Options) *Harness {
	t.Helper()
	src, err := Source()
	if err == nil {
		err = Check()
	}
	SkipUnless(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h, err := Launch(ctx, src, t.TempDir(), opts, t.Logf)
	SkipUnless(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			h.logTails(t)
		}
		if err := h.Close(); err != nil {
			t.Errorf("liberviatest: stopping the harness: %v", err)
		}
	})
	return h
}

// logTails logs the end of Prosody's and of every backend's log.
func (h *Harness) logTails(t testing.TB) {
	logs := map[string]string{"prosody.log": filepath.Join(h.ProsodyDir, "prosody.log")}
	h.mu.Lock()
	for p, dir := range h.profiles {
		logs[p+" libervia.log"] = filepath.Join(dir, "data", "libervia", "libervia.log")
	}
	h.mu.Unlock()
	for name, path := range logs {
		if b, err := os.ReadFile(path); err == nil {
			t.Logf("liberviatest: %s (tail):\n%s", name, tail(string(b), 30))
		}
	}
}

// Launch copies the harness from src into work (which must exist) and
// starts its Prosody. logf, if not nil, receives notes. Close stops it.
func Launch(ctx context.Context, src, work string, opts Options, logf func(string, ...any)) (*Harness, error) {
	if err := Check(); err != nil {
		return nil, err
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	g, err := testproc.NewGroup("libervia", testproc.GroupOptions{Guard: true})
	if err != nil {
		return nil, err
	}
	for _, l := range g.Leftovers() {
		logf("liberviatest: killed a leftover of an earlier run that was killed: pid %d: %s", l.Pid, l.Cmdline)
	}
	h := &Harness{Dir: filepath.Join(work, "libervia"), ProsodyDir: filepath.Join(work, "prosody"),
		state: filepath.Join(work, "state"), group: g, profiles: map[string]string{}}
	h.CAFile = filepath.Join(h.ProsodyDir, "certs", "ca.crt")
	if err := h.launch(ctx, src, opts); err != nil {
		return nil, errors.Join(err, h.Close())
	}
	return h, nil
}

func (h *Harness) launch(ctx context.Context, src string, opts Options) error {
	for _, addr := range []string{C2SAddr, ProxyAddr} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = c.Close()
			return fmt.Errorf("liberviatest: %s is in use, and not by a leftover of this harness (those were killed): "+
				"another run of the Libervia harness? Run them one at a time (flock /tmp/jinglekit-libervia.lock)", addr)
		}
	}
	if out, err := exec.CommandContext(ctx, "cp", "-r", src, h.Dir).CombinedOutput(); err != nil {
		return fmt.Errorf("liberviatest: copying the harness: %w: %s", err, out)
	}
	if out, err := exec.CommandContext(ctx, "chmod", "-R", "u+w", h.Dir).CombinedOutput(); err != nil {
		return fmt.Errorf("liberviatest: %w: %s", err, out)
	}
	if err := errors.Join(os.RemoveAll(filepath.Join(h.Dir, "run")), os.MkdirAll(h.state, 0o700)); err != nil {
		return fmt.Errorf("liberviatest: %w", err)
	}
	var env []string
	if opts.QuietProsody {
		env = append(env, "PROSODY_STANZA_LOG=0")
	}
	h.prosodyUp = true
	if out, err := h.script(ctx, env, "./prosody-up", h.ProsodyDir); err != nil {
		return fmt.Errorf("liberviatest: prosody-up: %w\n%s", err, out)
	}
	return nil
}

// Up starts a Libervia backend for profile (alice, bob or carol), with a
// fresh state directory, and waits until it is connected. env adds knobs
// of libervia-up (e.g. LV_FORCE_IBB=1: sessions it initiates use IBB).
// A backend of that profile already running is stopped first.
func (h *Harness) Up(ctx context.Context, profile string, env ...string) error {
	if err := h.Down(ctx, profile); err != nil {
		return err
	}
	dir, err := os.MkdirTemp(h.state, profile+"-")
	if err != nil {
		return fmt.Errorf("liberviatest: %w", err)
	}
	h.mu.Lock()
	h.profiles[profile] = dir
	h.mu.Unlock()
	if out, err := h.script(ctx, env, "./libervia-up", profile, dir); err != nil {
		return fmt.Errorf("liberviatest: libervia-up %s: %w\n%s", profile, err, tail(out, 20))
	}
	return nil
}

// UpAll starts backends for profiles concurrently (each takes about 20 s
// of CPU-bound Python start-up).
func (h *Harness) UpAll(ctx context.Context, profiles ...string) error {
	errs := make([]error, len(profiles))
	var wg sync.WaitGroup
	for i, p := range profiles {
		wg.Go(func() { errs[i] = h.Up(ctx, p) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Down stops profile's backend, if it runs.
func (h *Harness) Down(ctx context.Context, profile string) error {
	h.mu.Lock()
	_, ok := h.profiles[profile]
	delete(h.profiles, profile)
	h.mu.Unlock()
	if !ok {
		return nil
	}
	if out, err := h.script(ctx, nil, "./libervia-down", profile); err != nil {
		return fmt.Errorf("liberviatest: libervia-down %s: %w\n%s", profile, err, out)
	}
	return nil
}

// StartOMEMO switches OMEMO 0.3 on in profile's backend toward peer (a
// bare JID): without it Libervia 0.9 neither encrypts nor decrypts JET.
func (h *Harness) StartOMEMO(ctx context.Context, profile, peer string) error {
	out, err := h.script(ctx, nil, "bash", "-c",
		`eval "$(./libervia-env "$1")" && libervia-cli encryption start -p "$1" -n OLDMEMO "$2"`, "omemo", profile, peer)
	if err != nil {
		return fmt.Errorf("liberviatest: encryption start -p %s %s: %w\n%s", profile, peer, err, out)
	}
	return nil
}

// Server describes the harness's Prosody for the Go side (log in as
// carol, which no backend uses, password Password).
func (h *Harness) Server() *prosodytest.Server {
	return &prosodytest.Server{Domain: Domain, C2SAddr: C2SAddr, CAFile: h.CAFile, Dir: h.ProsodyDir}
}

// Close stops the backends, the Prosody and every process the harness
// started.
func (h *Harness) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	h.mu.Lock()
	running := len(h.profiles) > 0
	h.profiles = map[string]string{}
	h.mu.Unlock()
	if running {
		if out, derr := h.script(ctx, nil, "./libervia-down"); derr != nil {
			err = fmt.Errorf("liberviatest: libervia-down: %w: %s", derr, out)
		}
	}
	if h.prosodyUp {
		h.prosodyUp = false
		if out, derr := h.script(ctx, nil, "./prosody-down", h.ProsodyDir); derr != nil {
			err = errors.Join(err, fmt.Errorf("liberviatest: prosody-down: %w: %s", derr, out))
		}
	}
	// Whatever the scripts did not stop, before the directories go.
	return errors.Join(err, h.group.Close())
}

// command returns one of the harness's scripts, in its group, with
// Python's output unbuffered (the line times of Send and Receive).
func (h *Harness) command(ctx context.Context, env []string, name string, args ...string) *exec.Cmd {
	cmd := h.group.CommandContext(ctx, name, args...)
	cmd.Dir = h.Dir
	cmd.Env = append(append(cmd.Env, "PYTHONUNBUFFERED=1"), env...)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// script runs one of the harness's scripts to its end, for at most 3
// minutes.
func (h *Harness) script(ctx context.Context, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	out, err := testproc.CombinedOutput(h.command(ctx, env, name, args...))
	return string(out), err
}

func tail(s string, lines int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}
