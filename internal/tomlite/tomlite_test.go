package tomlite

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	in := "\uFEFF# jinglectl\n" +
		"jid = \"bob@example.org/agent\" # trailing comment\n" +
		"insecure_skip_verify = false\n" +
		"'quoted key' = 'C:\\path'\n" +
		"\n" +
		"[receive]\n" +
		"  accept_from = [ \"alice@example.org\", 'carol@example.org' ]\n" +
		"  empty = []\n" +
		"max = 1_000\n" +
		"neg = -5\n" +
		"ratio = 0.5\n" +
		"esc = \"a\\\"b\\\\c\\n\\u00e9\\U0001F600\"\n" +
		"[agent . \"sub\"]\n" +
		"x = true\n"
	doc, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Value{
		"jid":                  {Kind: String, Str: "bob@example.org/agent", Line: 2},
		"insecure_skip_verify": {Kind: Bool, Line: 3},
		"quoted key":           {Kind: String, Str: `C:\path`, Line: 4},
		"receive.accept_from":  {Kind: StringArray, Strings: []string{"alice@example.org", "carol@example.org"}, Line: 7},
		"receive.empty":        {Kind: StringArray, Strings: []string{}, Line: 8},
		"receive.max":          {Kind: Integer, Int: 1000, Line: 9},
		"receive.neg":          {Kind: Integer, Int: -5, Line: 10},
		"receive.ratio":        {Kind: Float, Float: 0.5, Line: 11},
		"receive.esc":          {Kind: String, Str: "a\"b\\c\né\U0001F600", Line: 12},
		"agent.sub.x":          {Kind: Bool, Bool: true, Line: 14},
	}
	if len(doc) != len(want) {
		t.Errorf("got %d keys, want %d: %v", len(doc), len(want), doc)
	}
	for k, w := range want {
		if g, ok := doc[k]; !ok || !reflect.DeepEqual(g, w) {
			t.Errorf("%s = %+v, want %+v", k, g, w)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		line     int
		msg      string
	}{
		{"unquoted string", "a = hello", 1, "strings must be quoted"},
		{"missing value", "a =", 1, "missing value"},
		{"missing equals", "a \"x\"", 1, "expected ="},
		{"dotted key", "a.b = 1", 1, "dotted keys"},
		{"duplicate key", "a = 1\na = 2", 2, "defined twice"},
		{"duplicate section", "[s]\n[s]", 2, "defined twice"},
		{"unterminated string", "a = \"abc", 1, "unterminated"},
		{"unterminated literal", "a = 'abc", 1, "unterminated"},
		{"bad escape", `a = "\q"`, 1, "invalid escape"},
		{"bad unicode", `a = "\uD800"`, 1, "invalid \\u"},
		{"short unicode", `a = "\u12"`, 1, "\\u"},
		{"control char", "a = \"x\x01y\"", 1, "control character"},
		{"inline table", "a = {b = 1}", 1, "inline tables"},
		{"table array", "[[a]]", 1, "arrays of tables"},
		{"multiline", "a = \"\"\"x", 1, "multi-line"},
		{"multiline array", "a = [\"x\",", 1, "unterminated array"},
		{"number array", "a = [1, 2]", 1, "only arrays of strings"},
		{"junk after value", "a = 1 2", 1, "after value"},
		{"junk after section", "[a] b", 1, "after section"},
		{"bad number", "a = 1__0", 1, "invalid value"},
		{"bad number 2", "a = 1.2.3", 1, "invalid number"},
		{"overflow", "a = 99999999999999999999", 1, "invalid number"},
		{"empty key", "= 1", 1, "expected a key"},
		{"invalid utf8", "a = \"\xff\"", 1, "UTF-8"},
		{"long line", "a = \"" + strings.Repeat("x", MaxLineBytes+10) + "\"", 1, "longer than"},
		{"array junk", "a = [\"x\" \"y\"]", 1, "expected , or ]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tc.in))
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if pe.Line != tc.line || !strings.Contains(pe.Msg, tc.msg) {
				t.Errorf("err = %v, want line %d containing %q", err, tc.line, tc.msg)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add("a = \"x\"\n[s]\nb = ['y', \"z\"]\nc = 1\nd = true\n")
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = Parse(strings.NewReader(s)) // must not panic
	})
}
