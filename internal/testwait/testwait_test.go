package testwait

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// fatalT records Fatalf and ends the goroutine, as t.Fatalf does.
type fatalT struct {
	testing.TB
	msg string
}

func (f *fatalT) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// TestRecv: a value sent in time is returned; none fails the test after
// the wait, naming what was awaited.
func TestRecv(t *testing.T) {
	ch := make(chan int, 1)
	ch <- 7
	if got := Recv(t, ch, time.Second, "seven"); got != 7 {
		t.Errorf("Recv = %d, want 7", got)
	}
	f := &fatalT{TB: t}
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		Recv(f, ch, 50*time.Millisecond, "eight")
		f.msg = "returned"
	}()
	<-done
	if f.msg != "eight: nothing within 50ms" || time.Since(start) < 50*time.Millisecond {
		t.Errorf("Recv of nothing: %q after %v", f.msg, time.Since(start))
	}
}
