package jingle

import (
	"context"
	"sync"
)

// Queue is a first-in first-out queue of events for one reader, who waits
// with Next; its owner adds with Push and ends it with Close. A Session
// hands out its events through one, and so does an application built on
// it (rtp's Call). The zero value is ready to use.
type Queue[T any] struct {
	// Max bounds the queue: beyond it, the oldest item is dropped. Zero
	// means unbounded. Set it before first use.
	Max int

	mu      sync.Mutex
	items   []T
	closed  bool
	changed chan struct{}
	ready   chan struct{} // closed: what Ready returns while Next would not block
}

// wake wakes Next; q.mu is held.
func (q *Queue[T]) wake() {
	if q.changed != nil {
		close(q.changed)
	}
	q.changed = make(chan struct{})
}

// Push adds v at the end.
func (q *Queue[T]) Push(v T) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.Max > 0 && len(q.items) >= q.Max {
		var zero T
		q.items[0] = zero
		q.items = q.items[1:]
	}
	q.items = append(q.items, v)
	q.wake()
}

// Close ends the queue: Next returns what is left, then ErrEnded.
func (q *Queue[T]) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.wake()
}

// Len returns the number of items waiting.
func (q *Queue[T]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// Ready returns a channel that is closed when Next would not block: an
// item is waiting or the queue is closed. It lets a reader wait for the
// queue in a select among its other channels, with no goroutine to
// forward the items, and then take one with TryNext. The channel may also
// close on another change of the queue, so take a new one after each
// wake-up.
func (q *Queue[T]) Ready() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) > 0 || q.closed {
		if q.ready == nil {
			q.ready = make(chan struct{})
			close(q.ready)
		}
		return q.ready
	}
	if q.changed == nil {
		q.changed = make(chan struct{})
	}
	return q.changed
}

// TryNext returns the first item without waiting: ok is false when none
// is waiting. It returns ErrEnded once the queue is closed and empty.
func (q *Queue[T]) TryNext() (v T, ok bool, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) > 0 {
		v = q.items[0]
		var zero T
		q.items[0] = zero // the backing array must not keep a taken item alive
		q.items = q.items[1:]
		return v, true, nil
	}
	if q.closed {
		return v, false, ErrEnded
	}
	return v, false, nil
}

// Next returns the first item, waiting for one. It returns ErrEnded once
// the queue is closed and empty, and ctx's error when ctx ends first.
func (q *Queue[T]) Next(ctx context.Context) (T, error) {
	for {
		v, ok, err := q.TryNext()
		if ok || err != nil {
			return v, err
		}
		select {
		case <-q.Ready():
		case <-ctx.Done():
			return v, ctx.Err()
		}
	}
}
