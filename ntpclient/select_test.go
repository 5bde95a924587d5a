package ntpclient

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// randomScenario builds candidates around a true phase: truechimers whose
// correctness intervals contain the truth, and fewer than half
// falsetickers whose intervals do not.
func randomScenario(rng *rand.Rand) (cands []Candidate, truth time.Duration, isFalse []bool) {
	truth = time.Duration(rng.Int64N(int64(200*365*24*time.Hour))) - 100*365*24*time.Hour
	n := 1 + rng.IntN(10)
	nf := rng.IntN((n + 1) / 2) // 2·nf < n
	if 2*nf >= n {
		nf = 0
	}
	clustered := rng.IntN(2) == 0 // falsetickers agreeing with each other
	clusterAt := truth + time.Duration(rng.Int64N(int64(2*time.Hour))) - time.Hour
	for i := 0; i < n; i++ {
		lambda := time.Duration(1+rng.Int64N(int64(50*time.Millisecond))) + time.Microsecond
		c := Candidate{RootDistance: lambda, Jitter: time.Duration(rng.Int64N(int64(lambda))), Stratum: uint8(1 + rng.IntN(4))}
		if i < nf {
			at := clusterAt
			if !clustered {
				at = truth + time.Duration(rng.Int64N(int64(2*time.Hour))) - time.Hour
			}
			// Keep the interval off the truth.
			if d := at - truth; d.Abs() <= lambda {
				at = truth + 2*lambda + time.Second
			}
			c.Phase = at
		} else {
			c.Phase = truth + time.Duration((rng.Float64()*2-1)*float64(lambda))
		}
		cands = append(cands, c)
		isFalse = append(isFalse, i < nf)
	}
	// Shuffle, keeping track of which are which.
	perm := rng.Perm(n)
	sc, sf := make([]Candidate, n), make([]bool, n)
	for i, p := range perm {
		sc[i], sf[i] = cands[p], isFalse[p]
	}
	return sc, truth, sf
}

// With fewer than half falsetickers, the truth is within the estimate's
// error bound, every falseticker whose interval misses the majority is
// rejected, and the bookkeeping is complete.
func TestSelectProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(42, 43))
	for iter := 0; iter < 20000; iter++ {
		cands, truth, isFalse := randomScenario(rng)
		n := len(cands)
		nf := 0
		for _, f := range isFalse {
			if f {
				nf++
			}
		}
		minSources := 1 + rng.IntN(n-nf)
		sel := Select(cands, minSources)
		if len(sel.Selected) != n || len(sel.Reasons) != n {
			t.Fatalf("%d candidates, %d/%d entries", n, len(sel.Selected), len(sel.Reasons))
		}
		if !sel.OK {
			// Only acceptable if the truechimers cannot make the quorum
			// after clustering keeps max(3, minSources): never here, since
			// all n−nf truechimers overlap at the truth.
			t.Fatalf("iter %d: no estimate (%s) with %d truechimers of %d, min %d", iter, sel.Reason, n-nf, n, minSources)
		}
		if d := sel.Phase - truth; d.Abs() > sel.Error {
			t.Fatalf("iter %d: |estimate − truth| = %v exceeds the error bound %v", iter, d.Abs(), sel.Error)
		}
		if sel.Low > truth || sel.High < truth {
			t.Fatalf("iter %d: truth outside the intersection", iter)
		}
		count := 0
		for i := range cands {
			if sel.Selected[i] {
				count++
				if sel.Reasons[i] != "" {
					t.Fatalf("selected with a reason %q", sel.Reasons[i])
				}
				if isFalse[i] {
					// A falseticker may survive only if its interval reaches the intersection.
					c := cands[i]
					if c.Phase+c.RootDistance < sel.Low || c.Phase-c.RootDistance > sel.High {
						t.Fatalf("iter %d: falseticker selected", iter)
					}
				}
			} else if sel.Reasons[i] == "" {
				t.Fatalf("iter %d: candidate %d rejected without a reason", iter, i)
			}
		}
		if count > sel.Sources || count == 0 || sel.Sources < minSources {
			t.Fatalf("iter %d: %d selected, Sources %d, min %d", iter, count, sel.Sources, minSources)
		}
	}
}

// The outcome does not depend on the order of the candidates.
func TestSelectOrderInvariant(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for iter := 0; iter < 2000; iter++ {
		cands, _, _ := randomScenario(rng)
		a := Select(cands, 1)
		perm := rng.Perm(len(cands))
		shuffled := make([]Candidate, len(cands))
		for i, p := range perm {
			shuffled[i] = cands[p]
		}
		b := Select(shuffled, 1)
		if d := a.Phase - b.Phase; d.Abs() > 10*time.Nanosecond || a.Sources != b.Sources || a.Low != b.Low || a.High != b.High {
			t.Fatalf("iter %d: %v/%d vs %v/%d after shuffling", iter, a.Phase, a.Sources, b.Phase, b.Sources)
		}
		for i, p := range perm {
			if b.Selected[i] != a.Selected[p] {
				t.Fatalf("iter %d: selection changed with the order", iter)
			}
		}
	}
}

func TestSelectCases(t *testing.T) {
	ms := time.Millisecond
	c := func(phase, lambda time.Duration) Candidate {
		return Candidate{Phase: phase, RootDistance: lambda, Jitter: lambda / 4, Stratum: 2}
	}
	for _, tc := range []struct {
		name     string
		cands    []Candidate
		min      int
		ok       bool
		selected []bool
		reason   string
	}{
		{"one", []Candidate{c(5*ms, ms)}, 1, true, []bool{true}, ""},
		{"two disagree", []Candidate{c(0, ms), c(time.Hour, ms)}, 1, false, nil, "no majority"},
		{"falseticker named", []Candidate{c(0, ms), c(time.Hour, ms), c(ms/2, ms), c(-ms/2, ms)}, 3, true, []bool{true, false, true, true}, ""},
		{"two agreeing falsetickers among five", []Candidate{c(time.Hour, ms), c(0, ms), c(time.Hour+ms/4, ms), c(ms/2, ms), c(-ms/3, ms)}, 3, true,
			[]bool{false, true, false, true, true}, ""},
		{"quorum not met", []Candidate{c(0, ms), c(time.Hour, ms), c(ms/2, ms)}, 3, false, nil, "2 sources agree, 3 needed"},
		{"too few candidates", []Candidate{c(0, ms)}, 2, false, nil, "1 usable source, 2 needed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sel := Select(tc.cands, tc.min)
			if sel.OK != tc.ok {
				t.Fatalf("OK %v (%s)", sel.OK, sel.Reason)
			}
			if !tc.ok {
				if !strings.Contains(sel.Reason, tc.reason) {
					t.Errorf("reason %q, want %q", sel.Reason, tc.reason)
				}
				return
			}
			if !slices.Equal(sel.Selected, tc.selected) {
				t.Errorf("selected %v, want %v (%q)", sel.Selected, tc.selected, sel.Reasons)
			}
			for i, s := range tc.selected {
				if !s && !strings.HasPrefix(sel.Reasons[i], "falseticker") {
					t.Errorf("candidate %d: reason %q", i, sel.Reasons[i])
				}
			}
			if d := sel.Phase - tc.cands[0].Phase; tc.selected[0] && d.Abs() > ms {
				t.Errorf("phase %v", sel.Phase)
			}
		})
	}
}
