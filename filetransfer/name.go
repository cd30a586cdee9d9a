package filetransfer

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// DefaultName is the local name of a file whose offered name leaves nothing
// usable once sanitized.
const DefaultName = "received-file"

// nameReserve is the room kept under the name length limit for what this
// package appends: " (999)" before the extension and ".part" (".part.meta"
// as older versions did).
const nameReserve = len(" (999)") + len(partSuffix) + len(metaSuffix)

// maxExtBytes bounds what counts as an extension worth keeping when a long
// name is shortened.
const maxExtBytes = 16

// SanitizeName turns a name offered by a peer — untrusted — into a file name
// that is safe to create inside a directory on a POSIX system:
//
//   - invalid UTF-8 is replaced and the name is NFC-normalised;
//   - only the last path element is kept, with both '/' and '\' taken as
//     separators (so "../../x", "/etc/passwd" and "a\b" become "x",
//     "passwd" and "b");
//   - control characters (NUL included) become '_', and invisible format
//     characters (bidirectional overrides, zero-width joiners…) and line or
//     paragraph separators are removed;
//   - leading dots and spaces are removed (no hidden files, no "." or ".."),
//     trailing spaces and dots too, and a leading '-' becomes '_' so the
//     name is never read as a command-line option;
//   - the name is cut to maxBytes bytes (at a character boundary), keeping
//     its extension when it has a short one;
//   - what remains empty becomes DefaultName.
//
// maxBytes <= 0 means 255, the usual file-system limit.
func SanitizeName(name string, maxBytes int) string {
	if maxBytes <= 0 {
		maxBytes = 255
	}
	s := strings.ToValidUTF8(name, "_")
	s = norm.NFC.String(s)
	if i := strings.LastIndexAny(s, `/\`); i >= 0 {
		s = s[i+1:]
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == utf8.RuneError:
			b.WriteRune('_')
		case unicode.IsControl(r):
			b.WriteRune('_')
		case unicode.Is(unicode.Cf, r), unicode.Is(unicode.Zl, r), unicode.Is(unicode.Zp, r):
			// invisible: drop
		case r == '/' || r == '\\':
			b.WriteRune('_')
		default:
			b.WriteRune(r)
		}
	}
	s = b.String()
	s = strings.TrimLeftFunc(s, func(r rune) bool { return r == '.' || unicode.IsSpace(r) })
	s = strings.TrimRightFunc(s, func(r rune) bool { return r == '.' || unicode.IsSpace(r) })
	if strings.HasPrefix(s, "-") {
		s = "_" + s[1:]
	}
	s = truncateName(s, maxBytes)
	if s == "" {
		return DefaultName
	}
	return s
}

// truncateName cuts s to at most max bytes, keeping a short extension.
func truncateName(s string, max int) string {
	if len(s) <= max {
		return s
	}
	base, ext := splitExt(s)
	if len(ext) > maxExtBytes || len(ext) >= max {
		base, ext = s, ""
	}
	base = cutUTF8(base, max-len(ext))
	base = strings.TrimRightFunc(base, func(r rune) bool { return r == '.' || unicode.IsSpace(r) })
	if base == "" {
		return cutUTF8(s, max)
	}
	return base + ext
}

// cutUTF8 returns the longest prefix of s of at most n bytes that ends at a
// character boundary.
func cutUTF8(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// splitExt splits "name.ext" into "name" and ".ext"; a name without a dot
// (or only a leading one) has no extension.
func splitExt(s string) (base, ext string) {
	i := strings.LastIndexByte(s, '.')
	if i <= 0 {
		return s, ""
	}
	return s[:i], s[i:]
}
