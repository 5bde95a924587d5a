// Package adjtime turns estimates of true time into kernel adjustments,
// by slewing only: it has no code path to ADJ_SETOFFSET or clock_settime.
//
// It works in the frame of CLOCK_MONOTONIC_RAW, which no adjustment
// touches. The Servo estimates true time against RAW (phase and
// frequency) from ntpclient's estimates; the Slewer makes
// CLOCK_REALTIME − RAW follow that trajectory, measuring what the kernel
// actually delivered instead of trusting timers (CLOCK_MONOTONIC, on which
// Go's timers run, is slewed too).
package adjtime

import (
	"math"
	"time"
)

// Servo estimates true time against CLOCK_MONOTONIC_RAW: the phase
// θ = true − RAW and its rate φ = dθ/dRAW (minus the oscillator's
// frequency error), with a two-state Kalman filter. The oscillator is
// modelled as a random walk of frequency (wander); the wander is not
// known in advance, so the filter tunes it from its own innovations.
//
// It is a pure value: no clock, no I/O. Times are RAW readings.
type Servo struct {
	init   bool
	anchor time.Duration // θ is kept relative to this, in float64 seconds
	raw    time.Duration // RAW time of the state
	theta  float64       // phase relative to anchor, s
	phi    float64       // frequency, s/s
	p      [2][2]float64 // covariance
	q      float64       // frequency random-walk intensity, 1/s (wander² per s)
	nis    float64       // smoothed normalized innovation squared
	n      int           // updates taken
}

// ServoConfig seeds a Servo.
type ServoConfig struct {
	// FreqPPM is the starting frequency (true minus raw rate, ppm), e.g.
	// from the drift file; FreqKnown says whether it is worth trusting.
	FreqPPM   float64
	FreqKnown bool
}

// Wander bounds for the adaptive process noise: from a very stable
// oscillator (1e-11/√s) to a poor one in a changing room (1e-7/√s).
const (
	minWanderQ     = 1e-22
	maxWanderQ     = 1e-14
	defaultWanderQ = 1e-18 // 1e-9 per √s, a typical crystal at steady temperature
)

// NewServo returns a servo that has seen no estimate yet.
func NewServo(cfg ServoConfig) *Servo {
	s := &Servo{phi: cfg.FreqPPM * 1e-6, q: defaultWanderQ, nis: 1}
	s.p[1][1] = sq(500e-6) // unknown: anything the kernel can compensate
	if cfg.FreqKnown {
		s.p[1][1] = sq(5e-6)
	}
	return s
}

func sq(x float64) float64 { return x * x }

// Ready reports whether the servo has taken an estimate.
func (s *Servo) Ready() bool { return s.init }

// Update takes one measurement: true − RAW was phase at RAW time raw, with
// standard deviation sigma. It returns the innovation (measured minus
// predicted phase) in seconds.
func (s *Servo) Update(raw, phase, sigma time.Duration) float64 {
	r := sq(max(sigma.Seconds(), 1e-9))
	if !s.init {
		s.init = true
		s.anchor = phase
		s.raw = raw
		s.theta = 0
		s.p[0][0] = r
		s.p[0][1], s.p[1][0] = 0, 0
		s.n = 1
		return 0
	}
	s.predict(raw)
	z := (phase - s.anchor).Seconds()
	innov := z - s.theta
	sVar := s.p[0][0] + r
	// A jump far beyond the noise is a change of truth (a new server, a
	// step of the servers' clock), not noise: start the phase over rather
	// than drag the frequency along.
	if math.Abs(innov) > 20*math.Sqrt(sVar) && math.Abs(innov) > 1e-3 {
		s.theta = z
		s.p[0][0] = r
		s.p[0][1], s.p[1][0] = 0, 0
		return innov
	}
	k0 := s.p[0][0] / sVar
	k1 := s.p[1][0] / sVar
	s.theta += k0 * innov
	s.phi += k1 * innov
	p00, p01, p11 := s.p[0][0], s.p[0][1], s.p[1][1]
	s.p[0][0] = (1 - k0) * p00
	s.p[0][1] = (1 - k0) * p01
	s.p[1][0] = s.p[0][1]
	s.p[1][1] = p11 - k1*p01
	s.n++
	s.adapt(sq(innov) / sVar)
	return innov
}

// adapt tunes the wander from the innovations: if they are larger than
// the filter expects, the oscillator wanders more than assumed.
func (s *Servo) adapt(nis float64) {
	const alpha = 0.1
	s.nis += alpha * (min(nis, 25) - s.nis)
	if s.n < 8 {
		return
	}
	switch {
	case s.nis > 2:
		s.q = min(s.q*1.5, maxWanderQ)
	case s.nis < 0.6:
		s.q = max(s.q/1.2, minWanderQ)
	}
}

func (s *Servo) predict(raw time.Duration) {
	dt := (raw - s.raw).Seconds()
	if dt <= 0 {
		return
	}
	s.raw = raw
	s.theta += s.phi * dt
	p00, p01, p11 := s.p[0][0], s.p[0][1], s.p[1][1]
	q := s.q
	s.p[0][0] = p00 + 2*dt*p01 + dt*dt*p11 + q*dt*dt*dt/3
	s.p[0][1] = p01 + dt*p11 + q*dt*dt/2
	s.p[1][0] = s.p[0][1]
	s.p[1][1] = p11 + q*dt
}

// Phase is the estimated true − RAW at RAW time raw.
func (s *Servo) Phase(raw time.Duration) time.Duration {
	dt := (raw - s.raw).Seconds()
	return s.anchor + time.Duration(math.Round((s.theta+s.phi*dt)*1e9))
}

// FreqPPM is the estimated rate of true time against RAW, in ppm: the
// frequency the kernel must run CLOCK_REALTIME at to keep pace.
func (s *Servo) FreqPPM() float64 { return s.phi * 1e6 }

// PhaseSigma is the standard deviation of Phase(raw), extrapolated.
func (s *Servo) PhaseSigma(raw time.Duration) time.Duration {
	dt := max((raw - s.raw).Seconds(), 0)
	v := s.p[0][0] + 2*dt*s.p[0][1] + dt*dt*s.p[1][1] + s.q*dt*dt*dt/3
	return time.Duration(math.Sqrt(max(v, 0)) * 1e9)
}

// FreqSigmaPPM is the standard deviation of FreqPPM.
func (s *Servo) FreqSigmaPPM() float64 { return math.Sqrt(max(s.p[1][1], 0)) * 1e6 }

// WanderPerRootSecond is the oscillator wander the servo currently assumes.
func (s *Servo) WanderPerRootSecond() float64 { return math.Sqrt(s.q) }
