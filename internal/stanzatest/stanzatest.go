// Package stanzatest runs the StanzaJS interop peer of
// ../shared/peers/stanza for tests: StanzaJS 12.22.1 in Node with
// @roamhq/wrtc 0.10.0 (libwebrtc) as its RTCPeerConnection, behind a
// private Prosody 0.12 on fixed loopback ports (c2s 127.0.0.1:25222,
// websocket 25280), so one harness runs at a time per machine.
//
// Start copies the harness (the shared folder is read-only) to a temporary
// directory, installs its node modules with npm ci — cached under
// os.UserCacheDir, keyed by the hash of package-lock.json, so that CI runs
// npm once — starts its Prosody and returns. Peer starts one `node peer.js`
// process. Every process started dies with the test (internal/testproc:
// process group, PR_SET_PDEATHSIG, and a guard for Prosody, which
// prosody-up starts with setsid).
//
// Without node, npm or prosody the test is skipped, or fails when
// JINGLEKIT_REQUIRE_STANZA=1 (CI).
//
// Every peer.js runs with trace.js preloaded (an observer only): a StanzaJS
// receiver that ends a transfer with media-error — its hash of the
// data-channel messages, taken in the order its onmessage gets them, does
// not match the sender's checksum — leaves the messages it got, and the
// bytes, and Peer.Explain says where they differ from what was sent.
//
// StanzaJS 12.22.1 + @roamhq/wrtc 0.10.0 did so a few times on 2026-12-06,
// with a StanzaJS sender too (see jinglebench's stanzaBaseline). Traced
// twice, 10 MiB at load 11: StanzaJS to StanzaJS, the receiver's
// JavaScript got the sender's 8th message first, then the channel's open
// event, then messages 1–7, then the rest in order; jinglekit to StanzaJS,
// our 2nd message, then open, then the 1st. That is @roamhq/wrtc 0.10.0's
// (src/interfaces/rtc_data_channel.cc, RTCDataChannel's constructor): a
// channel the peer opens is first observed by a
// DataChannelObserver that queues its messages until JavaScript's
// RTCDataChannel exists; the constructor registers the new object as
// libwebrtc's observer and only then moves the queued messages to the
// object's own queue, so a message that libwebrtc delivers in between
// overtakes the queued ones. The window is open only while messages are
// queued: with a jinglekit sender (data right after the DCEP OPEN, as
// browsers do) the first message reaches StanzaJS's JavaScript 0.5–0.7 ms
// after its datachannel event, so every transfer to StanzaJS crosses it;
// with a StanzaJS sender, which waits for its own open event and a file
// read, 6–660 ms later. Such a reorder shows in Explain as misplaced
// messages among the first ones, and Trace.WrtcReorder tells it from any
// other mismatch. TestStanza's 10 MiB is as exposed as 100 MiB: the
// window is at the start.
package stanzatest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jinglekit/jinglekit/internal/prosodytest"
	"github.com/jinglekit/jinglekit/internal/testproc"
)

// EnvRequire makes a missing node, npm or prosody fail the test instead of
// skipping it (CI sets it).
const EnvRequire = "JINGLEKIT_REQUIRE_STANZA"

// The harness's fixed settings (see its README).
const (
	Domain   = "localhost"
	C2SAddr  = "127.0.0.1:25222"
	Password = "pass"
)

// Harness is a running copy of the StanzaJS harness.
type Harness struct {
	// Dir is the copy of the harness, with its node_modules.
	Dir string
	// ProsodyDir holds the Prosody's config, certificates and log.
	ProsodyDir string
	// CAFile is the PEM of the CA that signed the Prosody's certificate.
	CAFile string

	group     *testproc.Group
	prosodyUp bool
	peers     atomic.Int32 // peers started, to name their trace directories
}

