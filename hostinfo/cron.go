package hostinfo

import (
	"strconv"
	"strings"
	"time"
)

// cronMatches says whether a cron schedule (five fields or an @word) ran a
// job in the slack before t, so a step seen at t could be that job: cron
// starts jobs at the minute and run-parts may take a while to reach a
// script. Times are compared in t's location (cron uses local time).
func cronMatches(sched string, t time.Time, slack time.Duration) bool {
	fields, ok := cronFields(sched)
	if !ok {
		return false
	}
	start := t.Add(-slack).Truncate(time.Minute)
	for m := start; !m.After(t); m = m.Add(time.Minute) {
		if cronAt(fields, m) {
			return true
		}
	}
	return false
}

func cronFields(sched string) ([]string, bool) {
	switch sched {
	case "@hourly":
		sched = "0 * * * *"
	case "@daily", "@midnight":
		sched = "0 0 * * *"
	case "@weekly":
		sched = "0 0 * * 0"
	case "@monthly":
		sched = "0 0 1 * *"
	case "@yearly", "@annually":
		sched = "0 0 1 1 *"
	}
	f := strings.Fields(sched)
	return f, len(f) == 5
}

var (
	monthNames = []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}
	dayNames   = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}
)

func cronAt(f []string, t time.Time) bool {
	min := cronField(f[0], t.Minute(), 0, 59, nil)
	hour := cronField(f[1], t.Hour(), 0, 23, nil)
	mon := cronField(f[3], int(t.Month()), 1, 12, monthNames)
	dom := cronField(f[2], t.Day(), 1, 31, nil)
	dow := cronField(f[4], int(t.Weekday()), 0, 7, dayNames) ||
		(t.Weekday() == time.Sunday && cronField(f[4], 7, 0, 7, dayNames))
	// When both day fields are restricted, either may match (crontab(5)).
	var day bool
	switch {
	case strings.HasPrefix(f[2], "*") || strings.HasPrefix(f[4], "*"):
		day = dom && dow
	default:
		day = dom || dow
	}
	return min && hour && mon && day
}

// cronField matches v against a list of *, n, a-b, with optional /step.
func cronField(field string, v, lo, hi int, names []string) bool {
	for _, part := range strings.Split(field, ",") {
		rng, stepS, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepS)
			if err != nil || n <= 0 {
				continue
			}
			step = n
		}
		a, b := lo, hi
		if rng != "*" {
			as, bs, isRange := strings.Cut(rng, "-")
			var ok bool
			if a, ok = cronNum(as, names, lo); !ok {
				continue
			}
			b = a
			if isRange {
				if b, ok = cronNum(bs, names, lo); !ok {
					continue
				}
			} else if hasStep {
				b = hi
			}
		}
		if v >= a && v <= b && (v-a)%step == 0 {
			return true
		}
	}
	return false
}

func cronNum(s string, names []string, lo int) (int, bool) {
	if n, err := strconv.Atoi(s); err == nil {
		return n, true
	}
	for i, name := range names {
		if strings.EqualFold(s, name) {
			return i + lo, true
		}
	}
	return 0, false
}

// period returns the common interval of a series of event times, when the
// intervals agree within 10 % (at least two intervals); 0 otherwise.
func period(ts []time.Time) time.Duration {
	if len(ts) < 3 {
		return 0
	}
	var ds []time.Duration
	for i := 1; i < len(ts); i++ {
		d := ts[i].Sub(ts[i-1])
		if d < 0 {
			d = -d
		}
		ds = append(ds, d)
	}
	lo, hi := ds[0], ds[0]
	var sum time.Duration
	for _, d := range ds {
		lo, hi = min(lo, d), max(hi, d)
		sum += d
	}
	mean := sum / time.Duration(len(ds))
	if mean <= 0 || hi-lo > mean/5 {
		return 0
	}
	return mean
}

// near says whether d is within frac of want.
func near(d, want time.Duration, frac float64) bool {
	diff := float64(d - want)
	if diff < 0 {
		diff = -diff
	}
	return diff <= frac*float64(want)
}
