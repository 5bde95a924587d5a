package clock

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestSystemLoop(t *testing.T) {
	ctx := context.Background()
	l := NewSystemLoop(2)
	for i := range 5 { // past the backlog: the queue grows, nothing is dropped
		l.Post(i)
	}
	for want := range 5 {
		if ev, err := l.Wait(ctx, time.Hour); ev != want || err != nil {
			t.Fatalf("Wait = %v, %v; want %v", ev, err, want)
		}
	}
	if ev, err := l.Wait(ctx, time.Millisecond); ev != nil || err != nil {
		t.Fatalf("Wait after the queue = %v, %v; want a timeout", ev, err)
	}

	l.Go(func() { time.Sleep(time.Millisecond); l.Post("late") })
	if ev, err := l.Wait(ctx, time.Minute); ev != "late" || err != nil {
		t.Fatalf("Wait for a helper = %v, %v", ev, err)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := l.Wait(cctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait on a cancelled context = %v", err)
	}
	if err := Sleep(ctx, l, time.Millisecond); err != nil {
		t.Fatalf("Sleep: %v", err)
	}
	l.Post("stray")
	if err := Sleep(ctx, l, time.Millisecond); err == nil {
		t.Fatal("Sleep ignored a posted event")
	}
}

// TestSystemLoopManyPosters: helpers posting at once, far past the
// backlog, lose nothing.
func TestSystemLoopManyPosters(t *testing.T) {
	l := NewSystemLoop(1)
	const posters, each = 8, 500
	var wg sync.WaitGroup
	for p := range posters {
		wg.Add(1)
		l.Go(func() {
			defer wg.Done()
			for i := range each {
				l.Post(p*each + i)
			}
		})
	}
	seen := map[any]bool{}
	for len(seen) < posters*each {
		ev, err := l.Wait(context.Background(), 10*time.Second)
		if ev == nil || err != nil {
			t.Fatalf("after %d events: Wait = %v, %v", len(seen), ev, err)
		}
		seen[ev] = true
	}
	wg.Wait()
	if n := l.Pending(); n != 0 {
		t.Errorf("%d events left over", n)
	}
}
