package main

import (
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jinglekit/jinglekit/internal/testproc"
)

// TestMakeDist runs 'make dist' for one target in a fresh clone of the
// repository (its committed HEAD): the binary is static, its 'version'
// prints the clone's commit, and SHA256SUMS holds its hash. 'make man'
// writes a page per command. A release build shares no build cache with
// the tests' (static, -trimpath): it takes minutes, so it runs only with
// JINGLEKIT_DIST=1, as a step of its own in .ci/run.
func TestMakeDist(t *testing.T) {
	if os.Getenv("JINGLEKIT_DIST") != "1" {
		t.Skip("set JINGLEKIT_DIST=1 to build a release binary in a clone (minutes; CI does)")
	}
	for _, tool := range []string{"git", "make", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed: %v", tool, err)
		}
	}
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatalf("not in a git checkout: %v", err)
	}
	clone := filepath.Join(t.TempDir(), "jinglekit")
	if out, err := exec.Command("git", "clone", "--quiet", strings.TrimSpace(string(top)), clone).CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	head, err := exec.Command("git", "-C", clone, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	commit := strings.TrimSpace(string(head))

	mk := testproc.Command("make", "-C", clone, "dist", "man", "DIST_TARGETS=linux/amd64")
	mk.Env = append(os.Environ(), "GOFLAGS=")
	var mkOut strings.Builder
	mk.Stdout, mk.Stderr = &mkOut, &mkOut
	if err := testproc.Run(mk); err != nil {
		out := mkOut.String()
		t.Fatalf("make dist man: %v\n%s", err, out)
	}
	bin := filepath.Join(clone, "dist", "jinglectl-linux-amd64")
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatalf("%s version: %v", bin, err)
	}
	t.Logf("%s", out)
	if !strings.Contains(string(out), "commit "+commit) {
		t.Errorf("version %q lacks the commit %s", out, commit)
	}

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("the binary has a dynamic loader: not static")
		}
	}
	f.Close()

	sums, err := os.ReadFile(filepath.Join(clone, "dist", "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if want := hex.EncodeToString(sum[:]) + "  jinglectl-linux-amd64\n"; string(sums) != want {
		t.Errorf("SHA256SUMS = %q, want %q", sums, want)
	}

	for _, c := range append(commands(), command{name: ""}) {
		name := "jinglectl.1"
		if c.name != "" {
			name = "jinglectl-" + c.name + ".1"
		}
		page, err := os.ReadFile(filepath.Join(clone, "man", name))
		if err != nil {
			t.Errorf("make man: %v", err)
			continue
		}
		if !strings.Contains(string(page), ".TH \"JINGLECTL\"") {
			t.Errorf("%s is not a man page:\n%.200s", name, page)
		}
	}
	if page, _ := os.ReadFile(filepath.Join(clone, "man", "jinglectl-receive.1")); !strings.Contains(string(page), `.SH OPTIONS`) || !strings.Contains(string(page), `--accept-from\fP`) {
		t.Errorf("jinglectl-receive.1 lacks --accept-from:\n%s", page)
	}
}
