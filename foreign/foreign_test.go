package foreign

import (
	"math/rand"
	"strings"
	"testing"
	"time"
)

func TestLedger(t *testing.T) {
	base := Reading{RealMinusBoot: 1_700_000_000 * time.Second, BootMinusMono: 3 * time.Second, Width: time.Microsecond}
	shift := func(r Reading, step, suspend time.Duration) Reading {
		r.RealMinusBoot += step
		r.BootMinusMono += suspend
		return r
	}
	tests := []struct {
		name    string
		own     []time.Duration // own steps before the observation
		next    Reading
		step    time.Duration
		suspend time.Duration
		ownSum  time.Duration
	}{
		{name: "nothing", next: base},
		{name: "reading noise is no step", next: shift(base, 3*time.Microsecond, 0)},
		{name: "foreign back 5 s", next: shift(base, -5*time.Second, 0), step: -5 * time.Second},
		{name: "foreign forward 30 s", next: shift(base, 30*time.Second, 0), step: 30 * time.Second},
		{name: "1 ms is a step", next: shift(base, -time.Millisecond, 0), step: -time.Millisecond},
		{name: "own step is not foreign", own: []time.Duration{5 * time.Second}, next: shift(base, 5*time.Second, 0), ownSum: 5 * time.Second},
		{name: "own and foreign at once", own: []time.Duration{5 * time.Second}, next: shift(base, 3*time.Second, 0), step: -2 * time.Second, ownSum: 5 * time.Second},
		{name: "two own steps", own: []time.Duration{time.Second, 2 * time.Second}, next: shift(base, 3*time.Second, 0), ownSum: 3 * time.Second},
		{name: "suspend alone", next: shift(base, 0, time.Hour), suspend: time.Hour},
		{name: "suspend and a step at resume", next: shift(base, -700*time.Millisecond, time.Hour), step: -700 * time.Millisecond, suspend: time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l Ledger
			if c := l.Observe(base); !c.None() {
				t.Fatalf("first observation reported %v", c)
			}
			for _, s := range tt.own {
				l.Own(s)
			}
			c := l.Observe(tt.next)
			if c.Step != tt.step || c.Suspend != tt.suspend || c.Own != tt.ownSum {
				t.Errorf("got step %v suspend %v own %v, want %v %v %v", c.Step, c.Suspend, c.Own, tt.step, tt.suspend, tt.ownSum)
			}
			// The ledger now expects the new reading: nothing more.
			if again := l.Observe(tt.next); !again.None() || again.Own != 0 {
				t.Errorf("second observation of the same reading: %+v", again)
			}
		})
	}
}

// Property: whatever own steps slewd makes, Observe reports exactly the
// foreign part of the total change (to the reading's tolerance).
func TestLedgerSeparatesOwnFromForeign(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	var l Ledger
	r := Reading{RealMinusBoot: 1_700_000_000 * time.Second, Width: 2 * time.Microsecond}
	l.Reset(r)
	for i := 0; i < 2000; i++ {
		var own time.Duration
		for k := rng.Intn(3); k > 0; k-- {
			s := time.Duration(rng.Int63n(int64(60 * time.Second)))
			l.Own(s)
			own += s
		}
		var foreign time.Duration
		if rng.Intn(2) == 0 {
			foreign = time.Duration(rng.Int63n(int64(120*time.Second))) - 60*time.Second
			if foreign > -time.Millisecond && foreign < time.Millisecond {
				foreign = 0
			}
		}
		noise := time.Duration(rng.Int63n(5000)) - 2500 // ±2.5 µs
		r.RealMinusBoot += own + foreign + noise
		c := l.Observe(r)
		if foreign == 0 && c.Step != 0 {
			t.Fatalf("step %d: no foreign step, got %v", i, c.Step)
		}
		if foreign != 0 && (c.Step-foreign > 3*time.Microsecond || foreign-c.Step > 3*time.Microsecond) {
			t.Fatalf("step %d: foreign %v, got %v", i, foreign, c.Step)
		}
	}
}

