package ntpclient

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Selection constants (RFC 5905 names in parentheses).
const (
	// DefaultMaxDistance is the largest root distance a source may have
	// (MAXDIST is 1 s in RFC 5905 §7.2; ntpd uses 1.5 s, which tolerates a
	// stratum-2 server behind a slow link).
	DefaultMaxDistance = 1500 * time.Millisecond
	// clusterMin is how many survivors the cluster algorithm keeps at
	// least (NMIN, §11.2.2).
	clusterMin = 3
	// combineLimit: a survivor whose root distance is more than this many
	// times the system peer's (plus combineSlack) is not averaged in, as
	// chrony's combinelimit (3, with its 100 µs reselectdist): a source
	// whose last good sample is old, projected over its age with an
	// uncertain frequency, would only add noise. The slack keeps
	// microsecond differences on a LAN from excluding anyone.
	combineLimit = 2
	combineSlack = 100e-6 // s
)

// Candidate is one source offered to selection: its filtered phase and
// root distance at the common RAW time of the selection.
type Candidate struct {
	// Phase is the source's time minus RAW (any frame common to all
	// candidates works: the selection only compares and averages).
	Phase time.Duration
	// RootDistance λ bounds the source's error: half the round trip to
	// the primary reference plus all dispersions and the jitter (§11.2).
	// Its correctness interval is Phase ± RootDistance.
	RootDistance time.Duration
	Jitter       time.Duration
	Stratum      uint8
	Leap         Leap
}

// Selection is the outcome of Select.
type Selection struct {
	OK     bool
	Reason string // why there is no estimate, when !OK

	Phase  time.Duration // combined phase of the survivors
	Error  time.Duration // bound on |Phase − truth| if a majority is right
	Jitter time.Duration
	// Low and High bound the intersection: the points that a majority
	// of the candidates' correctness intervals contain.
	Low, High time.Duration
	Sources   int // candidates that agree (truechimers); Selected marks those combined
	Stratum   uint8
	Leap      Leap
	// Selected and Reasons have one entry per candidate; Reasons says why
	// a candidate was not selected.
	Selected []bool
	Reasons  []string
}

// Select finds the candidates that agree and combines them: the
// intersection algorithm (RFC 5905 §11.2.1, Marzullo's algorithm as
// modified for NTP) rejects falsetickers, the cluster algorithm
// (§11.2.2) prunes the noisiest survivors down to clusterMin (or
// minSources), and the rest, bar those beyond the combine limit, are
// averaged with weights 1/λ (§11.2.3). There is an estimate only when at
// least minSources candidates agree.
// Select is pure.
func Select(cands []Candidate, minSources int) Selection {
	n := len(cands)
	sel := Selection{Selected: make([]bool, n), Reasons: make([]string, n)}
	minSources = max(minSources, 1)
	if n < minSources {
		sel.Reason = fmt.Sprintf("%d usable source%s, %d needed (min-sources)", n, plural(n), minSources)
		for i := range sel.Reasons {
			sel.Reasons[i] = "not enough usable sources to select from"
		}
		return sel
	}
	// Work in float seconds relative to the first candidate, so that
	// large phases (REALTIME is decades of seconds from RAW) lose nothing.
	base := cands[0].Phase
	theta := make([]float64, n)
	lambda := make([]float64, n)
	for i, c := range cands {
		theta[i] = seconds(c.Phase - base)
		lambda[i] = max(seconds(c.RootDistance), 1e-9)
	}

	low, high, ok := intersect(theta, lambda)
	if !ok {
		sel.Reason = fmt.Sprintf("no majority: the correctness intervals of the %d usable sources do not overlap enough to tell truechimers from falsetickers", n)
		for i := range sel.Reasons {
			sel.Reasons[i] = "no majority agrees"
		}
		return sel
	}
	sel.Low, sel.High = addSat(base, duration(low)), addSat(base, duration(high))
	var surv []int
	for i := range cands {
		if theta[i]+lambda[i] < low || theta[i]-lambda[i] > high {
			sel.Reasons[i] = fmt.Sprintf("falseticker: %s from where the majority agrees (its error bound %s does not reach it)",
				fmtSec(theta[i]-(low+high)/2), fmtAbs(lambda[i]))
			continue
		}
		surv = append(surv, i)
	}
	if len(surv) < minSources {
		sel.Reason = fmt.Sprintf("%d sources agree, %d needed (min-sources)", len(surv), minSources)
		for _, i := range surv {
			sel.Reasons[i] = "agrees, but too few sources do"
		}
		return sel
	}

	sel.Sources = len(surv)

	// System peer first: lowest stratum, then smallest root distance.
	merit := func(i int) float64 { return float64(cands[i].Stratum)*DefaultMaxDistance.Seconds() + lambda[i] }
	slices.SortStableFunc(surv, func(a, b int) int {
		switch ma, mb := merit(a), merit(b); {
		case ma < mb:
			return -1
		case ma > mb:
			return 1
		}
		return 0
	})

	// Cluster: drop the survivor whose offset is farthest from the others
	// (selection jitter), weighted by its root distance as ntpd does, while
	// its selection jitter exceeds the smallest source jitter.
	keep := max(clusterMin, minSources)
	for len(surv) > keep {
		worst, worstPhi, worstMetric := -1, -1.0, -1.0
		minPsi := math.Inf(1)
		for _, i := range surv {
			var s float64
			for _, j := range surv {
				d := theta[i] - theta[j]
				s += d * d
			}
			p := math.Sqrt(s / float64(len(surv)-1))
			if m := p * lambda[i]; m > worstMetric {
				worst, worstPhi, worstMetric = i, p, m
			}
			minPsi = min(minPsi, seconds(cands[i].Jitter))
		}
		if worstPhi <= minPsi {
			break
		}
		sel.Reasons[worst] = fmt.Sprintf("outlier: %s from the other survivors, more than their jitter (cluster algorithm)", fmtSec(worstPhi))
		surv = slices.DeleteFunc(surv, func(i int) bool { return i == worst })
	}

	sys := surv[0]
	surv = slices.DeleteFunc(surv, func(i int) bool {
		if lambda[i] > combineLimit*(lambda[sys]+combineSlack) {
			sel.Reasons[i] = fmt.Sprintf("agrees, but not combined: root distance %s is over %d× the best source's %s",
				fmtAbs(lambda[i]), combineLimit, fmtAbs(lambda[sys]))
			return true
		}
		return false
	})

	// Combine with weights 1/λ.
	var sw, st float64
	for _, i := range surv {
		sw += 1 / lambda[i]
		st += theta[i] / lambda[i]
	}
	offset := st / sw
	var sj float64
	for _, i := range surv {
		d := theta[i] - theta[sys]
		sj += d * d / lambda[i]
	}
	psiS := math.Sqrt(sj / sw)
	psiP := seconds(cands[sys].Jitter)

	leaps := map[Leap]int{}
	stratum := uint8(255)
	for _, i := range surv {
		sel.Selected[i] = true
		leaps[cands[i].Leap]++
		stratum = min(stratum, cands[i].Stratum)
	}
	sel.Leap = LeapNone
	for l, c := range leaps {
		if 2*c > len(surv) {
			sel.Leap = l
		}
	}
	sel.OK = true
	sel.Phase = addSat(base, duration(offset))
	sel.Error = duration(max(high-offset, offset-low, 0))
	sel.Jitter = duration(math.Sqrt(psiP*psiP + psiS*psiS))
	sel.Stratum = min(stratum, 15) + 1
	return sel
}

