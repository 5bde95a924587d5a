package clock

import (
	"context"
	"sync"
	"time"
)

// SystemLoop is Loop on Go's runtime; its timers run on CLOCK_MONOTONIC.
// Its queue grows as needed: Post never blocks and never drops an event,
// since a lost reply or lookup result would leave its sender waiting for
// an answer that never comes.
type SystemLoop struct {
	mu     sync.Mutex
	queue  []any
	notify chan struct{} // holds a token while queue is non-empty
}

// NewSystemLoop returns a Loop with room for backlog queued events before
// its queue grows.
func NewSystemLoop(backlog int) *SystemLoop {
	return &SystemLoop{queue: make([]any, 0, max(backlog, 1)), notify: make(chan struct{}, 1)}
}

// Go runs f in a new goroutine.
func (l *SystemLoop) Go(f func()) { go f() }

// Post queues ev for Wait.
func (l *SystemLoop) Post(ev any) {
	l.mu.Lock()
	l.queue = append(l.queue, ev)
	l.mu.Unlock()
	select {
	case l.notify <- struct{}{}:
	default:
	}
}

// Pending is how many posted events wait to be taken.
func (l *SystemLoop) Pending() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.queue)
}

// take removes the oldest event, if any, and leaves the token in notify
// if more remain.
func (l *SystemLoop) take() (any, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.queue) == 0 {
		return nil, false
	}
	ev := l.queue[0]
	l.queue[0] = nil
	l.queue = l.queue[1:]
	if len(l.queue) == 0 {
		l.queue = l.queue[:0:0] // let a burst's backing array go
	} else {
		select {
		case l.notify <- struct{}{}:
		default:
		}
	}
	return ev, true
}

// Wait returns the oldest posted event or waits up to d for one.
func (l *SystemLoop) Wait(ctx context.Context, d time.Duration) (any, error) {
	if ev, ok := l.take(); ok {
		return ev, nil
	}
	if d <= 0 {
		return nil, ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-l.notify:
			if ev, ok := l.take(); ok {
				return ev, nil
			}
		case <-t.C:
			return l.takeOrNil(ctx)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (l *SystemLoop) takeOrNil(ctx context.Context) (any, error) {
	if ev, ok := l.take(); ok {
		return ev, nil
	}
	return nil, ctx.Err()
}
