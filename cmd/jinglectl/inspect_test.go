package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/jinglekit/jinglekit/internal/stanzamodel"
	"github.com/jinglekit/jinglekit/internal/xmltest"
)

// minVectors0166 is the number of well-formed XEP-0166 examples in the
// manifest of 2026-06-30.
const minVectors0166 = 32

// TestInspectVectors runs inspect on every well-formed XEP-0166 example:
// the --xml output must have the file's infoset, --json must give one JSON
// document per stanza, and the default output both.
func TestInspectVectors(t *testing.T) {
	var wellFormed, checked int
	for _, v := range xmltest.Vectors(t, "xep-0166") {
		if !v.WellFormed {
			continue
		}
		wellFormed++
		t.Run(v.Name(), func(t *testing.T) {
			elements, err := xmltest.Elements(v.Data)
			if err != nil {
				t.Fatal(err)
			}

			var x bytes.Buffer
			if err := inspect(bytes.NewReader(v.Data), &x, formatXML); err != nil {
				t.Fatal(err)
			}
			ok := xmltest.AssertEqual(t, x.Bytes(), v.Data)

			var j bytes.Buffer
			if err := inspect(bytes.NewReader(v.Data), &j, formatJSON); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSuffix(j.String(), "\n"), "\n")
			if len(lines) != len(elements) {
				t.Errorf("--json printed %d lines for %d stanzas:\n%s", len(lines), len(elements), j.String())
			}
			for _, l := range lines {
				var m map[string]any
				if err := json.Unmarshal([]byte(l), &m); err != nil {
					t.Errorf("--json line %q: %v", l, err)
				}
				if _, ok := m["payload"]; !ok {
					t.Errorf("--json line without payload: %s", l)
				}
			}
			if strings.Contains(string(v.Data), "xmlns='urn:xmpp:jingle:1'") && !strings.Contains(j.String(), `"type":"jingle"`) {
				t.Errorf("--json shows no jingle model:\n%s", j.String())
			}

			var both bytes.Buffer
			if err := inspect(bytes.NewReader(v.Data), &both, formatBoth); err != nil {
				t.Fatal(err)
			}
			if xmlParts := sections(both.String(), "--- XML\n"); len(xmlParts) != len(elements) {
				t.Errorf("default output has %d XML sections for %d stanzas", len(xmlParts), len(elements))
			} else if !xmltest.AssertEqual(t, []byte(strings.Join(xmlParts, "\n")), v.Data) {
				ok = false
			}
			if n := strings.Count(both.String(), "--- model (JSON)\n{"); n != len(elements) {
				t.Errorf("default output has %d model sections for %d stanzas", n, len(elements))
			}
			if ok {
				checked++
			}
		})
	}
	if checked < wellFormed || checked < minVectors0166 {
		t.Errorf("inspect reproduced %d vectors; the manifest has %d well-formed, at least %d expected", checked, wellFormed, minVectors0166)
	}
}

// sections returns the text after each marker, up to the next "\n\n".
func sections(out, marker string) []string {
	var parts []string
	for {
		i := strings.Index(out, marker)
		if i < 0 {
			return parts
		}
		out = out[i+len(marker):]
		end := strings.Index(out, "\n\n")
		if end < 0 {
			end = len(out)
		}
		parts = append(parts, out[:end])
		out = out[end:]
	}
}

