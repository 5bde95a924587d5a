package guest

import (
	"context"
	"testing"
	"time"

	"slewd/clock"
	"slewd/clock/conformance"
	"slewd/ntpclient/ntptest"
)

// Truth is a scenario's true time: REALTIME as it was when the Truth was
// made, advanced by CLOCK_MONOTONIC_RAW, which no slewing touches. Its NTP
// servers on loopback serve it, so that a client in the guest never chases
// the clock it disciplines (pitfall: a server reading the guest's own
// REALTIME makes the client slew forever).
type Truth struct {
	c      clock.Clock
	anchor clock.Reading
	// Servers are the loopback servers' ntptest handles; Addrs their addresses.
	Servers []*ntptest.UDPServer
	Addrs   []string
}

// NewTruth restores the kernel clock to its defaults (and again when the
// test ends), anchors true time, and starts n NTP servers on loopback.
func NewTruth(t *testing.T, c clock.Clock, n int) *Truth {
	t.Helper()
	if err := conformance.Restore(t.Context(), c, clock.NewSystemLoop(1)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conformance.Restore(context.Background(), c, clock.NewSystemLoop(1)) })
	w := &Truth{c: c, anchor: clock.Read(c, 8)}
	for range n {
		s, err := ntptest.Listen("127.0.0.1:0", ntptest.ServerConfig{Stratum: 1}, func() time.Time { return w.At(c.Raw()) })
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		w.Servers = append(w.Servers, s)
		w.Addrs = append(w.Addrs, s.Addr())
	}
	return w
}

// At is true time at CLOCK_MONOTONIC_RAW reading raw.
func (w *Truth) At(raw time.Duration) time.Time { return w.anchor.Real.Add(raw - w.anchor.Raw) }

// ClockError is REALTIME minus true time, from a bracketed read.
func (w *Truth) ClockError() time.Duration {
	rd := clock.Read(w.c, 6)
	return rd.Real.Sub(w.At(rd.Raw))
}

// Step moves REALTIME by d with ADJ_SETOFFSET (only ever in a guest).
func Step(t *testing.T, c clock.Clock, d time.Duration) {
	t.Helper()
	if _, err := clock.NewDriver(c).Step(d); err != nil {
		t.Fatal(err)
	}
}