func TestDecide(t *testing.T) {
	on := Policy{Undo: true, MaxUndo: 1000 * time.Second}
	tests := []struct {
		name   string
		c      Change
		p      Policy
		action Action
		fwd    time.Duration
		did    string
	}{
		{"nothing", Change{}, on, Nothing, 0, ""},
		{"back 5 s undone", Change{Step: -5 * time.Second}, on, UndoStep, 5 * time.Second, "undone"},
		{"back 54 s undone", Change{Step: -54 * time.Second}, on, UndoStep, 54 * time.Second, "undone"},
		{"forward left alone", Change{Step: 30 * time.Second}, on, Remeasure, 0, "forward step harms no program"},
		{"undo off", Change{Step: -5 * time.Second}, Policy{Undo: false, MaxUndo: time.Hour}, Remeasure, 0, "--undo-foreign-steps=false"},
		{"past max offset", Change{Step: -2 * time.Hour}, on, Remeasure, 0, "larger than --max-offset"},
		{"at max offset undone", Change{Step: -1000 * time.Second}, on, UndoStep, 1000 * time.Second, "undone"},
		{"resume re-measures", Change{Suspend: time.Hour}, on, Remeasure, 0, "re-measuring"},
		{"resume with a step back undoes it", Change{Suspend: time.Hour, Step: -time.Second}, on, UndoStep, time.Second, "undone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(tt.c, tt.p)
			if d.Action != tt.action || d.StepForward != tt.fwd || !strings.Contains(d.Did, tt.did) {
				t.Errorf("Decide(%v) = %+v, want %v by %v saying %q", tt.c, d, tt.action, tt.fwd, tt.did)
			}
			if d.Action == UndoStep && d.StepForward <= 0 {
				t.Errorf("an undo must step forward: %+v", d)
			}
		})
	}
	if d := Decide(Change{Step: -2 * time.Hour}, on); d.Advice == "" {
		t.Error("a step too large to undo gives no advice")
	}
}

func TestForwardStep(t *testing.T) {
	tests := []struct {
		rem, bound, threshold, want time.Duration
	}{
		{30 * time.Second, time.Millisecond, time.Second, 30*time.Second - time.Millisecond},
		{time.Second, time.Millisecond, time.Second, 0},                 // at the threshold: slew
		{500 * time.Millisecond, 0, time.Second, 0},                     // under it
		{-30 * time.Second, time.Millisecond, time.Second, 0},           // ahead: never back
		{2 * time.Second, 3 * time.Second, time.Second, 0},              // bound larger than the step
		{30 * time.Second, -time.Second, time.Second, 30 * time.Second}, // a negative bound counts as 0
		{30 * time.Second, time.Millisecond, 0, 0},                      // threshold 0: off
		{1500 * time.Millisecond, 100 * time.Millisecond, time.Second, 1400 * time.Millisecond},
	}
	for _, tt := range tests {
		got := ForwardStep(tt.rem, tt.bound, tt.threshold)
		if got != tt.want {
			t.Errorf("ForwardStep(%v, %v, %v) = %v, want %v", tt.rem, tt.bound, tt.threshold, got, tt.want)
		}
		// Property: never past true time, never backwards.
		if got < 0 || got > max(tt.rem, 0) {
			t.Errorf("ForwardStep(%v, %v, %v) = %v: outside [0, remaining]", tt.rem, tt.bound, tt.threshold, got)
		}
	}
}