// missing skips or fails the test for a missing dependency.
func missing(t testing.TB, msg string) {
	t.Helper()
	msg = "StanzaJS interop: " + msg + " (apt-get install nodejs npm prosody)"
	if os.Getenv(EnvRequire) == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// ErrNotInstalled is wrapped by Launch's error when node, npm, prosody or
// the harness itself is missing, or node is older than MinNode.
var ErrNotInstalled = errors.New("stanzatest: StanzaJS harness not installed")

// MinNode is the oldest Node.js major version the harness runs on: its
// package.json says ">=20", and peer.js uses fs.openAsBlob and the global
// File. Debian 12's nodejs is 18.20, where `send` fails with
// "fs.openAsBlob is not a function" (.ci/run installs Node 20 then).
const MinNode = 20

// checkNode fails with ErrNotInstalled when the node on PATH is older
// than MinNode.
func checkNode(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, "node", "--version").Output()
	if err != nil {
		return fmt.Errorf("stanzatest: node --version: %w", err)
	}
	v := strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
	major, _, _ := strings.Cut(v, ".")
	if n, err := strconv.Atoi(major); err != nil || n < MinNode {
		return fmt.Errorf("%w: node %s is older than the harness's Node.js %d", ErrNotInstalled, strings.TrimSpace(string(out)), MinNode)
	}
	return nil
}

// Source returns the directory of the harness: ../shared/peers/stanza
// next to the module's root, found from the working directory upwards.
func Source() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			src := filepath.Join(filepath.Dir(dir), "shared", "peers", "stanza")
			if _, err := os.Stat(filepath.Join(src, "peer.js")); err != nil {
				return "", fmt.Errorf("%w: no harness in %s", ErrNotInstalled, src)
			}
			return src, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("%w: no go.mod above %s", ErrNotInstalled, wd)
		}
	}
}

// Start starts the harness for t; t's cleanup stops it.
func Start(t testing.TB) *Harness {
	t.Helper()
	src, err := Source()
	if err != nil {
		missing(t, err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	h, err := Launch(ctx, src, t.TempDir(), t.Logf)
	if errors.Is(err, ErrNotInstalled) {
		missing(t, err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(h.ProsodyDir, "prosody.log")); err == nil {
				t.Logf("stanzatest: prosody.log (tail):\n%s", tail(string(b), 40))
			}
		}
		if err := h.Close(); err != nil {
			t.Errorf("stanzatest: stopping the harness: %v", err)
		}
	})
	return h
}

