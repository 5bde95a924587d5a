package discipline

import (
	"fmt"
	"strings"
	"time"

	"slewd/ntpclient"
)

// A sysadmin must hear, at the default level, of a source that does not
// answer or answers only unusable packets, and of its recovery: the
// client logs the details at debug level, and says nothing of a source
// that never answered at all. SourceHealth turns the client's source
// reports, taken over time, into those transitions.

// SourceHealthInterval is how often the loop looks at the sources besides
// each estimate: no poll is shorter (ntpclient.MinPollFloor).
const SourceHealthInterval = ntpclient.MinPollFloor

// DefaultSourceReportInterval is the least time between two reports of
// one source: a source that flaps is reported at most this often.
const DefaultSourceReportInterval = 15 * time.Minute

// SourceTransition is one source starting to fail or recovering.
type SourceTransition struct {
	Source  string
	Failing bool
	Reason  string // why it is not usable (when Failing), from the client
	// Flaps is how many changes of state the rate limit held back since
	// the source was last reported.
	Flaps int
}

// SourceHealth tracks each source's usability. The zero value is ready,
// with DefaultSourceReportInterval.
type SourceHealth struct {
	MinInterval time.Duration
	src         map[string]*sourceState
}

type sourceState struct {
	known      bool // a verdict was reached (not pending)
	failing    bool // now
	reason     string
	reported   bool // a report was made
	repFailing bool // what was last reported
	lastReport time.Duration
	flaps      int
}

// SourceFailing classifies a report: failing with a reason, or not; ok
// false while there is no verdict yet (resolving, first query in flight).
func SourceFailing(r ntpclient.SourceReport) (failing bool, ok bool) {
	why := r.Reason
	switch {
	case r.Selected:
		return false, true
	case why == "not resolved yet", why == "no reply yet", why == "pool not resolved yet", why == "not selected yet",
		why == "no usable sample yet":
		return false, false
	case strings.HasPrefix(why, "unreachable"), strings.HasPrefix(why, "no usable reply"), strings.HasPrefix(why, "DNS lookup"),
		strings.Contains(why, "kiss-of-death"), strings.Contains(why, "unsynchronized"):
		return true, true
	}
	// It answers with usable samples; whether selection takes it (a
	// falseticker, too far) is another matter.
	return false, true
}

// Update takes the reports at now (any monotonic time) and returns the
// transitions to report, oldest source first as given.
func (h *SourceHealth) Update(now time.Duration, reports []ntpclient.SourceReport) []SourceTransition {
	if h.src == nil {
		h.src = map[string]*sourceState{}
	}
	gap := h.MinInterval
	if gap <= 0 {
		gap = DefaultSourceReportInterval
	}
	var out []SourceTransition
	for _, r := range reports {
		failing, ok := SourceFailing(r)
		s := h.src[r.Source]
		if s == nil {
			s = &sourceState{}
			h.src[r.Source] = s
		}
		if !ok {
			continue
		}
		if s.known && failing != s.failing {
			s.flaps++
		}
		s.known, s.failing = true, failing
		if failing {
			s.reason = r.Reason
		}
		// Worth a report: a failure never reported, or a change from what
		// was last reported (a source healthy from the start is silence).
		due := (!s.reported && failing) || (s.reported && failing != s.repFailing)
		if !due || (s.reported && now-s.lastReport < gap) {
			continue
		}
		tr := SourceTransition{Source: r.Source, Failing: failing, Flaps: max(s.flaps-1, 0)}
		if failing {
			tr.Reason = s.reason
		}
		s.reported, s.repFailing, s.lastReport, s.flaps = true, failing, now, 0
		out = append(out, tr)
	}
	return out
}

// sourceReportBurst caps the sources named in one look; the rest are
// counted in one line (500 servers failing at once are not 500 lines).
const sourceReportBurst = 5

// checkSources logs the sources' transitions at WARN.
func (d *Discipline) checkSources() {
	trs := d.health.Update(d.env.Clock.Raw(), d.env.Client.Reports())
	failing, recovered := 0, 0
	for i, tr := range trs {
		if i >= sourceReportBurst {
			if tr.Failing {
				failing++
			} else {
				recovered++
			}
			continue
		}
		attrs := []any{"source", tr.Source}
		if tr.Flaps > 0 {
			attrs = append(attrs, "changes_not_reported", tr.Flaps)
		}
		if tr.Failing {
			d.log.Warn("NTP source not usable", append(attrs, "why", tr.Reason,
				"fix", "check the server name, the network and the firewall (UDP port 123), or drop the server")...)
		} else {
			d.log.Warn("NTP source usable again", attrs...)
		}
	}
	if failing+recovered > 0 {
		d.log.Warn(fmt.Sprintf("and %d more source(s) not usable, %d usable again (slewd query shows each)", failing, recovered))
	}
}