// TestInspectAllVectors checks inspect --xml against the well_formed column
// of every XEP's examples.
func TestInspectAllVectors(t *testing.T) {
	for _, v := range xmltest.AllVectors(t) {
		var out bytes.Buffer
		err := inspect(bytes.NewReader(v.Data), &out, formatXML)
		if !v.WellFormed {
			var serr *stanzamodel.SyntaxError
			if !errors.As(err, &serr) {
				t.Errorf("%s: not well-formed, but inspect error = %v", v.File, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", v.File, err)
			continue
		}
		if v.File == "xep-0293/ex05.xml" {
			// Text inside <jingle/> (a typo in the XEP) has no place in
			// jingle.Jingle; see internal/stanzamodel's knownLoss.
			continue
		}
		if ok, diff := xmltest.Equal(out.Bytes(), v.Data); !ok {
			t.Errorf("%s: %s", v.File, diff)
		}
	}
}

func TestInspectMalformed(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"mismatched", "<iq type='get'>\n  <query xmlns='urn:q'>\n  </iq>", "line 3, column 8: element <query> closed by </iq>"},
		{"unbound prefix", "<iq>\n\n<x:y/></iq>", `line 3, column 1: unbound namespace prefix "x" on <y>`},
		{"text", "R: <iq/>", "line 1, column 1: character data outside elements"},
		{"empty", "  \n", "no element in input"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := inspect(strings.NewReader(tc.in), &out, formatBoth)
			if err == nil || err.Error() != tc.want {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
	// Stanzas before the bad one are printed.
	var out bytes.Buffer
	err := inspect(strings.NewReader("<iq id='1'/>\n<iq id='2'>"), &out, formatXML)
	if err == nil || !strings.HasPrefix(err.Error(), "line 2") {
		t.Errorf("err = %v", err)
	}
	if got := out.String(); got != "<iq xmlns=\"jabber:client\" id=\"1\"/>\n" {
		t.Errorf("output before the error: %q", got)
	}
}

func TestInspectDefaultOutput(t *testing.T) {
	var out bytes.Buffer
	in := "<!-- c -->\n<iq type='result' id='a'/>\n<message><body>hi</body></message>"
	if err := inspect(strings.NewReader(in), &out, formatBoth); err != nil {
		t.Fatal(err)
	}
	want := `=== stanza 1: <iq> at line 2, column 1
--- model (JSON)
{
  "stanza": "iq",
  "ns": "jabber:client",
  "attrs": {
    "type": "result",
    "id": "a"
  },
  "payload": []
}
--- XML
<iq xmlns="jabber:client" type="result" id="a"/>

=== stanza 2: <message> at line 3, column 1
--- model (JSON)
{
  "stanza": "message",
  "ns": "jabber:client",
  "attrs": {},
  "payload": [
    {
      "type": "element",
      "name": "body",
      "ns": "jabber:client",
      "element": {
        "name": "body",
        "ns": "jabber:client",
        "text": "hi"
      }
    }
  ]
}
--- XML
<message xmlns="jabber:client">
  <body>hi</body>
</message>

`
	if out.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", out.String(), want)
	}
}

// TestRun checks the command line: dispatch, usage and exit statuses.
func TestRun(t *testing.T) {
	vector := filepath.Join(xmltest.SharedDir(t), "testdata", "xep", "xep-0166", "ex04.xml")
	bad := filepath.Join(t.TempDir(), "bad.xml")
	if err := os.WriteFile(bad, []byte("<iq>\n<jingle xmlns='urn:xmpp:jingle:1'>\n</iq>"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		args       []string
		stdin      string
		status     int
		stdout     string // a substring, or "" for nothing
		stderr     string
		noOutput   bool
		noErrorOut bool
	}{
		{name: "no command", status: 2, stderr: "Usage:", noOutput: true},
		{name: "help flag", args: []string{"--help"}, status: 0, stdout: "inspect", noErrorOut: true},
		{name: "h flag", args: []string{"-h"}, status: 0, stdout: "Usage:", noErrorOut: true},
		{name: "help command", args: []string{"help"}, status: 0, stdout: "version", noErrorOut: true},
		{name: "help inspect", args: []string{"help", "inspect"}, status: 0, stdout: "Usage: jinglectl inspect", noErrorOut: true},
		{name: "help unknown", args: []string{"help", "nope"}, status: 2, stderr: `unknown command "nope"`},
		{name: "flag without a command", args: []string{"--nope"}, status: 2, stderr: "jinglectl: --nope: no command given; see `jinglectl --help`\n"},
		{name: "unknown command", args: []string{"nope"}, status: 2, stderr: `jinglectl: unknown command "nope"`, noOutput: true},
		{name: "inspect help", args: []string{"inspect", "--help"}, status: 0, stdout: "Usage: jinglectl inspect [--xml | --json] [FILE]", noErrorOut: true},
		{name: "inspect bad flag", args: []string{"inspect", "--yaml"}, status: 2, stderr: "jinglectl: inspect: unknown flag: --yaml; see `jinglectl inspect --help`\n", noOutput: true},
		{name: "inspect both formats", args: []string{"inspect", "--xml", "--json"}, status: 2, stderr: "exclude each other", noOutput: true},
		{name: "inspect two files", args: []string{"inspect", vector, vector}, status: 2, stderr: "at most one FILE", noOutput: true},
		{name: "inspect missing file", args: []string{"inspect", filepath.Join(t.TempDir(), "missing.xml")}, status: 1, stderr: "missing.xml: no such file", noOutput: true},
		{name: "inspect file", args: []string{"inspect", "--xml", vector}, status: 0, stdout: `<jingle xmlns="urn:xmpp:jingle:1" action="session-initiate"`, noErrorOut: true},
		{name: "inspect stdin", args: []string{"inspect", "--json", "-"}, stdin: "<iq/>", status: 0, stdout: `{"stanza":"iq"`, noErrorOut: true},
		{name: "inspect malformed file", args: []string{"inspect", bad}, status: 1, stderr: "jinglectl: inspect: " + bad + ": line 3, column 6: element <jingle> closed by </iq>\n", noOutput: true},
		{name: "inspect malformed stdin", args: []string{"inspect"}, stdin: "<iq>\n<a>\n</iq>", status: 1, stderr: "jinglectl: inspect: line 3, column 6: element <a> closed by </iq>\n", noOutput: true},
		{name: "version", args: []string{"version"}, status: 0, stdout: "jinglectl ", noErrorOut: true},
		{name: "version help", args: []string{"version", "-help"}, status: 0, stdout: "Usage: jinglectl version", noErrorOut: true},
		{name: "version argument", args: []string{"version", "x"}, status: 2, stderr: "no arguments expected", noOutput: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			status := run(tc.args, env{stdin: strings.NewReader(tc.stdin), stdout: &stdout, stderr: &stderr})
			if status != tc.status {
				t.Errorf("status %d, want %d\nstdout: %s\nstderr: %s", status, tc.status, stdout.String(), stderr.String())
			}
			if tc.stdout != "" && !strings.Contains(stdout.String(), tc.stdout) {
				t.Errorf("stdout %q does not contain %q", stdout.String(), tc.stdout)
			}
			if tc.stderr != "" && !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stderr %q does not contain %q", stderr.String(), tc.stderr)
			}
			if tc.noOutput && stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing", stdout.String())
			}
			if tc.noErrorOut && stderr.Len() != 0 {
				t.Errorf("stderr %q, want nothing", stderr.String())
			}
		})
	}
}