// Launch copies the harness from src into work (which must exist),
// installs its node modules and starts its Prosody. logf, if not nil,
// receives notes. Close stops it.
func Launch(ctx context.Context, src, work string, logf func(string, ...any)) (*Harness, error) {
	for _, cmd := range []string{"node", "npm", "prosody", "prosodyctl", "openssl"} {
		if _, err := exec.LookPath(cmd); err != nil {
			return nil, fmt.Errorf("%w: %s not found", ErrNotInstalled, cmd)
		}
	}
	if err := checkNode(ctx); err != nil {
		return nil, err
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	g, err := testproc.NewGroup("stanzatest", testproc.GroupOptions{Guard: true})
	if err != nil {
		return nil, err
	}
	h := &Harness{Dir: filepath.Join(work, "stanza"), ProsodyDir: filepath.Join(work, "prosody"), group: g}
	h.CAFile = filepath.Join(h.ProsodyDir, "certs", "ca.crt")
	if err := h.launch(ctx, src, logf); err != nil {
		_ = h.Close()
		return nil, err
	}
	return h, nil
}

func (h *Harness) launch(ctx context.Context, src string, logf func(string, ...any)) error {
	if out, err := exec.CommandContext(ctx, "cp", "-r", src, h.Dir).CombinedOutput(); err != nil {
		return fmt.Errorf("stanzatest: copying the harness: %w: %s", err, out)
	}
	if out, err := exec.CommandContext(ctx, "chmod", "-R", "u+w", h.Dir).CombinedOutput(); err != nil {
		return fmt.Errorf("stanzatest: %w: %s", err, out)
	}
	_ = os.RemoveAll(filepath.Join(h.Dir, "run"))
	_ = os.RemoveAll(filepath.Join(h.Dir, "node_modules"))
	if err := os.WriteFile(filepath.Join(h.Dir, traceFile), traceJS, 0o644); err != nil {
		return fmt.Errorf("stanzatest: %w", err)
	}
	if err := h.installModules(ctx, logf); err != nil {
		return fmt.Errorf("stanzatest: %w", err)
	}
	h.prosodyUp = true
	if out, err := h.script(ctx, "./prosody-up", h.ProsodyDir); err != nil {
		return fmt.Errorf("stanzatest: prosody-up: %w\n%s", err, out)
	}
	return nil
}

// Close stops the harness's Prosody and every process it started.
func (h *Harness) Close() error {
	var err error
	if h.prosodyUp {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if out, derr := h.script(ctx, "./prosody-down", h.ProsodyDir); derr != nil {
			err = fmt.Errorf("stanzatest: prosody-down: %w: %s", derr, out)
		}
	}
	return errors.Join(err, h.group.Close())
}

// script runs one of the harness's shell scripts.
func (h *Harness) script(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := h.group.CommandContext(ctx, name, args...)
	cmd.Dir = h.Dir
	cmd.WaitDelay = 5 * time.Second
	out, err := testproc.CombinedOutput(cmd)
	return string(out), err
}

// Server describes the harness's Prosody for the Go side of a test (log in
// as carol, alice or bob over c2s, password Password).
func (h *Harness) Server() *prosodytest.Server {
	return &prosodytest.Server{Domain: Domain, C2SAddr: C2SAddr, CAFile: h.CAFile, Dir: h.ProsodyDir}
}

// installModules puts node_modules into the copy: from the cache when a
// previous run installed the same package-lock.json, else with npm ci,
// whose result is then cached.
func (h *Harness) installModules(ctx context.Context, logf func(string, ...any)) error {
	lock, err := os.ReadFile(filepath.Join(h.Dir, "package-lock.json"))
	if err != nil {
		return err
	}
	sum := sha256.Sum256(lock)
	key := hex.EncodeToString(sum[:8])
	cacheRoot, err := os.UserCacheDir()
	if err != nil {
		cacheRoot = os.TempDir()
	}
	cached := filepath.Join(cacheRoot, "jinglekit", "stanza-node-modules", key)
	dst := filepath.Join(h.Dir, "node_modules")
	if fi, err := os.Stat(filepath.Join(cached, "node_modules", "stanza")); err == nil && fi.IsDir() {
		return copyTree(filepath.Join(cached, "node_modules"), dst)
	}
	cmd := h.group.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = h.Dir
	cmd.WaitDelay = 5 * time.Second
	if out, err := testproc.CombinedOutput(cmd); err != nil {
		return fmt.Errorf("npm ci: %w\n%s", err, tail(string(out), 30))
	}
	// Cache the result: copy it next to its final place, then rename, so
	// that a concurrent or interrupted run never sees half a tree.
	if err := os.MkdirAll(filepath.Dir(cached), 0o755); err != nil {
		logf("stanzatest: not caching node_modules: %v", err)
		return nil
	}
	tmp, err := os.MkdirTemp(filepath.Dir(cached), key+".tmp-")
	if err != nil {
		logf("stanzatest: not caching node_modules: %v", err)
		return nil
	}
	if err := copyTree(dst, filepath.Join(tmp, "node_modules")); err != nil || os.Rename(tmp, cached) != nil {
		_ = os.RemoveAll(tmp)
	}
	return nil
}

// copyTree copies the directory src to dst (which must not exist),
// keeping symbolic links and modes.
func copyTree(src, dst string) error {
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		return fmt.Errorf("cp -a %s %s: %w: %s", src, dst, err, out)
	}
	return nil
}

