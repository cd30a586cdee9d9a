package filetransfer

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSanitizeName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"report.pdf", "report.pdf"},
		{"../../x", "x"},
		{"/etc/passwd", "passwd"},
		{".bashrc", "bashrc"},
		{"a\x00b", "a_b"},
		{"a\x00", "a_"},
		{"..", DefaultName},
		{"...", DefaultName},
		{"/", DefaultName},
		{`\`, DefaultName},
		{"a/", DefaultName},
		{`C:\Users\x\evil.exe`, "evil.exe"},
		{"a\xffb", "a_b"},
		{"line\nbreak", "line_break"},
		{"\u202eexe.txt", "exe.txt"},
		{"zero\u200bwidth", "zerowidth"},
		{"para\u2029sep", "parasep"},
		{"--help", "_-help"},
		{"trailing. . .", "trailing"},
		{"e\u0301", "\u00e9"},
		{"CON", "CON"},
		{"nul", "nul"},
	} {
		if got := SanitizeName(tc.in, 0); got != tc.want {
			t.Errorf("SanitizeName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSanitizeNameLength(t *testing.T) {
	for _, tc := range []struct {
		in      string
		max     int
		wantExt string
	}{
		{strings.Repeat("a", 10000), 255, ""},
		{strings.Repeat("a", 10000) + ".tar.gz", 255, ".gz"},
		{strings.Repeat("é", 5000) + ".jpg", 100, ".jpg"},
		{strings.Repeat("é", 5000), 101, ""},
		{"x." + strings.Repeat("e", 300), 255, ""},
		{strings.Repeat("a", 300) + ".txt", 3, ""},
	} {
		got := SanitizeName(tc.in, tc.max)
		if len(got) > tc.max || !utf8.ValidString(got) || got == "" {
			t.Errorf("%d bytes cut to %d: %d bytes, valid %v", len(tc.in), tc.max, len(got), utf8.ValidString(got))
		}
		if tc.wantExt != "" && !strings.HasSuffix(got, tc.wantExt) {
			t.Errorf("%q…: extension lost: %q", tc.in[:10], got[len(got)-10:])
		}
	}
}

// FuzzSanitizeName: whatever comes in, the result is one plain, visible,
// bounded path element.
func FuzzSanitizeName(f *testing.F) {
	for _, s := range []string{"../../x", "/etc/passwd", ".bashrc", "a\x00b", "..", "\u202e", strings.Repeat("x", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := SanitizeName(in, 0)
		switch {
		case got == "" || got == "." || got == "..":
			t.Fatalf("%q -> %q", in, got)
		case strings.ContainsAny(got, "/\\\x00"), strings.HasPrefix(got, "."), strings.HasPrefix(got, "-"):
			t.Fatalf("%q -> %q", in, got)
		case len(got) > 255 || !utf8.ValidString(got):
			t.Fatalf("%q -> %q", in, got)
		}
		for _, r := range got {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("%q -> %q has a control character", in, got)
			}
		}
	})
}
