package jet

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	mrand "math/rand/v2"
	"testing"
)

// sealAll runs the streaming sealer over msg in random pieces.
func sealAll(t *testing.T, key, iv, msg []byte, r *mrand.Rand) []byte {
	t.Helper()
	s, err := newStream(key, iv)
	if err != nil {
		t.Fatal(err)
	}
	out := bytes.Clone(msg)
	for off := 0; off < len(out); {
		n := min(len(out)-off, 1+r.IntN(70000))
		if r.IntN(4) == 0 {
			n = min(len(out)-off, 1+r.IntN(20))
		}
		if err := s.seal(out[off:off+n], out[off:off+n]); err != nil {
			t.Fatal(err)
		}
		off += n
	}
	tag := s.gh.sum()
	return append(out, tag[:]...)
}

func TestStreamMatchesStdlibGCM(t *testing.T) {
	r := mrand.New(mrand.NewPCG(1, 2))
	lengths := []int{0, 1, 15, 16, 17, 31, 32, 33, 4095, 65536, 65537, 300001}
	for i := 0; i < 20; i++ {
		lengths = append(lengths, r.IntN(200000))
	}
	for _, n := range lengths {
		key, iv, msg := make([]byte, KeySize), make([]byte, IVSize), make([]byte, n)
		rand.Read(key)
		rand.Read(iv)
		rand.Read(msg)
		block, _ := aes.NewCipher(key)
		g, _ := cipher.NewGCM(block)
		want := g.Seal(nil, iv, msg, nil)
		got := sealAll(t, key, iv, msg, r)
		if !bytes.Equal(got, want) {
			t.Fatalf("length %d: streaming seal differs from crypto/cipher GCM", n)
		}
		// And the opener accepts it and gives the plaintext back.
		o, _ := newStream(key, iv)
		pt := make([]byte, n)
		for off := 0; off < n; {
			k := min(n-off, 1+r.IntN(50000))
			if err := o.open(pt[off:off+k], got[off:off+k]); err != nil {
				t.Fatal(err)
			}
			off += k
		}
		if err := o.verify(got[n:]); err != nil {
			t.Fatalf("length %d: %v", n, err)
		}
		if !bytes.Equal(pt, msg) {
			t.Fatalf("length %d: plaintext differs", n)
		}
	}
}

func TestStreamDetectsFlippedByte(t *testing.T) {
	r := mrand.New(mrand.NewPCG(3, 4))
	key, iv, msg := make([]byte, KeySize), make([]byte, IVSize), make([]byte, 100000)
	rand.Read(key)
	rand.Read(iv)
	ct := sealAll(t, key, iv, msg, r)
	for _, pos := range []int{0, 5000, 99999, 100000, 100015} {
		bad := bytes.Clone(ct)
		bad[pos] ^= 0x20
		o, _ := newStream(key, iv)
		pt := make([]byte, len(msg))
		if err := o.open(pt, bad[:len(msg)]); err != nil {
			t.Fatal(err)
		}
		if err := o.verify(bad[len(msg):]); !errors.Is(err, ErrAuthentication) {
			t.Fatalf("flipped byte %d: verify = %v, want ErrAuthentication", pos, err)
		}
	}
}

func BenchmarkSeal(b *testing.B) {
	key, iv := make([]byte, KeySize), make([]byte, IVSize)
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(buf)))
	s, _ := newStream(key, iv)
	for i := 0; i < b.N; i++ {
		if s.gh.total > 1<<34 {
			s, _ = newStream(key, iv)
		}
		_ = s.seal(buf, buf)
	}
}

func BenchmarkOpenSmallReads(b *testing.B) {
	key, iv := make([]byte, KeySize), make([]byte, IVSize)
	buf := make([]byte, 16<<10+123)
	b.SetBytes(int64(len(buf)))
	s, _ := newStream(key, iv)
	for i := 0; i < b.N; i++ {
		if s.gh.total > 1<<34 {
			s, _ = newStream(key, iv)
		}
		_ = s.open(buf, buf)
	}
}
