// Package testmedia holds small media files for the tests and examples of
// the RTP package: Opus audio in Ogg and VP8 video in IVF, made by
// generate.sh with Debian's sox, opus-tools and vpx-tools (nothing is
// downloaded). The files are embedded, so tests need no path.
package testmedia

import _ "embed"

var (
	//go:embed alice.ogg
	aliceOgg []byte
	//go:embed bob.ogg
	bobOgg []byte
	//go:embed test.ivf
	testIVF []byte
)

// AliceOgg returns 3 s of Opus in Ogg (48 kHz mono, 20 ms packets): a
// 440 Hz tone with a little noise. The slice is a copy.
func AliceOgg() []byte { return clone(aliceOgg) }

// BobOgg returns the same as AliceOgg with a 660 Hz tone.
func BobOgg() []byte { return clone(bobOgg) }

// VP8IVF returns 3 s of VP8 in IVF: 64x48 at 15 fps, a key frame every
// 15 frames.
func VP8IVF() []byte { return clone(testIVF) }

func clone(b []byte) []byte { return append([]byte(nil), b...) }
