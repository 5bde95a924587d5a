package ntpclient

import (
	"fmt"
	"time"
)

// selection is the outcome of one selection over a client's sources.
type selection struct {
	est    *Estimate // nil: no estimate (reason says why)
	reason string
	info   map[uint64]selInfo       // by source id
	phase  map[uint64]time.Duration // each candidate's filtered phase
}

type selInfo struct {
	selected  bool
	candidate bool // offered to the selection (usable, within the maximum distance)
	reason    string
}

// selectSources runs selection over srcs at the RAW time of the newest
// usable sample and says every source's part in it. The estimate is set
// if quorum sources agree.
func selectSources(srcs []*Source, quorum int, maxDistance time.Duration) selection {
	sel := selection{info: map[uint64]selInfo{}, phase: map[uint64]time.Duration{}}
	at, rmr, ok := newest(srcs, false)
	if !ok {
		sel.reason = "no usable source"
		return sel
	}
	var cands []Candidate
	var who []*Source
	for _, s := range srcs {
		if reason := s.unusable(); reason != "" {
			sel.info[s.id] = selInfo{reason: reason}
			continue
		}
		s.leap(at)
		out := s.filter.output(at)
		sel.phase[s.id] = out.Phase
		lambda := rootDistance(out)
		if lambda > maxDistance {
			sel.info[s.id] = selInfo{reason: fmt.Sprintf("root distance %v exceeds the maximum %v", lambda.Round(time.Microsecond), maxDistance)}
			continue
		}
		cands = append(cands, Candidate{Phase: out.Phase, RootDistance: lambda, Jitter: out.Jitter, Stratum: out.Best.Stratum, Leap: s.last.Leap})
		who = append(who, s)
	}
	r := Select(cands, quorum)
	for i, s := range who {
		sel.info[s.id] = selInfo{selected: r.Selected[i], candidate: true, reason: r.Reasons[i]}
	}
	if !r.OK {
		// The estimate is what the sources say now: an earlier one that
		// they no longer agree on must not outlive the agreement.
		sel.reason = r.Reason
		return sel
	}
	sel.est = &Estimate{
		Raw:          at,
		Offset:       r.Phase - rmr,
		RealMinusRaw: rmr,
		Error:        r.Error,
		Jitter:       r.Jitter,
		Sources:      r.Sources,
		Stratum:      r.Stratum,
		Leap:         r.Leap,
	}
	return sel
}

// forSample is the estimate a new sample of s makes, or nil: only a
// sample that takes part in the estimate makes a new one (a falseticker's
// or a far source's sample adds nothing but the others' projection to a
// later time).
func (sel selection) forSample(s *Source, smp Sample) *Estimate {
	if sel.est == nil || !sel.info[s.id].selected {
		return nil
	}
	est := *sel.est
	est.Sample = smp
	least, slack := s.floor.floor()
	est.SampleBound = (max(smp.Delay-least, 0) + slack) / 2
	est.SampleBias = sel.phase[s.id] - est.Phase()
	return &est
}

// rootDistance is λ (RFC 5905 §11.2): the server's root delay/2 and root
// dispersion, plus our delay/2, dispersion and jitter.
func rootDistance(out filterOut) time.Duration {
	return out.Best.RootDelay/2 + out.Best.RootDispersion + out.Delay/2 + out.Dispersion + out.Jitter
}

// newest is the RAW time and REALTIME − RAW of the newest sample of any
// usable source (of any source at all if all is set).
func newest(srcs []*Source, all bool) (at, rmr time.Duration, ok bool) {
	for _, s := range srcs {
		if s.filter.len() > 0 && (all || s.unusable() == "") {
			if last := s.filter.newest(); !ok || last.Raw > at {
				at, rmr, ok = last.Raw, last.RealMinusRaw, true
			}
		}
	}
	return
}
