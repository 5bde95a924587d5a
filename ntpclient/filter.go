package ntpclient

import (
	"errors"
	"math"
	"time"
)

// Clock filter constants. RFC 5905 names in parentheses.
const (
	filterStages = 8 // samples the offset is chosen from (NSTAGE, §10)
	// The frequency is fitted over a longer history: up to fitSamples
	// samples spanning at most fitSpan, since the oscillator's frequency
	// changes slowly but an 8-stage fit is too noisy to project the
	// minimum-delay sample over its age.
	fitSamples = 32
	fitSpan    = 4 * time.Hour
	// phi is how fast a sample's dispersion grows with age, s/s. RFC 5905
	// uses 15 ppm (PHI, §7.2) because the disciplined clock may be off by
	// its frequency tolerance; here the frequency is fitted and its
	// standard error is added separately, so phi covers only how much it
	// may wander (temperature) since the fit.
	phi       = 1e-6
	spikeGate = 3 // popcorn gate in jitters (SGATE, A.5.2)
	pollGate  = 4 // a sample "fits" for poll adaptation within this many jitters (PGATE, A.5.5.7)
	// The Phase frame drifts with the oscillator's frequency error, which
	// can be hundreds of ppm: the fitted frequency starts from a prior of
	// 0 ± priorFreq and is clamped to ±freqLimit.
	priorFreq = 500e-6
	freqLimit = 1000e-6
	// minSigma is the smallest noise a sample is credited with: the
	// reading of t1 in user space against a kernel receive stamp.
	minSigma = 1e-6
)

// Bounds on sample fields, so that arithmetic on them cannot overflow.
const (
	maxSampleOffset = 68 * 365 * 24 * time.Hour  // an NTP era is ±68 years
	maxRealMinusRaw = 100 * 365 * 24 * time.Hour // REALTIME − RAW: years since 1970 and then some
	maxSampleDelay  = 16 * time.Second           // MAXDISP: a longer round trip tells nothing
)

var errSample = errors.New("sample out of range")

// validSample rejects samples whose fields no real exchange produces.
func validSample(s Sample) error {
	switch {
	case s.Offset < -maxSampleOffset || s.Offset > maxSampleOffset,
		s.RealMinusRaw < -maxRealMinusRaw || s.RealMinusRaw > maxRealMinusRaw,
		s.Raw < 0 || s.Raw > maxRealMinusRaw,
		s.Delay < 0 || s.Delay > maxSampleDelay,
		s.RootDelay < 0 || s.RootDelay > maxSampleDelay,
		s.RootDispersion < 0 || s.RootDispersion > maxSampleDelay,
		s.Precision < 0 || s.Precision > time.Second:
		return errSample
	}
	return nil
}

// filter is the per-source clock filter (RFC 5905 §10), kept in the
// Phase frame: each sample's server time against CLOCK_MONOTONIC_RAW,
// which slewing does not move. The frame drifts with the oscillator's
// frequency error, so the filter fits that frequency over its stages and
// projects every stage to a common RAW time before comparing them.
type filter struct {
	hist   []Sample // oldest first: the fit; the last filterStages are the stages
	spike  bool     // the previous sample was suppressed as a spike
	spikes int      // samples suppressed so far
}

// filterOut is a source's filtered measurement at one RAW time.
type filterOut struct {
	At         time.Duration // RAW time the values hold at
	Phase      time.Duration // server time − RAW, projected to At
	Delay      time.Duration // of the chosen sample
	Dispersion time.Duration // precision plus growth with the chosen sample's age
	Jitter     time.Duration // RMS of the stages about the chosen one
	Freq       float64       // fitted rate of the phase (s/s)
	FreqErr    float64       // its standard error
	Best       Sample        // the chosen sample
	N          int           // stages
}

// addResult says what the filter did with a sample.
type addResult int

const (
	added    addResult = iota // added; too few stages to judge it
	addedFit                  // added, within pollGate jitters of the prediction
	addedOff                  // added, but farther from the prediction
	spike                     // suppressed as a popcorn spike
	stale                     // not newer than the newest stage (RFC 5905: use a sample only once)
	invalid                   // out of range
)

