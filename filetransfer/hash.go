package filetransfer

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"

	"golang.org/x/crypto/blake2b"
)

// Hash algorithm names (XEP-0300, IANA "Hash Function Textual Names").
const (
	SHA1       = "sha-1"
	SHA256     = "sha-256"
	SHA512     = "sha-512"
	SHA3256    = "sha3-256"
	SHA3512    = "sha3-512"
	BLAKE2b256 = "blake2b-256"
	BLAKE2b512 = "blake2b-512"
)

// Algorithms returns the hash algorithms this package computes, strongest
// first.
func Algorithms() []string {
	return []string{BLAKE2b512, SHA3512, SHA512, BLAKE2b256, SHA3256, SHA256, SHA1}
}

// HashFeatures returns the service discovery features of XEP-0300: the
// namespace and one feature per supported algorithm. A Handler advertises
// them (Features), so a jingle.Manager's features include them.
func HashFeatures() []string {
	f := []string{NSHashes}
	for _, a := range Algorithms() {
		f = append(f, NSHashFunctionPrefix+a)
	}
	return f
}

// CanonicalAlgo returns the name this package uses for an algorithm name as
// peers spell it ("SHA-256", "id-blake2b256", "BLAKE2b256"…), or "" when it
// is not supported.
func CanonicalAlgo(name string) string {
	n := strings.ToLower(strings.TrimSpace(name))
	switch n {
	case "sha-1", "sha1":
		return SHA1
	case "sha-256", "sha256":
		return SHA256
	case "sha-512", "sha512":
		return SHA512
	case "sha3-256":
		return SHA3256
	case "sha3-512":
		return SHA3512
	case "blake2b-256", "blake2b256", "id-blake2b256":
		return BLAKE2b256
	case "blake2b-512", "blake2b512", "id-blake2b512":
		return BLAKE2b512
	}
	return ""
}

// strength orders algorithms: higher is stronger; 0 for unsupported.
func strength(algo string) int {
	switch CanonicalAlgo(algo) {
	case SHA1:
		return 1
	case SHA256:
		return 2
	case SHA3256:
		return 3
	case BLAKE2b256:
		return 4
	case SHA512:
		return 5
	case SHA3512:
		return 6
	case BLAKE2b512:
		return 7
	}
	return 0
}

// digestSize returns the size in bytes of an algorithm's digest.
func digestSize(algo string) int {
	switch CanonicalAlgo(algo) {
	case SHA1:
		return sha1.Size
	case SHA256, SHA3256, BLAKE2b256:
		return 32
	case SHA512, SHA3512, BLAKE2b512:
		return 64
	}
	return 0
}

func newHash(algo string) (hash.Hash, error) {
	switch CanonicalAlgo(algo) {
	case SHA1:
		return sha1.New(), nil
	case SHA256:
		return sha256.New(), nil
	case SHA512:
		return sha512.New(), nil
	case SHA3256:
		return sha3.New256(), nil
	case SHA3512:
		return sha3.New512(), nil
	case BLAKE2b256:
		return blake2b.New256(nil)
	case BLAKE2b512:
		return blake2b.New512(nil)
	}
	return nil, fmt.Errorf("filetransfer: unsupported hash algorithm %q", algo)
}

// Digest is a computed or received hash: an algorithm and the raw digest.
type Digest struct {
	Algo string `json:"algo"`
	Sum  []byte `json:"sum"`
}

// String returns "algo:hex".
func (d Digest) String() string { return d.Algo + ":" + hex.EncodeToString(d.Sum) }

// IsZero reports whether d carries no digest.
func (d Digest) IsZero() bool { return len(d.Sum) == 0 }

// HashEncoding says how a digest is written in a <hash/> element.
type HashEncoding int

// Hash encodings.
const (
	// Base64 is XEP-0300's encoding: base64 of the raw digest.
	Base64 HashEncoding = iota
	// HexBase64 is base64 of the lower-case hex digest, what Libervia 0.9
	// sends and verifies (it does not verify Base64 checksums and rejects
	// offers carrying them).
	HexBase64
	// Hex is the hex digest, as urn:xmpp:hashes:1 peers wrote it.
	Hex
)

func (e HashEncoding) String() string {
	switch e {
	case Base64:
		return "base64"
	case HexBase64:
		return "base64(hex)"
	case Hex:
		return "hex"
	}
	return "unknown"
}