func tail(s string, lines int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// Peer is one running `node peer.js` process.
type Peer struct {
	args   []string
	name   string // its command (args[0]), or "peer"
	trace  string // its trace directory
	proc   *testproc.Process
	stdout *testproc.Output
	stderr *testproc.Output
}

// Peer starts `node peer.js ARGS…` (see the harness's README: send,
// receive, call, answer). It is stopped, if still running, when t ends;
// if t failed, its trace, logs and output are kept (Keep) and logged.
func (h *Harness) Peer(t testing.TB, args ...string) *Peer {
	t.Helper()
	p, err := h.StartPeer(args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			kept, err := p.Keep()
			if err != nil {
				kept = err.Error()
			}
			t.Logf("stanzatest: node peer.js %s (kept in %s)\nstderr:\n%s", strings.Join(args, " "), kept, tail(p.stderr.String(), 60))
		}
	})
	return p
}

// StartPeer starts `node peer.js ARGS…`, traced (trace.js); Stop (or the
// harness's Close) ends it.
func (h *Harness) StartPeer(args ...string) (*Peer, error) {
	name := "peer"
	if len(args) > 0 {
		name = args[0]
	}
	dir := filepath.Join(h.Dir, "trace", fmt.Sprintf("%d-%s", h.peers.Add(1), name))
	cmd := h.group.Command("node", append([]string{"--require", "./" + traceFile, "peer.js"}, args...)...)
	cmd.Dir = h.Dir
	cmd.Env = append(cmd.Env, EnvTrace+"="+dir)
	p := &Peer{args: args, name: name, trace: dir, stdout: &testproc.Output{}, stderr: &testproc.Output{}}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	proc, err := testproc.Start(cmd)
	if err != nil {
		return nil, fmt.Errorf("stanzatest: node peer.js: %w", err)
	}
	p.proc = proc
	return p, nil
}

// Trace reads what the process's trace recorded (complete once it has
// exited).
func (p *Peer) Trace() (Trace, error) { return readTrace(p.trace) }

// Explain says how the messages this peer received compare with sent
// (size bytes): see Trace.Compare.
func (p *Peer) Explain(sent io.ReaderAt, size int64) string {
	tr, err := p.Trace()
	if err != nil {
		return err.Error()
	}
	return tr.Compare(sent, size)
}

// Keep moves the peer's trace (with the received bytes of a failed hash
// check) into a new directory under os.TempDir() that outlives the test,
// with its stdout, stderr and --log file, and returns its path.
func (p *Peer) Keep() (string, error) {
	dst, err := os.MkdirTemp("", "jinglekit-stanza-"+p.name+"-")
	if err != nil {
		return "", fmt.Errorf("stanzatest: keeping the peer's trace: %w", err)
	}
	var errs []error
	if err := os.Rename(p.trace, filepath.Join(dst, "trace")); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, copyTree(p.trace, filepath.Join(dst, "trace")))
	}
	errs = append(errs,
		os.WriteFile(filepath.Join(dst, "stdout"), []byte(p.stdout.String()), 0o644),
		os.WriteFile(filepath.Join(dst, "stderr"), []byte(p.stderr.String()), 0o644))
	for i, a := range p.args {
		if a == "--log" && i+1 < len(p.args) && p.args[i+1] != "-" {
			if b, err := os.ReadFile(p.args[i+1]); err == nil {
				errs = append(errs, os.WriteFile(filepath.Join(dst, "jingle.log"), b, 0o644))
			}
		}
	}
	p.trace = filepath.Join(dst, "trace")
	return dst, errors.Join(errs...)
}

// Stop ends the process if it still runs.
func (p *Peer) Stop() {
	if done, _ := p.proc.Exited(); !done {
		_, _ = p.proc.Stop(3 * time.Second)
	}
}

