package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/jinglekit/jinglekit/cmd/jinglectl/internal/agent"
)

func runIn(args ...string) (stdout, stderr string, code int) {
	var o, e bytes.Buffer
	code = run(args, env{stdin: strings.NewReader(""), stdout: &o, stderr: &e, lookupEnv: func(string) string { return "" }})
	return o.String(), e.String(), code
}

// TestHelpEveryCommand: --help, -h and 'help CMD' print the usage on
// standard output with status 0; usage texts mention their flags.
func TestHelpEveryCommand(t *testing.T) {
	for _, c := range commands() {
		for _, args := range [][]string{{c.name, "--help"}, {c.name, "-h"}, {"help", c.name}} {
			out, errOut, code := runIn(args...)
			if code != 0 || errOut != "" || !strings.HasPrefix(out, "Usage: jinglectl "+c.name) {
				t.Errorf("%v: status %d, stdout %q, stderr %q", args, code, truncate(out, 80), errOut)
			}
		}
	}
	out, _, _ := runIn("send", "--help")
	for _, want := range []string{"--transport", "--proxy", "--no-proxy", "--no-direct", "--json", "--agent", "--jid", "--password-file", "--server", "--ca-file", "--insecure-skip-verify", "--config", "Exit status:", "12  agent unavailable"} {
		if !strings.Contains(strings.ReplaceAll(out, "  -", "  --"), want) {
			t.Errorf("send --help lacks %q", want)
		}
	}
	out, _, _ = runIn("receive", "--help")
	for _, want := range []string{"-dir", "-accept-from", "-once", "-max-size", "-json"} {
		if !strings.Contains(out, want) {
			t.Errorf("receive --help lacks %q", want)
		}
	}
	out, _, code := runIn("--help")
	if code != 0 || !strings.Contains(out, "completion") || !strings.Contains(out, "disco") {
		t.Errorf("jinglectl --help: %d %q", code, out)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"send"},
		{"send", "bob@example.org"},
		{"send", "--bogus", "a@b", "f"},
		{"receive", "extra"},
		{"disco"},
		{"disco", "a@b", "c@d"},
		{"cancel"},
		{"status", "extra"},
		{"completion"},
		{"completion", "tcsh"},
		{"send", "--transport", "x"},
		{"send", "--limit-rate", "fast", "a@b", "f"},
		{"receive", "--max-size", "-1"},
	} {
		_, errOut, code := runIn(args...)
		if code != exitUsage || errOut == "" {
			t.Errorf("%v: status %d, stderr %q", args, code, errOut)
		}
	}
}

// TestCompletion checks the scripts: bash parses them, they name every
// command and its flags, and the values of --transport.
func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		out, errOut, code := runIn("completion", shell)
		if code != 0 || errOut != "" {
			t.Fatalf("completion %s: %d %q", shell, code, errOut)
		}
		for _, c := range commands() {
			if !strings.Contains(out, c.name) {
				t.Errorf("%s script lacks command %s", shell, c.name)
			}
		}
		for _, f := range []string{"accept-from", "no-direct", "insecure-skip-verify", "password-file", "once", "max-size"} {
			if !strings.Contains(out, f) {
				t.Errorf("%s script lacks flag %s", shell, f)
			}
		}
		if !strings.Contains(out, "auto ibb s5b ice") {
			t.Errorf("%s script lacks the transport values", shell)
		}
		if path, err := exec.LookPath(shell); err == nil {
			f := filepath.Join(t.TempDir(), "c")
			os.WriteFile(f, []byte(out), 0o600)
			if out, err := exec.Command(path, "-n", f).CombinedOutput(); err != nil {
				t.Errorf("%s -n: %v\n%s", shell, err, out)
			}
		}
	}
	// bash: the function completes commands and flags.
	if _, err := exec.LookPath("bash"); err == nil {
		script, _, _ := runIn("completion", "bash")
		probe := script + `
COMP_WORDS=(jinglectl se); COMP_CWORD=1; _jinglectl; echo "${COMPREPLY[*]}"
COMP_WORDS=(jinglectl send --no-d); COMP_CWORD=2; _jinglectl; echo "${COMPREPLY[*]}"
COMP_WORDS=(jinglectl send --transport ""); COMP_CWORD=3; _jinglectl; echo "${COMPREPLY[*]}"
`
		out, err := exec.Command("bash", "-c", probe).CombinedOutput()
		want := "send\n--no-direct\nauto ibb s5b ice\n"
		if err != nil || string(out) != want {
			t.Errorf("bash completion: %v\n%q, want %q", err, out, want)
		}
	}
}

func TestOutcomeStatus(t *testing.T) {
	seen := map[int]string{}
	for _, o := range []string{agent.OutcomeOK, agent.OutcomeAuth, agent.OutcomeConnect, agent.OutcomeOffline, agent.OutcomeUnsupported,
		agent.OutcomeDeclined, agent.OutcomeTransport, agent.OutcomeHashMismatch, agent.OutcomeTimeout, agent.OutcomeCanceled} {
		s := outcomeStatus(o)
		if prev, dup := seen[s]; dup {
			t.Errorf("outcomes %s and %s share status %d", prev, o, s)
		}
		seen[s] = o
		if s == exitUsage || s == exitFailure || s == exitAgent {
			t.Errorf("outcome %s has the reserved status %d", o, s)
		}
	}
	if outcomeStatus(agent.OutcomeIO) != exitFailure || outcomeStatus("whatever") != exitFailure {
		t.Error("unknown outcomes must be 1")
	}
}