// intersect is the intersection algorithm of RFC 5905 §11.2.1: the
// interval [low, high] of the points contained in the correctness
// intervals of at least n−f candidates, for the smallest number f of
// falsetickers with 2f < n. The truth lies in it whenever fewer than f+1
// intervals miss the truth.
//
// The RFC's version also rejects an f for which more than f midpoints
// (offsets) lie outside [low, high]. That test is left out: honest
// sources with offsets anywhere within their error bounds can fail it
// (the intersection of many intervals is narrow), and it is not needed
// for the truth to be in [low, high].
func intersect(theta, lambda []float64) (low, high float64, ok bool) {
	type edge struct {
		v float64
		t int // −1 lower end, +1 upper end
	}
	n := len(theta)
	edges := make([]edge, 0, 2*n)
	for i := range theta {
		edges = append(edges, edge{theta[i] - lambda[i], -1}, edge{theta[i] + lambda[i], 1})
	}
	// Ascending, lower ends first at equal values, so that touching
	// intervals count as overlapping.
	slices.SortFunc(edges, func(a, b edge) int {
		switch {
		case a.v < b.v:
			return -1
		case a.v > b.v:
			return 1
		}
		return a.t - b.t
	})
	for f := 0; 2*f < n; f++ {
		chime := 0
		low, high = math.Inf(1), math.Inf(-1)
		for _, e := range edges {
			chime -= e.t
			if chime >= n-f {
				low = e.v
				break
			}
		}
		chime = 0
		for k := len(edges) - 1; k >= 0; k-- {
			chime += edges[k].t
			if chime >= n-f {
				high = edges[k].v
				break
			}
		}
		if low <= high {
			return low, high, true
		}
	}
	return 0, 0, false
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// fmtSec prints seconds with a sign, at a precision that suits the size.
func fmtSec(s float64) string {
	if math.Abs(s) >= 1 {
		return fmt.Sprintf("%+.3fs", s)
	}
	return fmt.Sprintf("%+.6fs", s)
}

// fmtAbs prints a magnitude in seconds.
func fmtAbs(s float64) string {
	if s >= 1 {
		return fmt.Sprintf("%.3fs", s)
	}
	return fmt.Sprintf("%.6fs", s)
}
