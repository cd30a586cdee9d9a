package goroutines_test

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/jinglekit/jinglekit/internal/goroutines"
)

func parkedHere(stop chan struct{}, started chan struct{}) {
	started <- struct{}{}
	<-stop
}

// In counts each goroutine in the named function once, and none after
// they return.
func TestIn(t *testing.T) {
	const frame = "goroutines_test.parkedHere"
	stop, started := make(chan struct{}), make(chan struct{})
	for range 3 {
		go parkedHere(stop, started)
		<-started
	}
	if n := goroutines.In(frame, frame, "no such function"); n != 3 {
		t.Errorf("In = %d, want 3", n)
	}
	close(stop)
	for range 1000 {
		if goroutines.In(frame) == 0 {
			return
		}
		runtime.Gosched()
	}
	t.Errorf("In = %d after they returned, want 0", goroutines.In(frame))
}

func Example() {
	fmt.Println(goroutines.In("no function has this name") == 0)
	// Output: true
}