// Encode writes the digest in the given encoding.
func (d Digest) Encode(enc HashEncoding) string {
	switch enc {
	case HexBase64:
		return base64.StdEncoding.EncodeToString([]byte(hex.EncodeToString(d.Sum)))
	case Hex:
		return hex.EncodeToString(d.Sum)
	}
	return base64.StdEncoding.EncodeToString(d.Sum)
}

// Element returns the <hash/> element for d in the given encoding.
func (d Digest) Element(enc HashEncoding) Hash {
	return Hash{Algo: d.Algo, Value: d.Encode(enc)}
}

// ErrBadHash is wrapped by errors about a <hash/> value that cannot be
// decoded.
var ErrBadHash = errors.New("filetransfer: bad hash value")

// Digest decodes the element's value. It accepts every encoding met in the
// wild, told apart by length (they cannot be confused for a known
// algorithm): XEP-0300 base64 of the digest, the hex digest
// (urn:xmpp:hashes:1 peers) and base64 of the hex digest (Libervia). It
// returns the encoding found too. An empty value is an error.
func (h Hash) Digest() (Digest, HashEncoding, error) {
	algo := CanonicalAlgo(h.Algo)
	if algo == "" {
		return Digest{}, 0, fmt.Errorf("%w: unsupported algorithm %q", ErrBadHash, h.Algo)
	}
	sum, enc, err := decodeHashValue(digestSize(algo), h.Value)
	if err != nil {
		return Digest{}, 0, fmt.Errorf("%w: %s: %v", ErrBadHash, h.Algo, err)
	}
	return Digest{Algo: algo, Sum: sum}, enc, nil
}

func decodeHashValue(size int, value string) ([]byte, HashEncoding, error) {
	v := strings.Join(strings.Fields(value), "")
	if v == "" {
		return nil, 0, errors.New("empty")
	}
	if len(v) == 2*size {
		if b, err := hex.DecodeString(v); err == nil {
			return b, Hex, nil
		}
	}
	b, err := decodeBase64(v)
	if err != nil {
		return nil, 0, err
	}
	switch len(b) {
	case size:
		return b, Base64, nil
	case 2 * size:
		if raw, err := hex.DecodeString(string(b)); err == nil {
			return raw, HexBase64, nil
		}
	}
	return nil, 0, fmt.Errorf("%d bytes decoded, want %d", len(b), size)
}

func decodeBase64(v string) ([]byte, error) {
	if b, err := base64.StdEncoding.DecodeString(v); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(strings.TrimRight(v, "="))
}

// hashSet computes several digests of the same data; it is an io.Writer.
type hashSet struct {
	algos []string
	hs    []hash.Hash
}

func newHashSet(algos []string) (*hashSet, error) {
	s := &hashSet{}
	seen := map[string]bool{}
	for _, a := range algos {
		c := CanonicalAlgo(a)
		if c == "" || seen[c] {
			continue
		}
		h, err := newHash(c)
		if err != nil {
			return nil, err
		}
		seen[c] = true
		s.algos = append(s.algos, c)
		s.hs = append(s.hs, h)
	}
	if len(s.hs) == 0 {
		return nil, errors.New("filetransfer: no supported hash algorithm")
	}
	return s, nil
}

func (s *hashSet) Write(p []byte) (int, error) {
	for _, h := range s.hs {
		h.Write(p)
	}
	return len(p), nil
}

// Sums returns the digests, in the order of the algorithms.
func (s *hashSet) Sums() []Digest {
	out := make([]Digest, len(s.hs))
	for i, h := range s.hs {
		out[i] = Digest{Algo: s.algos[i], Sum: h.Sum(nil)}
	}
	return out
}

// strongest returns the strongest digest of ds.
func strongest(ds []Digest) Digest {
	var best Digest
	for _, d := range ds {
		if best.IsZero() || strength(d.Algo) > strength(best.Algo) {
			best = d
		}
	}
	return best
}

// compareDigests checks the expected digests against the computed ones. It
// returns the expected digests that could be checked and matched, and
// whether any checked one differed.
func compareDigests(computed, expected []Digest) (matched []Digest, mismatch bool) {
	for _, e := range expected {
		for _, c := range computed {
			if c.Algo != e.Algo {
				continue
			}
			if bytes.Equal(c.Sum, e.Sum) {
				matched = append(matched, c)
			} else {
				mismatch = true
			}
		}
	}
	return matched, mismatch
}
