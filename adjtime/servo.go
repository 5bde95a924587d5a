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
// frequency error).
//
// The oscillator is modelled as a random walk of frequency (wander). How
// much it wanders is not known in advance and differs by orders of
// magnitude between machines, so the Servo runs a bank of two-state
// Kalman filters, one per wander from 1e-11 to 1e-7 per √s, scores each
// by how well it predicted the measurements (exponentially forgetting),
// and reports the best: multiple-model adaptive estimation.
//
// Measurements are bounded, not Gaussian: an NTP exchange's offset is off
// by at most half its delay excess over the path's minimum. The filters
// truncate their prior to that interval and match the result back to a
// Gaussian (assumed density filtering), which uses what a bound says and a
// variance cannot.
//
// A Servo is a pure value: no clock, no I/O. Times are RAW readings.
type Servo struct {
	init   bool
	anchor time.Duration // phases are kept relative to this, in float64 seconds
	raw    time.Duration // RAW time of the filters' state
	bank   []kalman
	score  []float64 // forgetting sum of log predictive likelihoods
	best   int
	n      int
}

type kalman struct {
	q     float64 // frequency random-walk intensity, 1/s (wander² per s)
	theta float64 // phase relative to the anchor, s
	phi   float64 // frequency, s/s
	p     [2][2]float64
}

// ServoConfig seeds a Servo.
type ServoConfig struct {
	// FreqPPM is the starting frequency (true minus raw rate, ppm), e.g.
	// from the drift file; FreqKnown says whether it is worth trusting.
	FreqPPM   float64
	FreqKnown bool
}

const (
	// forget: the scores remember about the last 1/(1-forget) measurements.
	forget = 0.98
	// warmup is how many measurements the models take before they are scored.
	warmup = 16
	// minLike caps what one surprising measurement costs a model (an
	// outlier must not decide the wander for hours); jumpLike is what every
	// model scores for a jump of the servers' time.
	minLike  = -20
	jumpLike = minLike
	// boundSlack widens bounds for timestamping noise.
	boundSlack = 0.2e-6
	// wanderTemper tempers the models' evidence (likelihood to this power)
	// where WanderUpper sets how long the clock goes unobserved: a model of
	// too little wander can lead by chance over the ~50 measurements the
	// scores remember, early on especially, and polling on it let the clock
	// drift 155 µs unseen (chrony's model, seed 42). At 1/4, 100 seeds of
	// that model: worst 53 µs instead of 79 µs, for 450 queries a day
	// instead of 350.
	wanderTemper = 0.25
	// priorGate: a bound further than this many of the prior's standard
	// deviations from it is taken for a disagreement, not a truncation
	// (a Gaussian passes 3 σ one time in 740). Early on the internet path a
	// delay floor learnt from two or three samples made bounds too tight
	// by ms; truncated to them within 6 σ the servo learnt +1317 ppm for
	// a −15 ppm clock in 12 s (the scenario matrix, KoD, seed 3).
	priorGate = 3
	// freqUnknown is the frequency's variance when nothing is known: anything
	// the kernel can compensate.
	freqUnknown = 500e-6 * 500e-6
	// edgeSigma softens the edges of a bound: the path's minimum delay, from
	// which the bound is measured, is itself an estimate.
	edgeSigma = 1.5e-6
)

// Wanders the bank covers, per √s: a very stable oscillator to a poor one
// in a room whose temperature swings.
var bankWander = []float64{1e-11, 3e-11, 1e-10, 3e-10, 1e-9, 3e-9, 1e-8, 3e-8, 1e-7}

// NewServo returns a servo that has seen no estimate yet.
func NewServo(cfg ServoConfig) *Servo {
	s := &Servo{}
	pff := freqUnknown
	if cfg.FreqKnown {
		pff = sq(5e-6)
	}
	for _, w := range bankWander {
		k := kalman{q: w * w, phi: cfg.FreqPPM * 1e-6}
		k.p[1][1] = pff
		s.bank = append(s.bank, k)
		s.score = append(s.score, 0)
	}
	s.best = len(bankWander) / 2
	return s
}

func sq(x float64) float64 { return x * x }

// Ready reports whether the servo has taken a measurement.
func (s *Servo) Ready() bool { return s.init }

