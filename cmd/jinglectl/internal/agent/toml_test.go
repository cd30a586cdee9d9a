package agent

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestParseTOML: values are typed and carry the line of their key, with
// sections, quoted and dotted keys; TOML errors carry their line.
func TestParseTOML(t *testing.T) {
	doc, err := parseTOML(strings.NewReader("# c\njid = \"a@b\"\n\n[agent]\nconcurrency = 3\n\"quoted key\" = 'x'\n[receive]\naccept_from = [\"a\", \"b\"]\nx.y = true\nmixed = [\"a\", 1]\n[[list]]\nk = 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]value{
		"jid":                 {Kind: kindString, Str: "a@b", Line: 2},
		"agent.concurrency":   {Kind: kindInteger, Int: 3, Line: 5},
		"agent.quoted key":    {Kind: kindString, Str: "x", Line: 6},
		"receive.accept_from": {Kind: kindStringArray, Strings: []string{"a", "b"}, Line: 8},
		"receive.x.y":         {Kind: kindBool, Bool: true, Line: 9},
		"receive.mixed":       {Kind: kindOther, Line: 10},
		"list":                {Kind: kindOther, Line: 11}, // an array of tables: its header's line
	} {
		got, ok := doc[key]
		if !ok || got.Kind != want.Kind || got.Str != want.Str || got.Int != want.Int || got.Bool != want.Bool ||
			!slices.Equal(got.Strings, want.Strings) || got.Line != want.Line {
			t.Errorf("%s = %+v, want %+v", key, got, want)
		}
	}
	for _, tc := range []struct {
		in   string
		line int
		msg  string
	}{
		{"a = 1\na = 2\n", 2, "already defined"},
		{"[x]\ntransport = s5b\n", 2, `invalid value "s5b" (strings must be quoted)`},
		{"a = \"unterminated\n", 1, ""},
		{"ok = 1\n[bad\n", 2, ""},
	} {
		_, err := parseTOML(strings.NewReader(tc.in))
		var te *tomlError
		if !errors.As(err, &te) || te.Line != tc.line || !strings.Contains(te.Msg, tc.msg) {
			t.Errorf("%q: err = %v, want line %d containing %q", tc.in, err, tc.line, tc.msg)
		}
	}
	if _, err := parseTOML(strings.NewReader(strings.Repeat("#", maxConfigBytes+1))); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized file: %v", err)
	}
}

// FuzzParseTOML: no input makes parseTOML panic, and every value of a
// document it accepts has a line.
func FuzzParseTOML(f *testing.F) {
	for _, s := range []string{"jid = \"a@b\"\n[agent]\nconcurrency = 3\n", "a = {b = {c = 1}}\n", "[x.y]\n'q' = [\"a\"]\n", "a.b.c = 1\n[d]\ne.f = true"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		doc, err := parseTOML(strings.NewReader(in))
		if err != nil {
			return
		}
		for k, v := range doc {
			if v.Line < 1 {
				t.Errorf("%q: key %q without a line", in, k)
			}
		}
	})
}
