package jet

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"github.com/jinglekit/jinglekit/jingle"
)

// KeySize and IVSize are the sizes of the AES-128-GCM key and IV that an
// envelope carries (XEP-0396: 16-byte key, 12-byte IV).
const (
	KeySize = 16
	IVSize  = 12
	// TagSize is the size of the GCM tag appended after the last byte.
	TagSize = 16
)

// MaxSize is the largest plaintext one AES-GCM stream may carry: 2^32-2
// blocks of 16 bytes (NIST SP 800-38D).
const MaxSize = (1<<32 - 2) * 16

// ErrAuthentication is returned when the GCM tag at the end of a stream does
// not match: the data was altered (or the key is wrong), and nothing read
// from the stream may be trusted. It ends a Jingle session with
// security-error (its JingleReason).
var ErrAuthentication error = authError{}

type authError struct{}

func (authError) Error() string {
	return "jet: AES-GCM authentication failed: the data was altered or the key is wrong"
}

// JingleReason says how a Jingle session ends after this error.
func (authError) JingleReason() jingle.Reason {
	return jingle.Reason{Condition: jingle.ReasonSecurityError, Text: "authentication of the encrypted data failed"}
}

// ErrTooLarge is returned when a stream exceeds MaxSize.
var ErrTooLarge = errors.New("jet: stream larger than AES-GCM allows (64 GiB)")

// gf128 is an element of GF(2^128) in GCM's bit order: hi holds bytes 0–7
// big-endian, lo bytes 8–15.
type gf128 struct{ hi, lo uint64 }

func gfFromBytes(b []byte) gf128 {
	return gf128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:16])}
}

func (x gf128) put(b []byte) {
	binary.BigEndian.PutUint64(b[:8], x.hi)
	binary.BigEndian.PutUint64(b[8:16], x.lo)
}

func (x gf128) add(y gf128) gf128 { return gf128{x.hi ^ y.hi, x.lo ^ y.lo} }

// mul is the GF(2^128) product of NIST SP 800-38D, Algorithm 1. It is slow
// (bit by bit) but used only a few times per chunk: the bulk of GHASH runs
// in the standard library's accelerated GCM.
func (x gf128) mul(y gf128) gf128 {
	var z gf128
	v := y
	for i := 0; i < 128; i++ {
		var bit uint64
		if i < 64 {
			bit = (x.hi >> (63 - i)) & 1
		} else {
			bit = (x.lo >> (127 - i)) & 1
		}
		m := -bit
		z.hi ^= v.hi & m
		z.lo ^= v.lo & m
		lsb := v.lo & 1
		v.lo = v.lo>>1 | v.hi<<63
		v.hi = v.hi>>1 ^ (0xe1<<56)&-lsb
	}
	return z
}

// pow returns x^n.
func (x gf128) pow(n uint64) gf128 {
	r := gf128{hi: 1 << 63} // the unit element in GCM's bit order
	for i := bits.Len64(n) - 1; i >= 0; i-- {
		r = r.mul(r)
		if n>>uint(i)&1 == 1 {
			r = r.mul(x)
		}
	}
	return r
}

// ghashChunk is the size of the pieces GHASH is computed over: a multiple
// of 16, large enough that the two GF multiplications per chunk cost
// little next to the accelerated GHASH of its bytes.
const ghashChunk = 32 << 10

// ghash computes GCM's GHASH over a ciphertext given in pieces, using the
// standard library's GCM as an accelerated GHASH of whole chunks: sealing
// an empty plaintext with a chunk as additional data yields
// E(K,J0) ⊕ GHASH(chunk ‖ len). With Z the running state times H, a chunk of
// n blocks moves Z to Z·H^n ⊕ GHASH(chunk ‖ len) ⊕ len·H. Chunks are all
// ghashChunk bytes but the last, so H^n and len·H are computed once.
type ghash struct {
	aead  cipher.AEAD
	iv    []byte
	ekj0  gf128 // E(K, J0)
	h     gf128
	hn    gf128 // H^(ghashChunk/16)
	lh    gf128 // len(ghashChunk)·H
	z     gf128
	carry []byte // a partial chunk
	total uint64 // bytes hashed
	tag   [16]byte
}

