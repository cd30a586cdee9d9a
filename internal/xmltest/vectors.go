package xmltest

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jinglekit/jinglekit/internal/xmlscope"
)

// ModulePath is the path of the module whose root SharedDir looks for.
const ModulePath = "github.com/jinglekit/jinglekit"

// Vector is one row of the vectors' MANIFEST.tsv with the file's content.
type Vector struct {
	XEP        string // "xep-0166"
	File       string // path relative to testdata/xep, e.g. "xep-0166/ex04.xml"
	Caption    string // the example's caption in the XEP
	WellFormed bool   // the well_formed column is "yes"
	TopElement string // "iq", "message", "presence" or "other"
	Note       string // fragments, several top-level elements, typos…
	Path       string // absolute path of the file
	Data       []byte // the file's content
}

// Name returns the file's base name without extension ("ex04"), for use as
// a subtest name.
func (v Vector) Name() string {
	base := filepath.Base(v.File)
	return strings.TrimSuffix(base, filepath.Ext(base))
}

// SharedDir returns the shared/ directory that sits next to the repository:
// it walks up from the current directory to the module root (the directory
// whose go.mod declares ModulePath) and returns its sibling ../shared. It
// fails t if there is no module root or no shared/testdata/xep there.
func SharedDir(t testing.TB) string {
	t.Helper()
	dir, err := sharedDir()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func sharedDir() (string, error) {
	return SharedPath()
}

// SharedPath returns the shared/ directory next to the repository, like
// SharedDir, or the error that SharedDir fails its test with.
func SharedPath() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("xmltest: %w", err)
	}
	root, err := moduleRoot(wd)
	if err != nil {
		return "", err
	}
	shared := filepath.Join(filepath.Dir(root), "shared")
	xep := filepath.Join(shared, "testdata", "xep")
	if fi, err := os.Stat(xep); err != nil || !fi.IsDir() {
		if err == nil {
			err = errors.New("not a directory")
		}
		return "", fmt.Errorf("../shared/testdata/xep not found next to the repository: %s: %w", xep, err)
	}
	return shared, nil
}

// moduleRoot walks up from dir to the directory whose go.mod declares
// ModulePath.
func moduleRoot(dir string) (string, error) {
	for d := dir; ; {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && modulePath(b) == ModulePath {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("../shared/testdata/xep not found next to the repository: no go.mod of module %s in %s or above it", ModulePath, dir)
		}
		d = parent
	}
}

// modulePath returns the path on the module line of a go.mod file.
func modulePath(gomod []byte) string {
	for _, line := range strings.Split(string(gomod), "\n") {
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, "module"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
			rest, _, _ = strings.Cut(rest, "//")
			return strings.Trim(strings.TrimSpace(rest), `"`+"`")
		}
	}
	return ""
}

// Vectors returns the rows of MANIFEST.tsv for one XEP ("xep-0166"; "0166"
// and "166" work too), in manifest order, each with its file's content. It
// fails t if the manifest or a file cannot be read, if a row is malformed or
// if the XEP has no rows.
func Vectors(t testing.TB, xep string) []Vector {
	t.Helper()
	dir := filepath.Join(SharedDir(t), "testdata", "xep")
	vs, err := readManifest(dir, normXEP(xep))
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) == 0 {
		t.Fatalf("xmltest: no vectors for %s in %s", normXEP(xep), filepath.Join(dir, "MANIFEST.tsv"))
	}
	return vs
}

// AllVectors returns every row of MANIFEST.tsv, in manifest order, each
// with its file's content.
func AllVectors(t testing.TB) []Vector {
	t.Helper()
	dir := filepath.Join(SharedDir(t), "testdata", "xep")
	vs, err := readManifest(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) == 0 {
		t.Fatalf("xmltest: no vectors in %s", filepath.Join(dir, "MANIFEST.tsv"))
	}
	return vs
}

func normXEP(xep string) string {
	n := strings.TrimPrefix(strings.ToLower(xep), "xep-")
	for len(n) < 4 {
		n = "0" + n
	}
	return "xep-" + n
}

// readManifest reads the rows of one XEP, or all rows if xep is "".
func readManifest(dir, xep string) ([]Vector, error) {
	manifest := filepath.Join(dir, "MANIFEST.tsv")
	f, err := os.Open(manifest)
	if err != nil {
		return nil, fmt.Errorf("xmltest: %w", err)
	}
	defer f.Close()
	var out []Vector
	sc := bufio.NewScanner(f)
	header := true
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimRight(sc.Text(), "\r")
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		cols := strings.Split(text, "\t")
		if header {
			header = false
			if len(cols) < 5 || cols[0] != "xep" || cols[1] != "file" {
				return nil, fmt.Errorf("xmltest: %s:%d: expected the header row, got %q", manifest, line, text)
			}
			continue
		}
		if len(cols) < 5 || len(cols) > 6 {
			return nil, fmt.Errorf("xmltest: %s:%d: %d columns, want 6", manifest, line, len(cols))
		}
		if xep != "" && cols[0] != xep {
			continue
		}
		v := Vector{
			XEP:        cols[0],
			File:       cols[1],
			Caption:    cols[2],
			TopElement: cols[4],
			Path:       filepath.Join(dir, filepath.FromSlash(cols[1])),
		}
		switch cols[3] {
		case "yes":
			v.WellFormed = true
		case "no":
		default:
			return nil, fmt.Errorf("xmltest: %s:%d: well_formed is %q, want yes or no", manifest, line, cols[3])
		}
		if len(cols) == 6 {
			v.Note = cols[5]
		}
		v.Data, err = os.ReadFile(v.Path)
		if err != nil {
			return nil, fmt.Errorf("xmltest: %s:%d: %w", manifest, line, err)
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("xmltest: reading %s: %w", manifest, err)
	}
	return out, nil
}

