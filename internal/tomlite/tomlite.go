// Package tomlite parses the small subset of TOML that jinglectl's
// configuration file uses.
//
// Supported: comments (#), blank lines, [section] and [section.sub]
// headers, and key = value lines whose value is a basic string ("…" with
// the escapes \" \\ \n \t \r \b \f \uXXXX \UXXXXXXXX), a literal string
// ('…'), an integer (decimal, optional sign and _ separators), a float, a
// boolean (true/false) or a single-line array of strings. Bare keys are
// A-Z a-z 0-9 _ -; quoted keys are accepted too. Not supported: multi-line
// strings and arrays, inline tables, arrays of tables, dotted keys on the
// left-hand side, dates. Anything not supported is an error with its line
// number, never silently ignored; a key defined twice in a section is an
// error as in TOML.
//
// The result maps "section.key" (or "key" for the top level) to a Value.
package tomlite

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Kind is the type of a Value.
type Kind int

// Kinds of values.
const (
	String Kind = iota + 1
	Integer
	Float
	Bool
	StringArray
)

func (k Kind) String() string {
	switch k {
	case String:
		return "string"
	case Integer:
		return "integer"
	case Float:
		return "float"
	case Bool:
		return "boolean"
	case StringArray:
		return "array of strings"
	}
	return "unknown"
}

// Value is one parsed value.
type Value struct {
	Kind    Kind
	Str     string
	Int     int64
	Float   float64
	Bool    bool
	Strings []string
	// Line is the line the key was defined on (1-based).
	Line int
}

// Document is a parsed file: "section.key" → value.
type Document map[string]Value

// MaxLineBytes bounds the length of one line.
const MaxLineBytes = 64 << 10

// Error is a syntax error at a line.
type Error struct {
	Line int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// Parse reads a document.
func Parse(r io.Reader) (Document, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), MaxLineBytes)
	doc := Document{}
	section := ""
	sections := map[string]bool{}
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if line == 1 {
			text = strings.TrimPrefix(text, "\uFEFF")
		}
		if !utf8.ValidString(text) {
			return nil, &Error{line, "invalid UTF-8"}
		}
		p := &parser{s: text, line: line}
		p.skipSpace()
		if p.eol() {
			continue
		}
		if p.peek() == '[' {
			p.pos++
			if p.peek() == '[' {
				return nil, &Error{line, "arrays of tables ([[…]]) are not supported"}
			}
			name, err := p.dottedKey(']')
			if err != nil {
				return nil, err
			}
			p.pos++ // ]
			if !p.restIsEmpty() {
				return nil, &Error{line, "unexpected text after section header"}
			}
			if sections[name] {
				return nil, &Error{line, fmt.Sprintf("section [%s] defined twice", name)}
			}
			sections[name] = true
			section = name
			continue
		}
		key, err := p.key()
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.peek() == '.' {
			return nil, &Error{line, "dotted keys are not supported: use a [section]"}
		}
		if p.peek() != '=' {
			return nil, &Error{line, fmt.Sprintf("expected = after key %q", key)}
		}
		p.pos++
		p.skipSpace()
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		if !p.restIsEmpty() {
			return nil, &Error{line, "unexpected text after value"}
		}
		v.Line = line
		full := key
		if section != "" {
			full = section + "." + key
		}
		if _, dup := doc[full]; dup {
			return nil, &Error{line, fmt.Sprintf("key %q defined twice", full)}
		}
		doc[full] = v
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &Error{line + 1, fmt.Sprintf("line longer than %d bytes", MaxLineBytes)}
		}
		return nil, err
	}
	return doc, nil
}

type parser struct {
	s    string
	pos  int
	line int
}

func (p *parser) errf(format string, args ...any) error {
	return &Error{p.line, fmt.Sprintf(format, args...)}
}

func (p *parser) eol() bool { return p.pos >= len(p.s) || p.s[p.pos] == '#' }

func (p *parser) peek() byte {
	if p.pos >= len(p.s) {
		return 0
	}
	return p.s[p.pos]
}

func (p *parser) skipSpace() {
	for p.pos < len(p.s) && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t') {
		p.pos++
	}
}

func (p *parser) restIsEmpty() bool {
	p.skipSpace()
	return p.eol()
}

