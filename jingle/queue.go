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

// Next returns the first item, waiting for one. It returns ErrEnded once
// the queue is closed and empty, and ctx's error when ctx ends first.
func (q *Queue[T]) Next(ctx context.Context) (T, error) {
	var zero T
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			v := q.items[0]
			q.items = q.items[1:]
			q.mu.Unlock()
			return v, nil
		}
		if q.closed {
			q.mu.Unlock()
			return zero, ErrEnded
		}
		if q.changed == nil {
			q.changed = make(chan struct{})
		}
		ch := q.changed
		q.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return zero, ctx.Err()
		}
	}
}
