package foreign

import "time"

// Event is one foreign change as slewd saw and answered it: what the
// status file and `slewd status` show as the last one.
type Event struct {
	Time    time.Time     `json:"time"`       // REALTIME when it was seen, after any undo
	Kind    string        `json:"kind"`       // "step", "suspend", "slew", "tick", "frequency", "leap"
	Step    time.Duration `json:"step_ns"`    // signed; negative, the clock was set back
	Suspend time.Duration `json:"suspend_ns"` // time suspended, for a resume
	Action  string        `json:"action"`     // what slewd did, in words
	Undone  bool          `json:"undone"`     // the step was undone
	Culprit string        `json:"culprit"`    // the likely culprit, or "unknown"
	Fix     string        `json:"fix"`        // the change that stops it
	Latency time.Duration `json:"latency_ns"` // from the kernel's notice to the undo
	// UndoneRaw is CLOCK_MONOTONIC_RAW (the same in every process) right
	// after the undo step returned: a program that stepped the clock can
	// tell how long REALTIME stayed back from its own RAW reading.
	UndoneRaw time.Duration `json:"undone_raw_ns,omitempty"`
	Repeats   int           `json:"repeats_10min"` // foreign changes in the 10 minutes up to this one
}

// Tally counts foreign changes for the status file, and notices a repeat
// offender: an agent that keeps stepping the clock.
type Tally struct {
	Steps    int            `json:"steps"`    // foreign steps seen
	Backward int            `json:"backward"` // of which backward
	Undone   int            `json:"undone"`   // backward steps undone
	Suspends int            `json:"suspends"` // resumes from suspend
	Slews    int            `json:"slews"`    // foreign slews, tick or frequency changes
	Culprits map[string]int `json:"culprits,omitempty"`
	Last     *Event         `json:"last,omitempty"`

	recent []time.Duration // RAW times of recent changes
}

// repeatWindow is how far back a change counts as a repeat.
const repeatWindow = 10 * time.Minute

// Add counts ev, seen at RAW time raw, and returns how many foreign
// changes there were in the repeat window up to and including it.
func (t *Tally) Add(raw time.Duration, ev Event) int {
	keep := t.recent[:0]
	for _, r := range t.recent {
		if raw-r < repeatWindow {
			keep = append(keep, r)
		}
	}
	t.recent = append(keep, raw)
	switch {
	case ev.Step != 0:
		t.Steps++
		if ev.Step < 0 {
			t.Backward++
		}
	case ev.Kind != "suspend":
		t.Slews++ // a change of rate or status: tick, frequency, adjtime(), a leap armed
	}
	if ev.Kind == "suspend" {
		t.Suspends++
	}
	if ev.Undone {
		t.Undone++
	}
	if ev.Culprit != "" {
		if t.Culprits == nil {
			t.Culprits = map[string]int{}
		}
		t.Culprits[ev.Culprit]++
	}
	ev.Repeats = len(t.recent)
	t.Last = &ev
	return len(t.recent)
}

// Clone is a copy that shares nothing with t, for another goroutine.
func (t Tally) Clone() Tally {
	c := t
	c.recent = nil
	if t.Culprits != nil {
		c.Culprits = make(map[string]int, len(t.Culprits))
		for k, v := range t.Culprits {
			c.Culprits[k] = v
		}
	}
	if t.Last != nil {
		last := *t.Last
		c.Last = &last
	}
	return c
}