// Elements splits data into its top-level elements, read as if wrapped in
// <wrapper xmlns='jabber:client'>. Each comes back as its own text from
// data, made standalone by adding to its start tag the namespace
// declarations it relied on (so an unprefixed <iq> gets
// xmlns='jabber:client'). Comments and white space between elements are
// dropped.
func Elements(data []byte) ([][]byte, error) {
	return find(data, func(depth int, _ xml.Name) bool { return depth == 0 })
}

// FindAll returns every element named name in data (read as Elements reads
// it), outermost first, each as standalone XML like Elements returns. An
// element inside another match is not returned separately.
func FindAll(data []byte, name xml.Name) ([][]byte, error) {
	return find(data, func(_ int, n xml.Name) bool { return n == name })
}

// decl is one namespace declaration in scope.
type decl struct {
	prefix string // "" for the default namespace
	uri    string
}

func find(data []byte, match func(depth int, name xml.Name) bool) ([][]byte, error) {
	// DefaultSpace reads data as if wrapped in
	// <wrapper xmlns='jabber:client'>, and keeps offsets and positions
	// those of data.
	d := xml.NewDecoder(bytes.NewReader(data))
	d.DefaultSpace = NSClient
	var (
		out     [][]byte
		decls   = [][]decl{{{"", NSClient}}} // per open element, its declarations; [0] is the wrapper's
		inMatch = -1                         // depth of the open match, -1 if none
		start   int64
		inScope []decl
		scope   = xmlscope.New()
	)
	for {
		off := d.InputOffset()
		line, col := d.InputPos()
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("xmltest: %w", posError(d, err))
		}
		depth := len(decls) - 1 // 0 for a top-level element of data
		switch t := tok.(type) {
		case xml.StartElement:
			scope.Push(t)
			if err := scope.Check(t); err != nil {
				return nil, fmt.Errorf("xmltest: line %d, column %d: %w", line, col, err)
			}
			var ds []decl
			for _, a := range t.Attr {
				switch {
				case a.Name.Space == "xmlns":
					ds = append(ds, decl{a.Name.Local, a.Value})
				case a.Name.Space == "" && a.Name.Local == "xmlns":
					ds = append(ds, decl{"", a.Value})
				}
			}
			if inMatch < 0 && match(depth, t.Name) {
				inMatch = depth
				start = off
				inScope = visible(decls, ds)
			}
			decls = append(decls, ds)
		case xml.EndElement:
			decls = decls[:len(decls)-1]
			scope.Pop()
			if inMatch == depth-1 {
				inMatch = -1
				out = append(out, standalone(data[start:d.InputOffset()], inScope))
			}
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(t)) != 0 {
				return nil, fmt.Errorf("xmltest: line %d, column %d: character data outside elements", line, col)
			}
		}
	}
	return out, nil
}

// visible returns the declarations of the open elements that are still in
// effect and that own (the element's own attributes) does not redeclare.
func visible(open [][]decl, own []decl) []decl {
	seen := map[string]bool{}
	for _, d := range own {
		seen[d.prefix] = true
	}
	var out []decl
	for i := len(open) - 1; i >= 0; i-- {
		for _, d := range open[i] {
			if !seen[d.prefix] {
				seen[d.prefix] = true
				out = append(out, d)
			}
		}
	}
	return out
}

// standalone inserts decls into the start tag at the beginning of elem.
func standalone(elem []byte, decls []decl) []byte {
	// elem starts with '<' and the qualified name.
	end := 1
	for end < len(elem) && !strings.ContainsRune(" \t\r\n/>", rune(elem[end])) {
		end++
	}
	var ins bytes.Buffer
	for _, d := range decls {
		ins.WriteByte(' ')
		if d.prefix == "" {
			ins.WriteString("xmlns")
		} else {
			ins.WriteString("xmlns:" + d.prefix)
		}
		ins.WriteString(`="`)
		xml.EscapeText(&ins, []byte(d.uri))
		ins.WriteByte('"')
	}
	out := make([]byte, 0, len(elem)+ins.Len())
	out = append(out, elem[:end]...)
	out = append(out, ins.Bytes()...)
	out = append(out, elem[end:]...)
	return out
}
