// Package goroutines lets tests count the goroutines that are somewhere
// in a given function: a goroutine leak check says whether any are left,
// this says where they wait.
package goroutines

import (
	"runtime/pprof"
	"strings"
)

// IQWaiter is the frame of a goroutine that mellium.im/xmpp v0.23 keeps
// blocked until an IQ is answered (Session.SendIQ and its kin).
const IQWaiter = "mellium.im/xmpp.(*Session).sendResp"

// In returns how many goroutines have, somewhere in their stack, a frame
// whose text contains any of frames (e.g.
// "mellium.im/xmpp.(*Session).sendResp"). A goroutine counts once
// however many of its frames match.
func In(frames ...string) int {
	var b strings.Builder
	_ = pprof.Lookup("goroutine").WriteTo(&b, 2) // a strings.Builder never fails
	n := 0
	for _, g := range strings.Split(b.String(), "\n\n") {
		for _, f := range frames {
			if strings.Contains(g, f) {
				n++
				break
			}
		}
	}
	return n
}
