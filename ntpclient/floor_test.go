package ntpclient

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestDelayFloor(t *testing.T) {
	var f delayFloor
	f.add(0, 500*time.Microsecond)
	if least, slack := f.floor(); least != 500*time.Microsecond || slack != least {
		t.Fatalf("one sample: floor %v slack %v; want the sample, and all of it as slack", least, slack)
	}
	f.add(time.Minute, 420*time.Microsecond)
	f.add(2*time.Minute, 430*time.Microsecond)
	if least, slack := f.floor(); least != 420*time.Microsecond || slack != 10*time.Microsecond {
		t.Fatalf("floor %v slack %v; want 420µs and the 10µs gap to the next", least, slack)
	}
	// The least delay is remembered for floorSpan, then forgotten: a route
	// whose floor rose is relearnt.
	raw := 2 * time.Minute
	for raw+64*time.Second < floorSpan {
		raw += 64 * time.Second
		f.add(raw, 600*time.Microsecond)
	}
	if least, _ := f.floor(); least != 420*time.Microsecond {
		t.Fatalf("within the window the floor became %v", least)
	}
	for raw < floorSpan+time.Hour {
		raw += 64 * time.Second
		f.add(raw, 600*time.Microsecond)
	}
	if least, slack := f.floor(); least != 600*time.Microsecond || slack != 0 {
		t.Fatalf("after the window: floor %v slack %v, want 600µs and 0", least, slack)
	}
	if n := len(f.buckets); n > int(floorSpan/floorBucketLen)+2 {
		t.Fatalf("%d buckets kept", n)
	}
}

// The point of the long window: at a 64 s poll the least delay of 4 h of
// exponential queueing lies much closer to the path's floor than the least
// of the 8-stage filter, so bounds built on it are rarely too tight.
func TestDelayFloorNearTrueFloor(t *testing.T) {
	const floor = 400 * time.Microsecond
	rng := rand.New(rand.NewPCG(1, 2))
	var f delayFloor
	tooTight := 0
	n := 0
	for i := range 2000 {
		out := time.Duration(rng.ExpFloat64() * 20e3)
		back := time.Duration(rng.ExpFloat64() * 20e3)
		raw := time.Duration(i) * 64 * time.Second
		f.add(raw, floor+out+back)
		if i < 250 {
			continue
		}
		least, slack := f.floor()
		// The bound on a sample's offset error, and its true error.
		bound := (out + back - (least - floor) + slack) / 2
		if err := (out - back).Abs() / 2; err > bound+1500*time.Nanosecond {
			tooTight++
		}
		n++
	}
	if tooTight > n/100 {
		t.Fatalf("%d of %d bounds too tight by more than 1.5 µs", tooTight, n)
	}
	t.Logf("%d of %d bounds too tight by more than 1.5 µs", tooTight, n)
}