// add offers a sample to the filter.
func (f *filter) add(s Sample) addResult {
	if validSample(s) != nil {
		return invalid
	}
	n := len(f.hist)
	if n > 0 && s.Raw <= f.hist[n-1].Raw {
		return stale
	}
	fits := false
	if n >= 4 {
		// Popcorn spike suppression (RFC 5905 A.5.2), done per sample: a
		// sample far from what the stages predict, by more than its excess
		// delay can explain, is dropped unless the previous one was too
		// (two in a row is a change, not a spike).
		out := f.output(s.Raw)
		resid := math.Abs(seconds(s.Phase() - out.Phase))
		// The prediction is only as good as the fitted frequency over
		// the gap since the newest stage.
		gap := seconds(s.Raw - f.newest().Raw)
		jitter := max(seconds(out.Jitter), sigma0(s)) + out.FreqErr*gap
		excess := seconds(s.Delay-f.minDelay()) / 2
		if resid > spikeGate*jitter+max(excess, 0) && !f.spike {
			f.spike = true
			f.spikes++
			return spike
		}
		fits = resid <= pollGate*jitter
	}
	f.spike = false
	f.hist = append(f.hist, s)
	drop := 0
	for len(f.hist)-drop > fitSamples || s.Raw-f.hist[drop].Raw > fitSpan {
		drop++
	}
	f.hist = append(f.hist[:0], f.hist[drop:]...)
	switch {
	case n < 4:
		return added
	case fits:
		return addedFit
	}
	return addedOff
}

// stages are the samples the offset is chosen from.
func (f *filter) stages() []Sample { return f.hist[max(0, len(f.hist)-filterStages):] }

// len is the number of stages.
func (f *filter) len() int { return len(f.stages()) }

// newest is the newest sample; the filter must not be empty.
func (f *filter) newest() Sample { return f.hist[len(f.hist)-1] }

func (f *filter) minDelay() time.Duration {
	d := time.Duration(math.MaxInt64)
	for _, s := range f.hist {
		d = min(d, s.Delay)
	}
	return d
}

// sigma0 is the noise floor of a sample: its server's precision, at least minSigma.
func sigma0(s Sample) float64 { return max(minSigma, seconds(s.Precision)) }

