package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/jingle"
)

func TestAllowedJID(t *testing.T) {
	allow := []jid.JID{jid.MustParse("alice@example.org"), jid.MustParse("bob@example.org/phone")}
	for _, tc := range []struct {
		from string
		want bool
	}{
		{"alice@example.org/desk", true},
		{"alice@example.org", true},
		{"ALICE@example.org/x", true},
		{"bob@example.org/phone", true},
		{"bob@example.org/laptop", false},
		{"bob@example.org", false},
		{"mallory@example.org/alice@example.org", false},
		{"example.org", false},
		{"alice@example.org.evil/x", false},
	} {
		if got := allowedJID(allow, jid.MustParse(tc.from)); got != tc.want {
			t.Errorf("allowedJID(%s) = %v, want %v", tc.from, got, tc.want)
		}
	}
	if allowedJID(nil, jid.MustParse("alice@example.org/a")) {
		t.Error("an empty list allows")
	}
}

func TestReasonStatus(t *testing.T) {
	for _, tc := range []struct {
		r    *jingle.Reason
		want int
	}{
		{nil, exitOK},
		{&jingle.Reason{Condition: jingle.ReasonSuccess}, exitOK},
		{&jingle.Reason{Condition: jingle.ReasonDecline}, exitDeclined},
		{&jingle.Reason{Condition: jingle.ReasonBusy}, exitDeclined},
		{&jingle.Reason{Condition: jingle.ReasonTimeout}, exitTimeout},
		{&jingle.Reason{Condition: jingle.ReasonFailedTransport}, exitTransport},
		{&jingle.Reason{Condition: jingle.ReasonConnectivityError}, exitTransport},
		{&jingle.Reason{Condition: jingle.ReasonUnsupportedApplications}, exitUnsupported},
		{&jingle.Reason{Condition: jingle.ReasonCancel}, exitCanceled},
		{&jingle.Reason{Condition: jingle.ReasonGone}, exitOffline},
		{&jingle.Reason{Condition: jingle.ReasonSecurityError}, exitFailure},
		{&jingle.Reason{Condition: "made-up"}, exitFailure},
	} {
		if got := reasonStatus(tc.r); got != tc.want {
			t.Errorf("reasonStatus(%v) = %d, want %d", tc.r, got, tc.want)
		}
	}
}

// TestCallUsage: bad command lines are refused with status 2 before any
// connection is tried.
func TestCallUsage(t *testing.T) {
	dir := t.TempDir()
	notOgg := filepath.Join(dir, "x.ogg")
	if err := os.WriteFile(notOgg, []byte("not an ogg file"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	env0 := func(string) string { return "" }
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"call"}, "want one JID"},
		{[]string{"call", "a@b", "c@d"}, "want one JID"},
		{[]string{"call", "example.org"}, "invalid JID"},
		{[]string{"call", "@@"}, "invalid JID"},
		{[]string{"call", "--seconds", "-1", "a@b"}, "--seconds"},
		{[]string{"call", "--audio", filepath.Join(dir, "missing.ogg"), "a@b"}, "missing.ogg"},
		{[]string{"call", "--audio", notOgg, "a@b"}, "x.ogg"},
		{[]string{"call", "--video", notOgg, "a@b"}, "x.ogg"},
		{[]string{"call", "--record", file, "a@b"}, "not a directory"},
		{[]string{"call", "--record", filepath.Join(dir, "nodir"), "a@b"}, "nodir"},
		{[]string{"call", "a@b"}, "JID"}, // no account
		{[]string{"answer"}, "JID"},      // no account; --accept-from defaults to the roster
		{[]string{"answer", "x"}, "no arguments"},
		{[]string{"answer", "--accept-from", ""}, "not a valid JID"},
		{[]string{"answer", "--accept-from", "a@b", "--record", file}, "not a directory"},
		{[]string{"answer", "--accept-from", "a@b"}, "JID"}, // no account
	} {
		var stdout, stderr bytes.Buffer
		code := run(tc.args, env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, lookupEnv: env0})
		if code != exitUsage || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("jinglectl %q: exit %d, stderr %q; want exit 2 mentioning %q", tc.args, code, stderr.String(), tc.want)
		}
	}
	for _, cmd := range []string{"call", "answer"} {
		var stdout, stderr bytes.Buffer
		if code := run([]string{cmd, "--help"}, env{stdout: &stdout, stderr: &stderr, lookupEnv: env0}); code != exitOK || !strings.Contains(stdout.String(), "Usage: jinglectl "+cmd) {
			t.Errorf("%s --help: exit %d, stdout %q", cmd, code, stdout.String())
		}
	}
}
