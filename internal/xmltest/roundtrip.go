package xmltest

import (
	"bytes"
	"encoding/xml"
	"testing"

	"github.com/jinglekit/jinglekit/internal/stanzamodel"
)

// RoundTrip decodes each element named name in data into a new T, encodes
// it again and compares the infosets. It returns how many it checked.
func RoundTrip[T any](t testing.TB, data []byte, name xml.Name) int {
	t.Helper()
	els, err := FindAll(data, name)
	if err != nil {
		t.Fatal(err)
	}
	for _, orig := range els {
		v := new(T)
		if err := xml.Unmarshal(orig, v); err != nil {
			t.Fatalf("Unmarshal %s: %v\n%s", name.Local, err, orig)
		}
		out, err := xml.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		AssertEqual(t, out, orig)
	}
	return len(els)
}

// StanzasRoundTrip parses data with reg, hands each stanza to check (when
// not nil), writes the stanzas back and compares them with data. It
// reports whether they are equal.
func StanzasRoundTrip(t testing.TB, reg *stanzamodel.Registry, data []byte, check func(*stanzamodel.Stanza)) bool {
	t.Helper()
	ss, err := reg.Parse(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for _, s := range ss {
		if check != nil {
			check(s)
		}
		b, err := stanzamodel.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return AssertEqual(t, out, data)
}

// CountVectors runs count on every well-formed vector of each XEP in min,
// in a subtest per XEP and one per vector; count adds to got what it
// checked in the vector (round-tripped elements, by key). Then each XEP's
// subtest fails if the XEP has no well-formed vector, or if fewer of a
// key were counted than min says: a vector that goes missing makes the
// test fail.
func CountVectors[K comparable](t *testing.T, min map[string]map[K]int, count func(t *testing.T, v Vector, got map[K]int)) {
	t.Helper()
	for xep, want := range min {
		t.Run(xep, func(t *testing.T) {
			got := map[K]int{}
			wellFormed := 0
			for _, v := range Vectors(t, xep) {
				if !v.WellFormed {
					continue
				}
				wellFormed++
				t.Run(v.Name(), func(t *testing.T) { count(t, v, got) })
			}
			if wellFormed == 0 {
				t.Fatal("no well-formed vector")
			}
			t.Logf("counted: %v", got)
			for k, n := range want {
				if got[k] < n {
					t.Errorf("%d %v round-tripped, want at least %d", got[k], k, n)
				}
			}
		})
	}
}
