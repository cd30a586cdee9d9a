// Package testwait bounds a test's wait for a value on a channel: the
// select-with-timeout that every test waiting for a callback or a
// goroutine's result would otherwise write out.
package testwait

import (
	"testing"
	"time"
)

// Recv returns the next value received from ch, or fails the test (what
// names the awaited value) when none arrives within d.
func Recv[T any](t testing.TB, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("%s: nothing within %v", what, d)
		var zero T
		return zero
	}
}