func isBare(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// key reads a bare or quoted key.
func (p *parser) key() (string, error) {
	switch p.peek() {
	case '"':
		return p.basicString()
	case '\'':
		return p.literalString()
	}
	start := p.pos
	for p.pos < len(p.s) && isBare(p.s[p.pos]) {
		p.pos++
	}
	if p.pos == start {
		return "", p.errf("expected a key, found %q", p.rest())
	}
	return p.s[start:p.pos], nil
}

// dottedKey reads a section name up to end (not consumed).
func (p *parser) dottedKey(end byte) (string, error) {
	var parts []string
	for {
		p.skipSpace()
		k, err := p.key()
		if err != nil {
			return "", err
		}
		parts = append(parts, k)
		p.skipSpace()
		switch p.peek() {
		case '.':
			p.pos++
			continue
		case end:
			return strings.Join(parts, "."), nil
		}
		return "", p.errf("malformed section header")
	}
}

func (p *parser) rest() string {
	r := p.s[p.pos:]
	if len(r) > 20 {
		r = r[:20] + "…"
	}
	return r
}

func (p *parser) value() (Value, error) {
	switch c := p.peek(); {
	case c == '"':
		if strings.HasPrefix(p.s[p.pos:], `"""`) {
			return Value{}, p.errf("multi-line strings are not supported")
		}
		s, err := p.basicString()
		return Value{Kind: String, Str: s}, err
	case c == '\'':
		if strings.HasPrefix(p.s[p.pos:], `'''`) {
			return Value{}, p.errf("multi-line strings are not supported")
		}
		s, err := p.literalString()
		return Value{Kind: String, Str: s}, err
	case c == '[':
		return p.array()
	case c == '{':
		return Value{}, p.errf("inline tables are not supported")
	case c == 0 || c == '#':
		return Value{}, p.errf("missing value")
	}
	start := p.pos
	for p.pos < len(p.s) && p.s[p.pos] != ' ' && p.s[p.pos] != '\t' && p.s[p.pos] != '#' && p.s[p.pos] != ',' && p.s[p.pos] != ']' {
		p.pos++
	}
	tok := p.s[start:p.pos]
	switch tok {
	case "true":
		return Value{Kind: Bool, Bool: true}, nil
	case "false":
		return Value{Kind: Bool, Bool: false}, nil
	}
	if !validNumber(tok) {
		return Value{}, p.errf("invalid value %q (strings must be quoted)", tok)
	}
	clean := strings.ReplaceAll(tok, "_", "")
	if i, err := strconv.ParseInt(clean, 10, 64); err == nil {
		return Value{Kind: Integer, Int: i}, nil
	}
	if strings.ContainsAny(clean, ".eE") {
		if f, err := strconv.ParseFloat(clean, 64); err == nil {
			return Value{Kind: Float, Float: f}, nil
		}
	}
	return Value{}, p.errf("invalid number %q", tok)
}

// validNumber accepts digits, sign, '.', 'e', and '_' only between digits.
func validNumber(tok string) bool {
	if tok == "" {
		return false
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		switch {
		case c >= '0' && c <= '9', c == '+', c == '-', c == '.', c == 'e', c == 'E':
		case c == '_':
			if i == 0 || i == len(tok)-1 || !isDigit(tok[i-1]) || !isDigit(tok[i+1]) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func (p *parser) array() (Value, error) {
	p.pos++ // [
	v := Value{Kind: StringArray, Strings: []string{}}
	for {
		p.skipSpace()
		switch p.peek() {
		case ']':
			p.pos++
			return v, nil
		case 0, '#':
			return Value{}, p.errf("unterminated array (multi-line arrays are not supported)")
		}
		var s string
		var err error
		switch p.peek() {
		case '"':
			s, err = p.basicString()
		case '\'':
			s, err = p.literalString()
		default:
			return Value{}, p.errf("only arrays of strings are supported")
		}
		if err != nil {
			return Value{}, err
		}
		v.Strings = append(v.Strings, s)
		p.skipSpace()
		switch p.peek() {
		case ',':
			p.pos++
		case ']':
		default:
			return Value{}, p.errf("expected , or ] in array")
		}
	}
}

func (p *parser) literalString() (string, error) {
	p.pos++
	end := strings.IndexByte(p.s[p.pos:], '\'')
	if end < 0 {
		return "", p.errf("unterminated string")
	}
	s := p.s[p.pos : p.pos+end]
	p.pos += end + 1
	if strings.ContainsFunc(s, isControl) {
		return "", p.errf("control character in string")
	}
	return s, nil
}

func isControl(r rune) bool { return (r < 0x20 && r != '\t') || r == 0x7f }

func (p *parser) basicString() (string, error) {
	p.pos++
	var b strings.Builder
	for {
		if p.pos >= len(p.s) {
			return "", p.errf("unterminated string")
		}
		c := p.s[p.pos]
		switch {
		case c == '"':
			p.pos++
			return b.String(), nil
		case c == '\\':
			p.pos++
			if p.pos >= len(p.s) {
				return "", p.errf("unterminated string")
			}
			e := p.s[p.pos]
			p.pos++
			switch e {
			case '"', '\\':
				b.WriteByte(e)
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'u', 'U':
				n := 4
				if e == 'U' {
					n = 8
				}
				if p.pos+n > len(p.s) {
					return "", p.errf("short \\%c escape", e)
				}
				cp, err := strconv.ParseUint(p.s[p.pos:p.pos+n], 16, 32)
				if err != nil || !utf8.ValidRune(rune(cp)) {
					return "", p.errf("invalid \\%c escape", e)
				}
				b.WriteRune(rune(cp))
				p.pos += n
			default:
				return "", p.errf("invalid escape \\%c", e)
			}
		case isControl(rune(c)):
			return "", p.errf("control character in string")
		default:
			b.WriteByte(c)
			p.pos++
		}
	}
}