// output is the filtered measurement projected to RAW time at.
//
// The stages are fitted with a straight line (weighted least squares, each
// weighted by how much its delay exceeds the minimum, since queueing is
// what corrupts offsets); the slope is the oscillator's frequency error as
// seen against this server, combined with a prior of 0 ± priorFreq so that
// a short burst cannot claim a wild frequency. Each stage is projected to
// at with that slope, and the stage with the smallest error bound there
// (half its delay plus its dispersion, which grows with its age) is
// chosen: RFC 5905's minimum-delay sample, aged.
func (f *filter) output(at time.Duration) filterOut {
	n := len(f.hist)
	if n == 0 {
		return filterOut{At: at}
	}
	newest := f.hist[n-1]
	dmin := f.minDelay()
	x := make([]float64, n)  // RAW relative to at, s
	y := make([]float64, n)  // phase relative to newest, s
	w := make([]float64, n)  // weights
	s0 := make([]float64, n) // noise floors
	// A sample's offset error differs from the minimum-delay sample's by at
	// most half its excess delay. The minimum-delay sample itself is not
	// exact either (the true minimum delay is unknown): every sample is
	// credited with at least the mean half-excess, which for queueing
	// delays is about the spread of the offsets. chrony weights its
	// regression the same way, by distance over the residual deviation.
	excess := make([]float64, n)
	for i, s := range f.hist {
		excess[i] = seconds(s.Delay-dmin) / 2
	}
	floor := mean(excess)
	var sw, sx, sy float64
	for i, s := range f.hist {
		x[i] = seconds(s.Raw - at)
		y[i] = seconds(s.Offset-newest.Offset) + seconds(s.RealMinusRaw-newest.RealMinusRaw)
		s0[i] = sigma0(s)
		sig := excess[i] + max(s0[i], floor)
		w[i] = 1 / (sig * sig)
		sw += w[i]
		sx += w[i] * x[i]
		sy += w[i] * y[i]
	}
	mx, my := sx/sw, sy/sw
	var sxx, sxy float64
	for i := range x {
		sxx += w[i] * (x[i] - mx) * (x[i] - mx)
		sxy += w[i] * (x[i] - mx) * (y[i] - my)
	}
	freq, varF := 0.0, priorFreq*priorFreq
	if n >= 3 && sxx > 0 && !math.IsInf(sxx, 0) {
		fls := sxy / sxx
		var ssr float64
		for i := range x {
			r := y[i] - my - fls*(x[i]-mx)
			ssr += w[i] * r * r
		}
		// Residuals in units of the a-priori noise, and Student's t for
		// n−2 degrees of freedom: three samples say little about a
		// slope, as chrony's regression knows (RGR_GetTCoef).
		scale := max(1, ssr/float64(n-2))
		t := studentT(n - 2)
		varLS := scale / sxx * t * t
		p := priorFreq * priorFreq
		freq = fls * p / (p + varLS)
		varF = p * varLS / (p + varLS)
	}
	if math.IsNaN(freq) || math.IsNaN(varF) {
		freq, varF = 0, priorFreq*priorFreq
	}
	freq = max(-freqLimit, min(freqLimit, freq))
	sigF := math.Sqrt(varF)

	first := max(0, n-filterStages)
	best, bestLambda := n-1, math.Inf(1)
	proj := make([]float64, n)
	for i := n - 1; i >= first; i-- {
		age := -x[i]
		proj[i] = y[i] + freq*age
		lambda := seconds(f.hist[i].Delay)/2 + s0[i] + (phi+sigF)*math.Abs(age)
		if lambda < bestLambda {
			best, bestLambda = i, lambda
		}
	}
	var jit float64
	if k := n - first; k >= 2 {
		for i := first; i < n; i++ {
			d := proj[i] - proj[best]
			jit += d * d
		}
		jit = math.Sqrt(jit / float64(k-1))
	}
	jit = max(jit, s0[best])
	return filterOut{
		At:         at,
		Phase:      addSat(newest.Phase(), duration(proj[best])),
		Delay:      f.hist[best].Delay,
		Dispersion: duration(s0[best] + (phi+sigF)*math.Abs(x[best])),
		Jitter:     duration(jit),
		Freq:       freq,
		FreqErr:    sigF,
		Best:       f.hist[best],
		N:          n - first,
	}
}

func seconds(d time.Duration) float64 { return d.Seconds() }

// duration converts seconds to a Duration, saturating instead of overflowing.
func duration(s float64) time.Duration {
	switch {
	case math.IsNaN(s):
		return 0
	case s >= math.MaxInt64/1e9:
		return math.MaxInt64
	case s <= math.MinInt64/1e9:
		return math.MinInt64
	}
	return time.Duration(math.Round(s * 1e9))
}

// addSat is a + b, saturating instead of wrapping around.
func addSat(a, b time.Duration) time.Duration {
	c := a + b
	switch {
	case a > 0 && b > 0 && c < 0:
		return math.MaxInt64
	case a < 0 && b < 0 && c >= 0:
		return math.MinInt64
	}
	return c
}

func mean(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(max(len(v), 1))
}

// studentT is the two-sided 95 % quantile of Student's t distribution
// with dof degrees of freedom.
func studentT(dof int) float64 {
	table := [...]float64{0, 12.71, 4.30, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26, 2.23,
		2.20, 2.18, 2.16, 2.14, 2.13, 2.12, 2.11, 2.10, 2.09, 2.09,
		2.08, 2.07, 2.07, 2.06, 2.06, 2.06, 2.05, 2.05, 2.05, 2.04}
	if dof < len(table) {
		return table[max(dof, 1)]
	}
	return 1.96
}
