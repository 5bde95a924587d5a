// Package ntpclient measures how far the local clock is from NTP servers,
// the way the best daemons do: per-source clock filters, falseticker
// rejection, kiss-of-death handling. It turns samples into an Estimate and
// never changes the clock; package adjtime does that.
//
// Offsets follow NTP's sign: server time minus local time, so a positive
// offset means the local clock is behind.
//
// Samples are kept in a frame that slewing cannot move: each carries
// REALTIME − CLOCK_MONOTONIC_RAW at the moment it was taken, so
// Offset + RealMinusRaw (the Phase) is the server's time against the raw
// oscillator. Samples taken before and during a slew stay comparable
// without ntpclient being told what adjtime did.
package ntpclient

import (
	"context"
	"net"
	"time"
)

// Dialer opens a datagram connection to an NTP server: beevik/ntp's
// QueryOptions.Dialer. Real UDP, or a simulated network in tests.
type Dialer func(localAddress, remoteAddress string) (net.Conn, error)

// Resolver looks up the addresses of a server or pool name.
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// Leap is the NTP leap indicator.
type Leap uint8

const (
	LeapNone      Leap = 0
	LeapInsert    Leap = 1
	LeapDelete    Leap = 2
	LeapNotInSync Leap = 3
)

// Sample is one NTP exchange with one server, as measured.
type Sample struct {
	// Source is the source as configured (HOST:PORT); Addr the address queried.
	Source string
	Addr   string
	// Offset is server time minus local CLOCK_REALTIME at the midpoint of
	// the exchange: ((t2−t1)+(t3−t4))/2.
	Offset time.Duration
	// Delay is the round-trip delay (t4−t1)−(t3−t2), at least 0.
	Delay time.Duration
	// Raw is CLOCK_MONOTONIC_RAW at the midpoint of the exchange.
	Raw time.Duration
	// RealMinusRaw is CLOCK_REALTIME − CLOCK_MONOTONIC_RAW at the midpoint.
	RealMinusRaw time.Duration

	Stratum        uint8
	Leap           Leap
	RefID          uint32
	RootDelay      time.Duration
	RootDispersion time.Duration
	Precision      time.Duration
}

// Phase is the server's time minus CLOCK_MONOTONIC_RAW at the sample:
// Offset + RealMinusRaw. Nothing slewd does to the clock changes it; only
// the oscillator's own frequency error moves it.
func (s Sample) Phase() time.Duration { return s.Offset + s.RealMinusRaw }

// Estimate is what the sources, filtered, selected and combined, say about
// the local clock at one moment.
type Estimate struct {
	// Raw is CLOCK_MONOTONIC_RAW at which the estimate holds.
	Raw time.Duration
	// Offset is true time minus CLOCK_REALTIME at Raw (NTP sign).
	Offset time.Duration
	// RealMinusRaw is CLOCK_REALTIME − CLOCK_MONOTONIC_RAW at Raw, so that
	// Offset + RealMinusRaw is true time against RAW.
	RealMinusRaw time.Duration
	// Error bounds |Offset − true offset|: the root distance of the
	// combination (half the delay plus dispersion, plus the servers' own
	// root distance).
	Error time.Duration
	// Jitter is the RMS spread of the selected sources' offsets and of
	// their samples: the noise of Offset.
	Jitter time.Duration
	// Sources is how many sources agree (survived selection).
	Sources int
	// Stratum is one more than the best selected source's.
	Stratum uint8
	// Leap is the leap indicator the selected sources agree on.
	Leap Leap
	// Details has one entry for every source, selected or not.
	Details []SourceReport

	// Sample is the new sample that produced this estimate; its source is
	// among those combined. SampleBound is half its delay above the least
	// its source has shown lately (less the slack that least may still
	// have above the path's true floor), and SampleBias its source's
	// filtered phase minus the combined phase. Sample.Phase() − SampleBias
	// is a fresh measurement of the combination, off by at most
	// SampleBound (plus what the path's unknowable asymmetry adds to every
	// sample alike): bounded noise, which tells a filter more than Jitter.
	Sample      Sample
	SampleBound time.Duration
	SampleBias  time.Duration
}

// Phase is true time minus CLOCK_MONOTONIC_RAW at Raw.
func (e Estimate) Phase() time.Duration { return e.Offset + e.RealMinusRaw }

// SourceReport is the state of one source, for `slewd query` and logs.
type SourceReport struct {
	Source     string // as configured, with port
	Addr       string // address queried
	Stratum    uint8
	RefID      uint32
	Offset     time.Duration // filtered offset, NTP sign
	Delay      time.Duration
	Dispersion time.Duration
	Jitter     time.Duration
	// RootDistance is λ: the bound on this source's error (root delay/2
	// + root dispersion + delay/2 + dispersion + jitter).
	RootDistance time.Duration
	// Samples is how many samples the clock filter holds.
	Samples int
	// Spikes is how many samples the filter has suppressed as popcorn
	// spikes so far.
	Spikes   int
	Leap     Leap
	KissCode string // last kiss-of-death code, if any
	Reach    uint8  // reachability register: one bit per poll, newest lowest
	Poll     time.Duration
	Selected bool
	// Reason says why the source was not selected ("falseticker",
	// "unreachable", "kiss-of-death DENY", "unsynchronized (LI=3)", ...).
	Reason string

	// For `slewd sources` and the metrics.
	// Candidate: offered to the last selection (usable, and within the
	// maximum root distance); a candidate not Selected lost in it.
	Candidate bool
	// RootDelay and RootDispersion are the server's own (its best sample).
	RootDelay, RootDispersion time.Duration
	// LastSample is the RAW time of the newest sample in the filter (0: none).
	LastSample time.Duration
	// Queries, Replies and Kisses count since the source was added.
	Queries, Replies, Kisses int
}