// TestConfigPrecedence: flags beat the environment, which beats the file.
func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	os.WriteFile(pwFile, []byte("from-file\n"), 0o600)
	cfgFile := filepath.Join(dir, "c.toml")
	os.WriteFile(cfgFile, []byte("jid = \"file@example.org\"\nserver = \"file:1\"\npassword_file = \"pw\"\n[transfer]\ntransport = \"ibb\"\nno_direct = true\n"), 0o600)
	for _, tc := range []struct {
		name      string
		env       map[string]string
		args      []string
		jid, srv  string
		pw, trans string
	}{
		{"file", nil, nil, "file@example.org", "file:1", "from-file", "ibb"},
		{"env", map[string]string{"JINGLECTL_JID": "env@example.org", "JINGLECTL_SERVER": "env:2", "JINGLECTL_PASSWORD": "from-env"}, nil, "env@example.org", "env:2", "from-env", "ibb"},
		{"env list", map[string]string{"JINGLECTL_SERVER": "env:2, env:3"}, nil, "file@example.org", "env:2,env:3", "from-file", "ibb"},
		{"repeated flag", nil, []string{"--server", "flag:3", "--server", "flag:4"}, "file@example.org", "flag:3,flag:4", "from-file", "ibb"},
		{"flags", map[string]string{"JINGLECTL_JID": "env@example.org", "JINGLECTL_PASSWORD": "from-env"},
			[]string{"--jid", "flag@example.org", "--server", "flag:3", "--password-file", pwFile, "--transport", "s5b"}, "flag@example.org", "flag:3", "from-file", "s5b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := env{lookupEnv: func(k string) string { return tc.env[k] }}
			fs := newTestFlagSet()
			a := addAccountFlags(fs)
			tf := addTransferFlags(fs, true)
			if err := fs.Parse(append([]string{"--config", cfgFile}, tc.args...)); err != nil {
				t.Fatal(err)
			}
			cfg, err := loadConfig(e, a, tf)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.JID != tc.jid || strings.Join(cfg.Servers, ",") != tc.srv || cfg.Password != tc.pw || cfg.Transport != tc.trans || !cfg.NoDirect {
				t.Errorf("got jid %q server %q password %q transport %q no_direct %v", cfg.JID, cfg.Servers, cfg.Password, cfg.Transport, cfg.NoDirect)
			}
		})
	}
}

func newTestFlagSet() *pflag.FlagSet {
	fs := newFlagSet("test")
	fs.SetOutput(io.Discard)
	return fs
}

func TestSafeText(t *testing.T) {
	for in, want := range map[string]string{
		"report.pdf":                  "report.pdf",
		"naïve résumé 日本.txt":         "naïve résumé 日本.txt",
		"evil\x1b[2J\x1b]0;pwned\x07": `evil\x1b[2J\x1b]0;pwned\x07`,
		"gpj.\u202eexe":               `gpj.\u202eexe`,
		"a\nb\rc\td":                  `a\x0ab\x0dc\x09d`,
		"bad\xffutf8":                 `bad\ufffdutf8`,
		"zero\u200bwidth":             `zero\u200bwidth`,
		"c1\u009bcontrol":             `c1\x9bcontrol`,
	} {
		if got := safeText(in); got != want {
			t.Errorf("safeText(%q) = %q, want %q", in, got, want)
		}
	}
	// The renderers never write an escape sequence from a peer.
	var out, errw bytes.Buffer
	r := &textRenderer{out: &out, errw: &errw, cmd: "receive", bars: map[string]*bar{}}
	r.event(agent.Event{Event: agent.EventDone, ID: "1", Direction: agent.Receive, File: "x\x1b[31m", Peer: "p@q/\x1b]0;t\x07", Size: 1})
	r.event(agent.Event{Event: agent.EventError, ID: "2", File: "y", Error: "reason \x1b[2J"})
	if strings.ContainsRune(out.String()+errw.String(), 0x1b) {
		t.Errorf("escape written: %q %q", out.String(), errw.String())
	}
}

// TestConnectTimeoutSetting (issue 13, D2): the transport deadline comes
// from --connect-timeout, else the file's transfer.connect_timeout, else
// 60s.
func TestConnectTimeoutSetting(t *testing.T) {
	dir := t.TempDir()
	withKey := filepath.Join(dir, "with.toml")
	os.WriteFile(withKey, []byte("[transfer]\nconnect_timeout = \"30s\"\n"), 0o600)
	without := filepath.Join(dir, "without.toml")
	os.WriteFile(without, []byte("[transfer]\ntransport = \"ibb\"\n"), 0o600)
	for _, tc := range []struct {
		args []string
		want time.Duration
	}{
		{[]string{"--config", without}, 60 * time.Second},
		{[]string{"--config", withKey}, 30 * time.Second},
		{[]string{"--config", withKey, "--connect-timeout", "5s"}, 5 * time.Second},
	} {
		fs := newTestFlagSet()
		a := addAccountFlags(fs)
		tf := addTransferFlags(fs, false)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		cfg, err := loadConfig(env{lookupEnv: func(string) string { return "" }}, a, tf)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.ConnectTimeout != tc.want {
			t.Errorf("%v: connect timeout %s, want %s", tc.args, cfg.ConnectTimeout, tc.want)
		}
	}
}
