package ntpclient

import (
	"fmt"
	"strings"
	"time"
)

// RefIDString formats a reference id as NTP tools do: the kiss code at
// stratum 0, the reference clock's name at stratum 1 (".GPS."), and an
// IPv4 address (or the hash of an IPv6 one) above.
func RefIDString(stratum uint8, refID uint32) string {
	b := []byte{byte(refID >> 24), byte(refID >> 16), byte(refID >> 8), byte(refID)}
	if stratum <= 1 {
		name := strings.TrimRight(string(b), "\x00")
		printable := name != ""
		for _, c := range []byte(name) {
			printable = printable && c >= 32 && c <= 126
		}
		if printable {
			if stratum == 0 {
				return name
			}
			return "." + name + "."
		}
		if refID == 0 {
			return "-"
		}
	}
	return fmt.Sprintf("%d.%d.%d.%d", b[0], b[1], b[2], b[3])
}

// String names a leap indicator.
func (l Leap) String() string {
	switch l {
	case LeapNone:
		return "none"
	case LeapInsert:
		return "insert"
	case LeapDelete:
		return "delete"
	}
	return "unsynchronized"
}

// reports is the state of srcs (and of pools without members) at RAW time
// at, where REALTIME − RAW was rmr, with their parts in selection sel.
func reports(srcs []*Source, pools []*pool, sel selection, at, rmr time.Duration) []SourceReport {
	out := make([]SourceReport, 0, len(srcs)+len(pools))
	for _, s := range srcs {
		r := SourceReport{
			Source:   s.name,
			Addr:     s.addr,
			Stratum:  s.last.Stratum,
			RefID:    s.last.RefID,
			Leap:     s.last.Leap,
			KissCode: s.kiss,
			Reach:    s.reach,
			Poll:     s.interval(),
			Queries:  s.queries,
			Replies:  s.replies,
			Kisses:   s.kisses,
			Spikes:   s.filter.spikes,
		}
		if s.filter.len() > 0 {
			f := s.filter.output(at)
			r.Offset = f.Phase - rmr
			r.Delay = f.Delay
			r.Dispersion = f.Dispersion
			r.Jitter = f.Jitter
			r.RootDistance = rootDistance(f)
			r.Samples = f.N
			r.RootDelay, r.RootDispersion = f.Best.RootDelay, f.Best.RootDispersion
			r.LastSample = s.filter.newest().Raw
		}
		if u := s.unusable(); u != "" {
			r.Reason = u
		} else if info, ok := sel.info[s.id]; ok {
			r.Selected, r.Candidate, r.Reason = info.selected, info.candidate, info.reason
		}
		if !r.Selected && r.Reason == "" {
			r.Reason = "not selected yet"
		}
		out = append(out, r)
	}
	for _, p := range pools {
		members := 0
		for _, s := range srcs {
			if s.pool == p {
				members++
			}
		}
		if members == 0 {
			reason := "pool not resolved yet"
			if p.dnsErr != "" {
				reason = p.dnsErr
			}
			out = append(out, SourceReport{Source: p.name, Reason: reason})
		}
	}
	return out
}

// NoEstimateError is Measure's error when the sources do not give an
// estimate: why, and every source's state.
type NoEstimateError struct {
	Reason  string
	Details []SourceReport
}

func (e *NoEstimateError) Error() string {
	var b strings.Builder
	b.WriteString("no estimate: ")
	b.WriteString(e.Reason)
	for _, d := range e.Details {
		if !d.Selected {
			fmt.Fprintf(&b, "; %s: %s", d.Source, d.Reason)
		}
	}
	return b.String()
}
