package agent

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// The configuration file is TOML, read with pelletier/go-toml/v2: its
// decoder checks the whole document (duplicate keys, redefined tables and
// every other TOML rule) and reports errors with their line; its parser
// (package unstable) gives the line of each key, which the checks of the
// settings below need for their own errors. BurntSushi/toml keeps key
// positions private.

// maxConfigBytes bounds the configuration file.
const maxConfigBytes = 1 << 20

// valueKind is the TOML type of a setting's value.
type valueKind int

const (
	kindString valueKind = iota + 1
	kindInteger
	kindFloat
	kindBool
	kindStringArray
	kindOther
)

func (k valueKind) String() string {
	switch k {
	case kindString:
		return "string"
	case kindInteger:
		return "integer"
	case kindFloat:
		return "float"
	case kindBool:
		return "boolean"
	case kindStringArray:
		return "array of strings"
	}
	return "other value"
}

// value is one setting of the file.
type value struct {
	Kind    valueKind
	Str     string
	Int     int64
	Float   float64
	Bool    bool
	Strings []string
	// Line is the line the key is defined on (1-based).
	Line int
}

// document maps "section.key" (or "key" at the top level) to its value.
type document map[string]value

// tomlError is an error of the file at a line.
type tomlError struct {
	Line int
	Msg  string
}

func (e *tomlError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// parseTOML reads a configuration file.
func parseTOML(r io.Reader) (document, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxConfigBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxConfigBytes {
		return nil, fmt.Errorf("larger than %d bytes", maxConfigBytes)
	}
	var tree map[string]any
	if err := toml.Unmarshal(data, &tree); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			line, _ := de.Position()
			return nil, &tomlError{Line: line, Msg: decodeMessage(de, data, line)}
		}
		return nil, err
	}
	lines := keyLines(data)
	doc := document{}
	flatten("", tree, func(key string, v any) {
		val := toValue(v)
		// A key inside an inline table has the line of the table's key.
		// The empty key ('' = …) is a key too.
		for k := key; val.Line == 0; {
			val.Line = lines[k]
			i := strings.LastIndexByte(k, '.')
			if i < 0 {
				break
			}
			k = k[:i]
		}
		doc[key] = val
	})
	return doc, nil
}

// decodeMessage is go-toml's message, or a plainer one for the mistake
// people make most: a string without quotes.
func decodeMessage(de *toml.DecodeError, data []byte, line int) string {
	text := strings.Split(string(data), "\n")
	if line >= 1 && line <= len(text) {
		if _, v, ok := strings.Cut(text[line-1], "="); ok {
			v = strings.TrimSpace(v)
			if v != "" && isBare(v) {
				return fmt.Sprintf("invalid value %q (strings must be quoted)", v)
			}
		}
	}
	return de.Error()
}

// isBare reports whether v looks like a bare word (not a number, boolean,
// date, string, array or table).
func isBare(v string) bool {
	c := v[0]
	if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
		return false
	}
	return v != "true" && v != "false" && v != "inf" && v != "nan"
}

// flatten calls f with the dotted key of every value of tree that is not
// a table.
func flatten(prefix string, tree map[string]any, f func(string, any)) {
	for k, v := range tree {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		if sub, ok := v.(map[string]any); ok {
			flatten(key, sub, f)
			continue
		}
		f(key, v)
	}
}

// toValue types a decoded value.
func toValue(v any) value {
	switch v := v.(type) {
	case string:
		return value{Kind: kindString, Str: v}
	case int64:
		return value{Kind: kindInteger, Int: v}
	case float64:
		return value{Kind: kindFloat, Float: v}
	case bool:
		return value{Kind: kindBool, Bool: v}
	case []any:
		out := value{Kind: kindStringArray, Strings: []string{}}
		for _, x := range v {
			s, ok := x.(string)
			if !ok {
				return value{Kind: kindOther}
			}
			out.Strings = append(out.Strings, s)
		}
		return out
	case time.Time, toml.LocalDate, toml.LocalDateTime, toml.LocalTime:
		return value{Kind: kindOther}
	}
	return value{Kind: kindOther}
}

// keyLines returns the line of each key defined in data (a document the
// decoder accepted), as "section.key".
func keyLines(data []byte) map[string]int {
	out := map[string]int{}
	var p unstable.Parser
	p.Reset(data)
	var table []string
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = table[:0]
			line := 0
			for it := e.Key(); it.Next(); {
				n := it.Node()
				table = append(table, string(n.Data))
				if line == 0 {
					line = p.Shape(n.Raw).Start.Line
				}
			}
			// An array of tables ([[x]]) is a value of its own, at the
			// line of its first header.
			if k := strings.Join(table, "."); out[k] == 0 {
				out[k] = line
			}
		case unstable.KeyValue:
			parts := append([]string(nil), table...)
			line := 0
			for it := e.Key(); it.Next(); {
				n := it.Node()
				parts = append(parts, string(n.Data))
				if line == 0 {
					line = p.Shape(n.Raw).Start.Line
				}
			}
			out[strings.Join(parts, ".")] = line
		}
	}
	return out
}
