package liberviatest

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestLineLog: lines are timed when their newline arrives, split writes
// included, and wait returns as soon as the line is there, or says why
// not.
func TestLineLog(t *testing.T) {
	l := &lineLog{}
	_, _ = l.Write([]byte("waiting for incoming file request\nreceive-file: re"))
	if _, ok := l.find("receive-file: ready"); ok {
		t.Fatal("found a line before its newline")
	}
	before := time.Now()
	go func() {
		time.Sleep(20 * time.Millisecond)
		_, _ = l.Write([]byte("ady (bob)\nmore"))
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	at, err := l.wait(ctx, "receive-file: ready", nil)
	if err != nil {
		t.Fatal(err)
	}
	if at.Before(before.Add(20 * time.Millisecond)) {
		t.Fatalf("line timed at %v, before its second part was written (%v + 20ms)", at, before)
	}
	exited := make(chan struct{})
	close(exited)
	if _, err := l.wait(ctx, lineReceived, exited); !errors.Is(err, errExited) {
		t.Fatalf("wait after exit: %v, want errExited", err)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel2()
	if _, err := l.wait(short, lineReceived, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait past the deadline: %v", err)
	}
	if l.String() != "waiting for incoming file request\nreceive-file: ready (bob)\nmore" {
		t.Fatalf("output %q", l.String())
	}
}
