package ibb

import (
	"sync"
	"time"
)

// deadline is one direction's deadline of a Conn: a channel that is closed
// when the deadline passes. Setting a new deadline while an operation
// waits on the channel keeps the channel (and so the waiter) unless the
// old deadline had already passed, in which case the waiter has returned.
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	passed chan struct{}
	// notify, if set, runs after the timer closed passed (not under mu).
	notify func()
}

// newDeadline returns a disarmed deadline; notify, if not nil, is called
// each time an armed deadline passes by its timer.
func newDeadline(notify func()) *deadline {
	return &deadline{passed: make(chan struct{}), notify: notify}
}

// set arms the deadline at t; the zero time disarms it.
func (d *deadline) set(t time.Time) {
	if d.setLocked(t) && d.notify != nil {
		d.notify()
	}
}

// setLocked is set under d.mu; it reports whether it made the deadline
// pass.
func (d *deadline) setLocked(t time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.passed // the timer's function is closing it
	}
	d.timer = nil
	closed := isClosed(d.passed)
	if t.IsZero() {
		if closed {
			d.passed = make(chan struct{})
		}
		return false
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.passed = make(chan struct{})
		}
		ch := d.passed
		d.timer = time.AfterFunc(dur, func() {
			close(ch)
			if d.notify != nil {
				d.notify()
			}
		})
		return false
	}
	if closed {
		return false
	}
	close(d.passed)
	return true
}

// wait returns the channel that is closed when the deadline passes.
func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.passed
}

// stop releases the timer.
func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.passed
	}
	d.timer = nil
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
