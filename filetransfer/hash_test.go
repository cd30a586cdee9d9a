package filetransfer

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"testing"
)

// TestHashAlgorithms checks each algorithm against a published digest of
// "abc".
func TestHashAlgorithms(t *testing.T) {
	want := map[string]string{
		SHA1:       "a9993e364706816aba3e25717850c26c9cd0d89d",
		SHA256:     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		SHA512:     "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
		SHA3256:    "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532",
		SHA3512:    "b751850b1a57168a5693cd924b6b096e08f621827444f70d884f5d0240d2712e10e116e9192af3c91a7ec57647e3934057340b4cf408d5a56592f8274eec53f0",
		BLAKE2b256: "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319",
		BLAKE2b512: "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d17d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923",
	}
	s, err := newHashSet(Algorithms())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(s, "ab")
	io.WriteString(s, "c")
	sums := s.Sums()
	if len(sums) != len(want) {
		t.Fatalf("%d digests, want %d", len(sums), len(want))
	}
	for _, d := range sums {
		if got := hex.EncodeToString(d.Sum); got != want[d.Algo] {
			t.Errorf("%s: %s, want %s", d.Algo, got, want[d.Algo])
		}
		if len(d.Sum) != digestSize(d.Algo) {
			t.Errorf("%s: %d bytes", d.Algo, len(d.Sum))
		}
	}
	if best := strongest(sums); best.Algo != BLAKE2b512 {
		t.Errorf("strongest is %s", best.Algo)
	}
}

// TestHashDecoding accepts the three encodings met in practice and refuses
// what is not a digest of the algorithm.
func TestHashDecoding(t *testing.T) {
	sum, _ := hex.DecodeString("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
	hexs := hex.EncodeToString(sum)
	for _, tc := range []struct {
		algo, value string
		enc         HashEncoding
		ok          bool
	}{
		{"sha-256", base64.StdEncoding.EncodeToString(sum), Base64, true},
		{"SHA-256", base64.RawStdEncoding.EncodeToString(sum), Base64, true},
		{"sha-256", " " + base64.StdEncoding.EncodeToString(sum)[:20] + "\n " + base64.StdEncoding.EncodeToString(sum)[20:] + " ", Base64, true},
		{"sha-256", hexs, Hex, true},
		{"sha-256", base64.StdEncoding.EncodeToString([]byte(hexs)), HexBase64, true},
		{"sha-256", "", 0, false},
		{"sha-256", base64.StdEncoding.EncodeToString(sum[:20]), 0, false},
		{"sha-256", "not base64 at all!", 0, false},
		{"sha-1", base64.StdEncoding.EncodeToString(sum), 0, false},
		{"md5", base64.StdEncoding.EncodeToString(sum[:16]), 0, false},
		{"sha-256", base64.StdEncoding.EncodeToString([]byte(hexs[:62] + "zz")), 0, false},
	} {
		d, enc, err := Hash{Algo: tc.algo, Value: tc.value}.Digest()
		if !tc.ok {
			if err == nil || !errors.Is(err, ErrBadHash) {
				t.Errorf("%s %q: decoded (%v, %v)", tc.algo, tc.value, d, err)
			}
			continue
		}
		if err != nil || !bytes.Equal(d.Sum, sum) || enc != tc.enc || d.Algo != SHA256 {
			t.Errorf("%s %q: %v %v %v", tc.algo, tc.value, d, enc, err)
		}
	}
	for _, enc := range []HashEncoding{Base64, HexBase64, Hex} {
		d := Digest{Algo: SHA256, Sum: sum}
		back, got, err := d.Element(enc).Digest()
		if err != nil || got != enc || !bytes.Equal(back.Sum, sum) {
			t.Errorf("%s: %v %v %v", enc, back, got, err)
		}
	}
	if v := (Digest{Algo: SHA256, Sum: sum}).Encode(HexBase64); v != base64.StdEncoding.EncodeToString([]byte(hexs)) {
		t.Errorf("Libervia encoding: %s", v)
	}
}

func TestCanonicalAlgo(t *testing.T) {
	for in, want := range map[string]string{
		"sha-1": SHA1, "SHA-256": SHA256, "sha3-256": SHA3256, "id-blake2b256": BLAKE2b256,
		"BLAKE2b512": BLAKE2b512, "blake2b-256": BLAKE2b256, "md5": "", "": "", "sha-224": "",
	} {
		if got := CanonicalAlgo(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

const benchChunk = 64 << 10

func benchCopy(b *testing.B, w func() io.Writer) {
	src := bytes.Repeat([]byte{0x5a}, benchChunk)
	b.SetBytes(benchChunk)
	b.ReportAllocs()
	dst := w()
	b.ResetTimer()
	for b.Loop() {
		if _, err := dst.Write(src); err != nil {
			b.Fatal(err)
		}
	}
}

// memWriter copies what it is given into a buffer, like the last step of
// any copy (into a socket or page cache) does.
type memWriter struct{ buf []byte }

func (w *memWriter) Write(p []byte) (int, error) { return copy(w.buf, p), nil }

// BenchmarkCopyRaw is the baseline: copying the data with no hash.
func BenchmarkCopyRaw(b *testing.B) {
	benchCopy(b, func() io.Writer { return &memWriter{buf: make([]byte, benchChunk)} })
}

// BenchmarkCopyDefault hashes what a Sender hashes by default (sha-256 and
// sha-1) while copying.
func BenchmarkCopyDefault(b *testing.B) {
	benchCopy(b, func() io.Writer {
		s, _ := newHashSet(defaultHashes())
		return io.MultiWriter(&memWriter{buf: make([]byte, benchChunk)}, s)
	})
}

// BenchmarkCopyHash measures each algorithm alone while copying.
func BenchmarkCopyHash(b *testing.B) {
	for _, a := range Algorithms() {
		b.Run(a, func(b *testing.B) {
			benchCopy(b, func() io.Writer {
				s, _ := newHashSet([]string{a})
				return io.MultiWriter(&memWriter{buf: make([]byte, benchChunk)}, s)
			})
		})
	}
}
