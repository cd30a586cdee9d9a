package xmltest

import (
	"encoding/xml"
	"testing"
)

// SeedElements adds to the fuzz target f, as []byte inputs, every element
// named name in the well-formed vectors of the given XEPs (each as
// standalone XML, like FindAll returns it), and returns how many. A zero
// name adds every top-level element. It fails f if there is none: a
// corpus that went missing must not turn a fuzz target into a no-op.
// The corpus is read from ../shared/testdata/xep at test time, never
// copied into the repository.
func SeedElements(f *testing.F, name xml.Name, xeps ...string) int {
	f.Helper()
	n := 0
	for _, xep := range xeps {
		for _, v := range Vectors(f, xep) {
			if !v.WellFormed {
				continue
			}
			var els [][]byte
			var err error
			if name == (xml.Name{}) {
				els, err = Elements(v.Data)
			} else {
				els, err = FindAll(v.Data, name)
			}
			if err != nil {
				continue // a fragment the loader cannot read on its own
			}
			for _, el := range els {
				f.Add(el)
				n++
			}
		}
	}
	if n == 0 {
		f.Fatalf("xmltest: no <%s xmlns='%s'/> in the vectors of %v", name.Local, name.Space, xeps)
	}
	return n
}

// SeedFiles adds to f, as []byte inputs, the content of the vectors of
// the given XEP whose file name ends in suffix (e.g. ".txt" for the SDP
// examples), and returns how many.
func SeedFiles(f *testing.F, xep, suffix string) int {
	f.Helper()
	n := 0
	for _, v := range Vectors(f, xep) {
		if len(v.File) >= len(suffix) && v.File[len(v.File)-len(suffix):] == suffix {
			f.Add(v.Data)
			n++
		}
	}
	return n
}

// FuzzRoundTrip is the check of the XML fuzz targets: when data decodes into
// a T, the value must encode, its encoding must decode again, and encoding
// that second value must give the same bytes (what we write, we read back
// unchanged). It returns the decoded value and whether data decoded.
func FuzzRoundTrip[T any](t *testing.T, data []byte) (T, bool) {
	t.Helper()
	var v T
	if err := xml.Unmarshal(data, &v); err != nil {
		return v, false
	}
	b1, err := xml.Marshal(v)
	if err != nil {
		t.Fatalf("decoded %q into %+v, which does not encode: %v", data, v, err)
	}
	var v2 T
	if err := xml.Unmarshal(b1, &v2); err != nil {
		t.Fatalf("decoded %q, encoded it as %q, which does not decode: %v", data, b1, err)
	}
	b2, err := xml.Marshal(v2)
	if err != nil {
		t.Fatalf("second encoding of %q: %v", data, err)
	}
	if string(b1) != string(b2) {
		t.Fatalf("unstable round trip of %q:\n first  %s\n second %s", data, b1, b2)
	}
	return v, true
}
