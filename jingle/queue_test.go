package jingle_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jinglekit/jinglekit/jingle"
)

// isClosed reports whether ch is closed (or ready) without waiting.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// TestQueueReady checks that a reader can wait for a Queue in a select:
// Ready closes on a Push and on Close, and TryNext never waits.
func TestQueueReady(t *testing.T) {
	var q jingle.Queue[int]
	if _, ok, err := q.TryNext(); ok || err != nil {
		t.Fatalf("TryNext on an empty queue = %v, %v; want nothing", ok, err)
	}
	ready := q.Ready()
	if isClosed(ready) {
		t.Fatal("Ready is closed on an empty queue")
	}
	q.Push(1)
	if !isClosed(ready) {
		t.Fatal("Ready did not close on Push")
	}
	q.Push(2)
	if !isClosed(q.Ready()) {
		t.Fatal("Ready is not closed while items wait")
	}
	for want := 1; want <= 2; want++ {
		v, ok, err := q.TryNext()
		if !ok || err != nil || v != want {
			t.Fatalf("TryNext = %d, %v, %v; want %d", v, ok, err, want)
		}
	}
	ready = q.Ready()
	if isClosed(ready) {
		t.Fatal("Ready is closed once the queue is empty again")
	}
	q.Push(3)
	q.Close()
	if !isClosed(ready) {
		t.Fatal("Ready did not close")
	}
	if v, ok, err := q.TryNext(); !ok || err != nil || v != 3 {
		t.Fatalf("TryNext after Close = %d, %v, %v; want the item left", v, ok, err)
	}
	if _, ok, err := q.TryNext(); ok || !errors.Is(err, jingle.ErrEnded) {
		t.Fatalf("TryNext on a closed, empty queue = %v, %v; want ErrEnded", ok, err)
	}
	if !isClosed(q.Ready()) {
		t.Fatal("Ready is not closed on a closed queue")
	}
}

// TestQueueNext checks Next: it waits for an item, returns ErrEnded once
// closed and empty, and ctx's error when ctx ends first.
func TestQueueNext(t *testing.T) {
	var q jingle.Queue[string]
	got := make(chan string, 1)
	go func() {
		v, _ := q.Next(context.Background())
		got <- v
	}()
	time.Sleep(10 * time.Millisecond)
	q.Push("a")
	select {
	case v := <-got:
		if v != "a" {
			t.Fatalf("Next = %q, want a", v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Next did not return the pushed item")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := q.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next past its context = %v, want DeadlineExceeded", err)
	}
	q.Close()
	if _, err := q.Next(context.Background()); !errors.Is(err, jingle.ErrEnded) {
		t.Fatalf("Next on a closed queue = %v, want ErrEnded", err)
	}
}