// Ready waits until a receive or answer peer is logged in and waits for a
// session (its "ready:" line).
func (p *Peer) Ready(ctx context.Context) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !strings.Contains(p.stderr.String(), "] ready: ") {
		select {
		case <-p.proc.Done():
			return fmt.Errorf("stanzatest: peer.js %s exited before it was ready:\n%s", p.name, tail(p.stderr.String(), 30))
		case <-ctx.Done():
			return fmt.Errorf("stanzatest: peer.js %s not ready: %w:\n%s", p.name, ctx.Err(), tail(p.stderr.String(), 30))
		case <-tick.C:
		}
	}
	return nil
}

// Result waits for the process to exit (when ctx ends first, it is
// stopped and the error says so) and returns how it ended.
func (p *Peer) Result(ctx context.Context) (Result, error) {
	select {
	case <-p.proc.Done():
	case <-ctx.Done():
		p.Stop()
		return Result{}, fmt.Errorf("stanzatest: peer.js %s still running: %w:\n%s", p.name, ctx.Err(), tail(p.stderr.String(), 30))
	}
	r := Result{Code: -1, Ended: time.Now(), Stderr: p.stderr.String()}
	code, err := testproc.ExitCode(p.proc.Wait())
	if err != nil {
		return r, fmt.Errorf("stanzatest: peer.js %s: %w", p.name, err)
	}
	r.Code = code
	for _, line := range strings.Split(p.stdout.String(), "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			r.Summary = m
		}
	}
	return r, nil
}

// WaitReady is Ready for a test: it fails t after timeout.
func (p *Peer) WaitReady(t testing.TB, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := p.Ready(ctx); err != nil {
		t.Fatal(err)
	}
}

// Result is how a peer.js run ended.
type Result struct {
	// Code is the exit status: 0 ok, 1 Jingle or transfer failure, 2
	// timeout, 3 connect or auth failure, 4 usage.
	Code int
	// Summary is the JSON summary line peer.js prints at the end (nil if
	// it printed none).
	Summary map[string]any
	// Ended is when the process was seen to exit.
	Ended time.Time
	// Stderr is its progress log.
	Stderr string
}

// Number returns a numeric field of the summary, or -1.
func (r Result) Number(field string) float64 {
	if v, ok := r.Summary[field].(float64); ok {
		return v
	}
	return -1
}

// String returns a summary field as a string ("" when absent).
func (r Result) String(field string) string {
	if v, ok := r.Summary[field].(string); ok {
		return v
	}
	return ""
}

// Done is closed when the process has exited.
func (p *Peer) Done() <-chan struct{} { return p.proc.Done() }

// Wait is Result for a test: it waits up to timeout, then fails t.
func (p *Peer) Wait(t testing.TB, timeout time.Duration) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	r, err := p.Result(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// LogEntry is one line of a peer.js --log file: a Jingle IQ (or the
// answer to one) sent or received.
type LogEntry struct {
	Time   time.Time
	Sent   bool   // SENT, else RECV
	Action string // "session-info", "result to session-info", …
}

// ReadLog parses the entries of a peer.js --log file.
func ReadLog(t testing.TB, path string) []LogEntry {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("stanzatest: %v", err)
	}
	var out []LogEntry
	for _, line := range strings.Split(string(b), "\n") {
		// <!-- 2026-12-06T00:18:40.776Z RECV by bob@localhost/stanza: session-initiate -->
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "<!-- ")
		if !ok {
			continue
		}
		rest = strings.TrimSuffix(rest, " -->")
		f := strings.SplitN(rest, " ", 4)
		if len(f) < 4 || (f[1] != "SENT" && f[1] != "RECV") {
			continue
		}
		ts, err := time.Parse(time.RFC3339Nano, f[0])
		if err != nil {
			continue
		}
		_, action, ok := strings.Cut(f[3], ": ")
		if !ok {
			continue
		}
		out = append(out, LogEntry{Time: ts, Sent: f[1] == "SENT", Action: action})
	}
	return out
}

// Find returns the first entry of log with the direction and action.
func Find(log []LogEntry, sent bool, action string) (LogEntry, bool) {
	for _, e := range log {
		if e.Sent == sent && e.Action == action {
			return e, true
		}
	}
	return LogEntry{}, false
}