func TestWindow(t *testing.T) {
	var w Window
	// A clock at rate 1 from 0 to 10 s; a step back of 5 s at t=10,
	// undone 1 ms later: the window is 1 ms.
	w.Observe(0, 100)
	w.Observe(10, 110)
	w.Observe(10, 105)
	w.Observe(10.001, 105.001)
	w.Observe(10.001, 110.001)
	w.Observe(20, 120)
	if w.Count != 1 || abs(w.Longest-0.001) > 1e-9 {
		t.Fatalf("undone step: count %d longest %v, want 1 window of 1 ms", w.Count, w.Longest)
	}
	// A step back of 1 s, not undone, and the clock running at 1.1 s per
	// second from 119: it passes its old high of 120 after 1/1.1 s.
	w.Observe(20, 119)
	w.Observe(30, 130)
	want := 1 / 1.1
	if w.Count != 2 || abs(w.Windows[1]-want) > 1e-9 {
		t.Fatalf("slewed past: windows %v, want second %v", w.Windows, want)
	}
	if w.Longest != w.Windows[1] {
		t.Errorf("longest %v, windows %v", w.Longest, w.Windows)
	}
	// An open window counts in LongestAt.
	w.Observe(30, 128)
	if open, since := w.Open(); !open || since != 30 {
		t.Errorf("open window: %v since %v", open, since)
	}
	if got := w.LongestAt(40); got != 10 {
		t.Errorf("LongestAt(40) = %v, want 10", got)
	}
}

func TestWindowForwardOnlyHasNone(t *testing.T) {
	var w Window
	real := 0.0
	rng := rand.New(rand.NewSource(2))
	for i := 0; i < 1000; i++ {
		real += rng.Float64() * 2 // forward at any rate, sometimes a step forward
		w.Observe(float64(i), real)
	}
	if w.Count != 0 || w.LongestAt(1000) != 0 {
		t.Errorf("a clock that never went back has windows: %+v", w)
	}
}

func TestTally(t *testing.T) {
	var ta Tally
	min := func(m int) time.Duration { return time.Duration(m) * time.Minute }
	ta.Add(min(0), Event{Kind: "step", Step: -5 * time.Second, Undone: true, Culprit: "VirtualBox"})
	ta.Add(min(1), Event{Kind: "step", Step: 2 * time.Second, Culprit: "VirtualBox"})
	ta.Add(min(2), Event{Kind: "tick", Culprit: "VMware Tools"})
	n := ta.Add(min(3), Event{Kind: "suspend", Suspend: time.Hour})
	if ta.Steps != 2 || ta.Backward != 1 || ta.Undone != 1 || ta.Slews != 1 || ta.Suspends != 1 {
		t.Errorf("tally %+v", ta)
	}
	if ta.Culprits["VirtualBox"] != 2 || ta.Culprits["VMware Tools"] != 1 {
		t.Errorf("culprits %v", ta.Culprits)
	}
	if n != 4 || ta.Last.Repeats != 4 || ta.Last.Kind != "suspend" {
		t.Errorf("repeats %d, last %+v", n, ta.Last)
	}
	// Twenty minutes later the old ones no longer count as repeats.
	if n := ta.Add(min(25), Event{Kind: "step", Step: -time.Second}); n != 1 {
		t.Errorf("repeats after a quiet spell: %d, want 1", n)
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// A reading taken before the last one observed (a change notice handled
// after the once-a-second look) adds nothing: its change is counted.
func TestLedgerIgnoresOlderReadings(t *testing.T) {
	var l Ledger
	r0 := Reading{RealMinusBoot: 100 * time.Second, Raw: time.Second}
	l.Observe(r0)
	stepped := Reading{RealMinusBoot: 95 * time.Second, Raw: 3 * time.Second}
	if c := l.Observe(stepped); c.Step != -5*time.Second {
		t.Fatalf("the step: %+v", c)
	}
	older := Reading{RealMinusBoot: 95 * time.Second, Raw: 2 * time.Second}
	if c := l.Observe(older); !c.None() {
		t.Errorf("an older reading reported %+v", c)
	}
	if c := l.Observe(Reading{RealMinusBoot: 95 * time.Second, Raw: 4 * time.Second}); !c.None() {
		t.Errorf("after the older reading: %+v", c)
	}
}