// TestBinary builds jinglectl and runs it as a user would.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH")
	}
	bin := filepath.Join(t.TempDir(), "jinglectl")
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	vector := filepath.Join(xmltest.SharedDir(t), "testdata", "xep", "xep-0166", "ex04.xml")
	want, err := os.ReadFile(vector)
	if err != nil {
		t.Fatal(err)
	}

	runBin := func(stdin string, args ...string) (stdout, stderr string, status int) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Stdin = strings.NewReader(stdin)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		var exit *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &exit):
			status = exit.ExitCode()
		default:
			t.Fatalf("running %v: %v", args, err)
		}
		return o.String(), e.String(), status
	}

	out, errOut, status := runBin("", "inspect", "--xml", vector)
	if status != 0 || errOut != "" {
		t.Errorf("inspect --xml %s: status %d, stderr %q", vector, status, errOut)
	}
	xmltest.AssertEqual(t, []byte(out), want)

	out, errOut, status = runBin(string(want), "inspect", "--xml")
	if status != 0 || errOut != "" {
		t.Errorf("inspect --xml < %s: status %d, stderr %q", vector, status, errOut)
	}
	xmltest.AssertEqual(t, []byte(out), want)

	out, errOut, status = runBin("<iq type='set'>\n  <jingle xmlns='urn:xmpp:jingle:1'>\n</iq>\n", "inspect", "--xml")
	if status != 1 {
		t.Errorf("malformed input: status %d, want 1", status)
	}
	if !regexp.MustCompile(`^jinglectl: inspect: line 3, column \d+: element <jingle> closed by </iq>\n$`).MatchString(errOut) {
		t.Errorf("malformed input: stderr %q", errOut)
	}
	if out != "" {
		t.Errorf("malformed input: stdout %q", out)
	}

	for _, args := range [][]string{{"--help"}, {"inspect", "--help"}} {
		out, errOut, status = runBin("", args...)
		if status != 0 || !strings.Contains(out, "Usage:") || errOut != "" {
			t.Errorf("%v: status %d, stdout %q, stderr %q", args, status, out, errOut)
		}
	}

	if _, _, status = runBin("", "inspect", "--bogus"); status != 2 {
		t.Errorf("inspect --bogus: status %d, want 2", status)
	}

	out, _, status = runBin("", "version")
	if status != 0 || !strings.HasPrefix(out, "jinglectl ") || !strings.Contains(out, "module github.com/jinglekit/jinglekit") {
		t.Errorf("version: status %d, %q", status, out)
	}
}