// Update takes one measurement: true − RAW was within ±half of phase at
// RAW time raw. It returns the innovation of the reported filter
// (measured minus predicted phase) in seconds.
func (s *Servo) Update(raw, phase, half time.Duration) float64 {
	h := max(half.Seconds(), 0) + boundSlack
	if !s.init {
		s.init = true
		s.anchor = phase
		s.raw = raw
		for i := range s.bank {
			s.bank[i].theta = 0
			s.bank[i].p[0][0] = h * h / 3
		}
		s.n = 1
		return 0
	}
	dt := (raw - s.raw).Seconds()
	if dt > 0 {
		s.raw = raw
	} else {
		dt = 0
	}
	z := (phase - s.anchor).Seconds()
	innov := z - (s.bank[s.best].theta + s.bank[s.best].phi*dt)
	for i := range s.bank {
		k := &s.bank[i]
		k.predict(dt)
		like := k.update(z, h, dt, s.n)
		// While the frequency is still being learned every model is
		// surprised, the fast-wandering ones least: no scoring yet.
		if s.n > warmup {
			s.score[i] = forget*s.score[i] + like
		}
	}
	s.n++
	for i := range s.score {
		if s.score[i] > s.score[s.best] {
			s.best = i
		}
	}
	return innov
}

func (k *kalman) predict(dt float64) {
	if dt <= 0 {
		return
	}
	k.theta += k.phi * dt
	p00, p01, p11 := k.p[0][0], k.p[0][1], k.p[1][1]
	k.p[0][0] = p00 + 2*dt*p01 + dt*dt*p11 + k.q*dt*dt*dt/3
	k.p[0][1] = p01 + dt*p11 + k.q*dt*dt/2
	k.p[1][0] = k.p[0][1]
	k.p[1][1] = p11 + k.q*dt
}

// update takes z known to be within about ±h of the phase, and returns
// the log of how likely the filter found it. The bound's edges are soft
// (edgeSigma): the path's minimum delay is itself only estimated.
func (k *kalman) update(z, h, dt float64, n int) float64 {
	mu, v := k.theta, k.p[0][0]
	sd := math.Sqrt(v)
	// Where both the prior and the bound have mass, for the quadrature.
	lo := math.Max(mu-7*sd, z-h-5*edgeSigma)
	hi := math.Min(mu+7*sd, z+h+5*edgeSigma)
	if n < 3 || hi-lo <= 0 || math.Abs(z-mu) > h+priorGate*sd+6*edgeSigma {
		// Early, or the bound and the prior disagree (the path changed, the
		// prior was wrong, the bound was too tight): take the measurement
		// as Gaussian. Truncating the prior to the far edge of a box it
		// hardly reaches would leave it sure of that edge, and through the
		// covariance sure of a frequency learnt from it.
		r := h*h/3 + edgeSigma*edgeSigma
		innov := z - mu
		sv := v + r
		if n >= 3 && math.Abs(innov) > 20*math.Sqrt(sv) && math.Abs(innov) > 1e-3 {
			// Far beyond any noise: the servers' time moved (a new source,
			// a step upstream), or the frequency is wrong by innov/dt (it
			// was learnt from bounds that were too tight). Start the phase
			// over; keep the frequency, but no surer than either allows, so
			// that the next polls relearn a wrong one instead of taking
			// every poll's innovation for a jump.
			k.theta = z
			k.p[0][0] = r
			k.p[0][1], k.p[1][0] = 0, 0
			if dt > 0 {
				k.p[1][1] = max(k.p[1][1], min(sq(innov/dt), freqUnknown))
			}
			return jumpLike // says nothing about which model is right
		}
		k0, k1 := v/sv, k.p[1][0]/sv
		k.theta += k0 * innov
		k.phi += k1 * innov
		p00, p01, p11 := k.p[0][0], k.p[0][1], k.p[1][1]
		k.p[0][0] = (1 - k0) * p00
		k.p[0][1] = (1 - k0) * p01
		k.p[1][0] = k.p[0][1]
		k.p[1][1] = p11 - k1*p01
		return max(-0.5*(innov*innov/sv)-0.5*math.Log(2*math.Pi*sv), minLike)
	}
	// The posterior of the phase: prior × soft box, by quadrature over
	// where both have mass.
	const steps = 96
	dx := (hi - lo) / steps
	var w0, w1, w2 float64
	for i := 0; i <= steps; i++ {
		x := lo + float64(i)*dx
		l := normCDF((z+h-x)/edgeSigma) - normCDF((z-h-x)/edgeSigma)
		wt := math.Exp(-sq(x-mu)/(2*v)) * l
		if i == 0 || i == steps {
			wt /= 2
		}
		w0 += wt
		w1 += wt * x
		w2 += wt * x * x
	}
	if w0 <= 0 {
		return minLike // (the prior and the bound have no mass in common)
	}
	m := w1 / w0
	vt := max(w2/w0-m*m, dx*dx/12, 1e-20)
	// Predictive density of z: prior · box / (2h), integrated.
	like := max(math.Log(w0*dx/(math.Sqrt(2*math.Pi*v)*2*h)), minLike)
	// The frequency follows the phase through their covariance.
	g := k.p[1][0] / v
	k.theta = m
	k.phi += g * (m - mu)
	pff := k.p[1][1] - k.p[1][0]*k.p[1][0]/v + g*g*vt
	k.p[0][0] = vt
	k.p[0][1] = g * vt
	k.p[1][0] = k.p[0][1]
	k.p[1][1] = max(pff, 1e-30)
	return like
}

