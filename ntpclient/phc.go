package ntpclient

import (
	"time"

	"slewd/clock"
)

// A PHC source's samples look like a stratum-0 reference clock's behind
// a zero-length path: no root delay or dispersion, no network asymmetry,
// and the read's own bracket as the delay, so root distance and the
// filters' bounds are half of it, as for a round trip.
const (
	// phcRefID is "PHC", as chrony names a PHC reference clock.
	phcRefID = 'P'<<24 | 'H'<<16 | 'C'<<8
	// phcPrecision is what a reading is credited with at least: a
	// cross-timestamp has no bracket, but the PHC's counter and the
	// system clock's conversion still round.
	phcPrecision = 100 * time.Nanosecond
)

// phcSample turns a PHC reading into a sample of source name at path.
func phcSample(name, path string, r clock.PHCReading) Sample {
	return Sample{
		Source:       name,
		Addr:         path,
		Offset:       r.Offset(),
		Delay:        r.Width,
		Raw:          r.Raw,
		RealMinusRaw: r.RealMinusRaw(),
		Stratum:      0,
		Leap:         LeapNone,
		RefID:        phcRefID,
		Precision:    phcPrecision,
	}
}

// readPHCReply reads phc once and classifies the outcome as a query's.
func readPHCReply(name, path string, phc clock.PHC) reply {
	r, err := phc.Read()
	if err != nil {
		return reply{kind: replyBad, detail: err.Error()}
	}
	s := phcSample(name, path, r)
	if validSample(s) != nil {
		return reply{kind: replyBad, detail: "PHC reading out of range: offset " + r.Offset().String()}
	}
	return reply{kind: replySample, sample: s}
}

// readPHC reads a PHC on a helper, as a query is made, and posts the
// outcome for query q.
func (d driver) readPHC(name string, src uint64, phc clock.PHC, q SendQuery) {
	loop, c := d.env.Loop, d.c
	loop.Go(func() {
		r := readPHCReply(name, q.Addr, phc)
		loop.Post(&queryDone{c: c, src: src, query: q.Query, r: r})
	})
}