func newGHASH(block cipher.Block, iv []byte) (*ghash, error) {
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("jet: %w", err)
	}
	var zero, hb, j0 [16]byte
	block.Encrypt(hb[:], zero[:])
	copy(j0[:], iv)
	j0[15] = 1
	block.Encrypt(j0[:], j0[:])
	h := gfFromBytes(hb[:])
	return &ghash{aead: aead, iv: iv, ekj0: gfFromBytes(j0[:]), h: h,
		hn: h.pow(ghashChunk / 16), lh: gf128{hi: ghashChunk * 8}.mul(h),
		carry: make([]byte, 0, ghashChunk)}, nil
}

// chunk folds whole blocks (or, at the end, the last partial block) into
// the state.
func (g *ghash) chunk(p []byte) {
	if len(p) == 0 {
		return
	}
	t := g.aead.Seal(g.tag[:0], g.iv, nil, p)
	hn, lh := g.hn, g.lh
	if len(p) != ghashChunk { // the last chunk
		hn = g.h.pow(uint64(len(p)+15) / 16)
		lh = gf128{hi: uint64(len(p)) * 8}.mul(g.h)
	}
	g.z = g.z.mul(hn).add(gfFromBytes(t).add(g.ekj0)).add(lh)
}

// write hashes p, keeping a partial chunk for later.
func (g *ghash) write(p []byte) {
	g.total += uint64(len(p))
	if len(g.carry) > 0 {
		k := min(len(p), ghashChunk-len(g.carry))
		g.carry = append(g.carry, p[:k]...)
		p = p[k:]
		if len(g.carry) < ghashChunk {
			return
		}
		g.chunk(g.carry)
		g.carry = g.carry[:0]
	}
	for len(p) >= ghashChunk {
		g.chunk(p[:ghashChunk])
		p = p[ghashChunk:]
	}
	g.carry = append(g.carry, p...)
}

// sum returns the tag of everything written.
func (g *ghash) sum() [TagSize]byte {
	g.chunk(g.carry)
	g.carry = g.carry[:0]
	l := gf128{lo: g.total * 8}
	t := g.z.add(l.mul(g.h)).add(g.ekj0)
	var out [TagSize]byte
	t.put(out[:])
	return out
}

// stream is the AES-GCM state of one direction of a stream.
type stream struct {
	ctr  cipher.Stream
	gh   *ghash
	done bool
}

func newStream(key, iv []byte) (*stream, error) {
	if len(key) != KeySize || len(iv) != IVSize {
		return nil, fmt.Errorf("jet: AES-128-GCM needs a %d-byte key and a %d-byte IV (got %d and %d)", KeySize, IVSize, len(key), len(iv))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("jet: %w", err)
	}
	gh, err := newGHASH(block, iv)
	if err != nil {
		return nil, err
	}
	var ctr [16]byte
	copy(ctr[:], iv)
	ctr[15] = 2
	// cipher.NewCTR increments all 128 bits where GCM increments the low
	// 32; they agree below 2^32 blocks, which MaxSize enforces.
	return &stream{ctr: cipher.NewCTR(block, ctr[:]), gh: gh}, nil
}

// seal encrypts src into dst (which may be src) and hashes the ciphertext.
func (s *stream) seal(dst, src []byte) error {
	if s.gh.total+uint64(len(src)) > MaxSize {
		return ErrTooLarge
	}
	s.ctr.XORKeyStream(dst, src)
	s.gh.write(dst[:len(src)])
	return nil
}

// open hashes the ciphertext src and decrypts it into dst (which may be
// src).
func (s *stream) open(dst, src []byte) error {
	if s.gh.total+uint64(len(src)) > MaxSize {
		return ErrTooLarge
	}
	s.gh.write(src)
	s.ctr.XORKeyStream(dst, src)
	return nil
}

// verify checks the received tag.
func (s *stream) verify(tag []byte) error {
	want := s.gh.sum()
	s.done = true
	if len(tag) != TagSize || subtle.ConstantTimeCompare(want[:], tag) != 1 {
		return ErrAuthentication
	}
	return nil
}