func normPDF(x float64) float64 { return math.Exp(-x*x/2) / math.Sqrt(2*math.Pi) }
func normCDF(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }

// weights are the models' posterior probabilities.
func (s *Servo) weights() []float64 {
	w := make([]float64, len(s.score))
	sum := 0.0
	for i, sc := range s.score {
		w[i] = math.Exp(sc - s.score[s.best])
		sum += w[i]
	}
	for i := range w {
		w[i] /= sum
	}
	return w
}

// Phase is the estimated true − RAW at RAW time raw: the models' average,
// weighted by how well each has been predicting.
func (s *Servo) Phase(raw time.Duration) time.Duration {
	dt := (raw - s.raw).Seconds()
	ph := 0.0
	for i, w := range s.weights() {
		ph += w * (s.bank[i].theta + s.bank[i].phi*dt)
	}
	return s.anchor + time.Duration(math.Round(ph*1e9))
}

// FreqPPM is the estimated rate of true time against RAW, in ppm: the
// frequency the kernel must run CLOCK_REALTIME at to keep pace.
func (s *Servo) FreqPPM() float64 {
	f := 0.0
	for i, w := range s.weights() {
		f += w * s.bank[i].phi
	}
	return f * 1e6
}

// PhaseSigma is the standard deviation of Phase(raw), extrapolated.
func (s *Servo) PhaseSigma(raw time.Duration) time.Duration {
	k := &s.bank[s.best]
	dt := max((raw - s.raw).Seconds(), 0)
	v := k.p[0][0] + 2*dt*k.p[0][1] + dt*dt*k.p[1][1] + k.q*dt*dt*dt/3
	return time.Duration(math.Sqrt(max(v, 0)) * 1e9)
}

// FreqSigmaPPM is the standard deviation of FreqPPM.
func (s *Servo) FreqSigmaPPM() float64 { return math.Sqrt(max(s.bank[s.best].p[1][1], 0)) * 1e6 }

// WanderPerRootSecond is the oscillator wander of the filter reported.
func (s *Servo) WanderPerRootSecond() float64 { return math.Sqrt(s.bank[s.best].q) }

// WanderUpper is a cautious figure for the wander: the mean of the models'
// wander variance under their tempered posterior (wanderTemper), which the
// models that wander more dominate as long as they are at all plausible. Deciding how long the clock may go
// unobserved, erring towards too much wander costs packets; erring the
// other way costs accuracy, and polls less often make the models harder to
// tell apart.
func (s *Servo) WanderUpper() float64 {
	w := make([]float64, len(s.score))
	sum := 0.0
	for i, sc := range s.score {
		w[i] = math.Exp(wanderTemper * (sc - s.score[s.best]))
		sum += w[i]
	}
	q := 0.0
	for i := range w {
		q += w[i] / sum * s.bank[i].q
	}
	return math.Sqrt(q)
}

// Shift moves the servo's time frame by d: after a suspend RAW stood still
// while true time went on, so true − RAW jumped by about the time asleep.
// The frequency is kept; sigma widens the phase by how well d is known
// (the kernel measures a suspend with the RTC, to about a second).
func (s *Servo) Shift(d, sigma time.Duration) {
	if !s.init {
		return
	}
	s.anchor += d
	v := sq(sigma.Seconds())
	for i := range s.bank {
		s.bank[i].p[0][0] += v
	}
}
