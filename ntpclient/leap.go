package ntpclient

import "time"

// Leap seconds. A server that announced one (LI=1 or 2) serves UTC after
// it: its time goes back 1 s at the end of the day for an insertion
// (23:59:59 comes twice), forward 1 s for a deletion. Its samples after
// the leap would look 1 s off its filter's prediction, a spike, and 1 s
// off the sources that have not sampled since, a falseticker. So when the
// server time a source's filter predicts passes a leap its newest sample
// announced, every stage moves by the leap at once, and every source's
// filter is brought past it before selection compares them. A source that
// did not announce is left alone: if it did not leap either it is 1 s
// off UTC afterwards, a falseticker, which is right.

// LeapShift is how far a server's time moved for a leap second it
// announced, between server times before and after (both as they were
// before the leap: the time of its newest sample and the time its filter
// predicts now): −1 s once after has reached the midnight that ends the
// month of before (the inserted 23:59:60 starts there), +1 s once it has
// reached 23:59:59 of that day (the deleted second), 0 otherwise. Leap
// seconds come only at the end of a month (in practice June or
// December), which is why a server may announce one all month long.
func LeapShift(announced Leap, before, after time.Time) time.Duration {
	before, after = before.UTC(), after.UTC()
	switch announced {
	case LeapInsert:
		if end := monthEnd(before); before.Before(end) && !after.Before(end) {
			return -time.Second
		}
	case LeapDelete:
		if end := monthEnd(before.Add(time.Second)).Add(-time.Second); before.Before(end) && !after.Before(end) {
			return time.Second
		}
	}
	return 0
}

// monthEnd is the midnight (UTC) that ends t's month.
func monthEnd(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, time.UTC)
}

// serverTime is a Phase at a RAW time, as the server's wall-clock time.
func serverTime(raw, phase time.Duration) time.Time { return time.Unix(0, int64(raw+phase)) }

// leap moves the stages past a leap second their newest sample announced,
// once the server time predicted at RAW time at has reached it, and
// returns the shift (0: none). The moved stages no longer announce it, so
// it is applied once.
func (f *filter) leap(at time.Duration) time.Duration {
	n := len(f.hist)
	if n == 0 {
		return 0
	}
	newest := f.hist[n-1]
	if (newest.Leap != LeapInsert && newest.Leap != LeapDelete) || at <= newest.Raw {
		return 0
	}
	d := LeapShift(newest.Leap, serverTime(newest.Raw, newest.Phase()), serverTime(at, f.output(at).Phase))
	if d == 0 {
		return 0
	}
	for i := range f.hist {
		f.hist[i].Offset += d
		f.hist[i].Leap = LeapNone
	}
	return d
}

// leap brings the source's filter past a leap second due by RAW time at.
func (s *Source) leap(at time.Duration) {
	if d := s.filter.leap(at); d != 0 {
		s.p.log.Debug("leap second: the source's samples moved with its time", "source", s.name, "addr", s.addr, "by", d)
	}
}
