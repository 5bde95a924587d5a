package ntpclient

import (
	"math"
	"time"
)

// delayFloor tracks the least round-trip delay of a path over a long
// window (ntpd's huff-n-puff filter keeps one of hours for the same
// reason). A sample's offset is wrong by at most half its delay above the
// path's true floor; the floor seen by the 8-stage filter alone lies
// several µs above the true one, which makes such bounds too tight. Kept
// as per-bucket minima, so memory is fixed whatever the poll interval.
type delayFloor struct {
	buckets []floorBucket // oldest first
}

type floorBucket struct {
	start  time.Duration // RAW time of the bucket's first sample
	d1, d2 time.Duration // the two smallest delays in the bucket
}

// The window: long enough that the least delay lies within a µs or two of
// the floor at a 64 s poll (at 2 h and 12 h the steady-state figures were
// the same), short enough that a route whose floor rose is relearnt the
// same morning. A floor that drops is taken at once.
const (
	floorBucketLen = 15 * time.Minute
	floorSpan      = 4 * time.Hour
)

func (f *delayFloor) add(raw, delay time.Duration) {
	n := len(f.buckets)
	if n == 0 || raw-f.buckets[n-1].start >= floorBucketLen {
		f.buckets = append(f.buckets, floorBucket{start: raw, d1: math.MaxInt64, d2: math.MaxInt64})
	}
	b := &f.buckets[len(f.buckets)-1]
	switch {
	case delay < b.d1:
		b.d1, b.d2 = delay, b.d1
	case delay < b.d2:
		b.d2 = delay
	}
	drop := 0
	for drop < len(f.buckets)-1 && raw-f.buckets[drop].start > floorSpan {
		drop++
	}
	f.buckets = append(f.buckets[:0], f.buckets[drop:]...)
}

// floor returns the least delay in the window and how much lower the true
// floor may lie: the gap to the second least (with one sample, all of it).
func (f *delayFloor) floor() (least, slack time.Duration) {
	d1, d2 := time.Duration(math.MaxInt64), time.Duration(math.MaxInt64)
	for _, b := range f.buckets {
		for _, d := range []time.Duration{b.d1, b.d2} {
			switch {
			case d < d1:
				d1, d2 = d, d1
			case d < d2:
				d2 = d
			}
		}
	}
	if d2 == math.MaxInt64 {
		return d1, d1
	}
	return d1, d2 - d1
}
