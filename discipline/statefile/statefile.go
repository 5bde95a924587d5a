// Package statefile holds the files the discipline keeps for other
// programs: the status file `slewd run` publishes in its run directory
// (/run/slewd/status.json, read by `slewd wait` and `slewd sync`) and the
// high-water mark of known-good time in its state directory
// (/var/lib/slewd/highwater, read by `slewd boot --restore-from-high-water`).
//
// Each file has one type and one reader and writer here, so the program
// that writes it and the ones that read it cannot disagree on its schema.
// The drift file and the slew journal belong to package adjtime.
package statefile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"strings"
	"time"

	"slewd/adjtime"
	"slewd/foreign"
)

// StatusFile is the daemon's status file in its run directory.
const StatusFile = "status.json"

// DefaultStatusMaxAge is how old the daemon's status may be and still
// count. The daemon rewrites it every second while slewing and at every
// poll otherwise (1024 s at most by default).
const DefaultStatusMaxAge = 20 * time.Minute

// Status is what `slewd run` publishes at every control step: the
// correction still to do, with its sign. Field names are stable: scripts
// and `slewd wait` read them.
type Status struct {
	Time         time.Time `json:"time"` // REALTIME when written
	Synchronized bool      `json:"synchronized"`
	// RemainingS is the correction still to slew, NTP sign: positive
	// means the clock is behind.
	RemainingS   float64 `json:"remaining_s"`
	OffsetS      float64 `json:"offset_s"` // last measured, NTP sign
	ErrorS       float64 `json:"error_s"`  // its error bound
	FrequencyPPM float64 `json:"frequency_ppm"`
	Sources      int     `json:"sources"`
	Slewing      bool    `json:"slewing"`
	// Foreign counts the clock changes other programs made and what slewd
	// did about them; Foreign.Last is the latest.
	Foreign *foreign.Tally `json:"foreign,omitempty"`
}

// Remaining is RemainingS as a duration.
func (s Status) Remaining() time.Duration {
	return time.Duration(s.RemainingS * 1e9)
}

// Fresh says whether the status was written within maxAge of now. A
// status from the future by more than a few seconds (the clock was stepped
// back since) does not count either.
func (s Status) Fresh(now time.Time, maxAge time.Duration) bool {
	age := now.Sub(s.Time)
	return age >= -5*time.Second && age <= maxAge
}

// WriteStatus replaces the status file (atomically: a reader sees the old
// one or the new one).
func WriteStatus(st adjtime.Store, s Status) error {
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encoding the status: %w", err)
	}
	if err := st.WriteFile(StatusFile, append(b, '\n')); err != nil {
		return fmt.Errorf("writing the status file: %w", err)
	}
	return nil
}

// ReadStatus reads the daemon's status file; ok is false when there is
// none.
func ReadStatus(st adjtime.Store) (s Status, ok bool, err error) {
	b, err := st.ReadFile(StatusFile)
	if errors.Is(err, fs.ErrNotExist) {
		return Status{}, false, nil
	}
	if err != nil {
		return Status{}, false, fmt.Errorf("reading the daemon's status: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil || s.Time.IsZero() {
		return Status{}, false, fmt.Errorf("the daemon's status file %s is not what slewd run writes: %q", StatusFile, truncate(string(b), 80))
	}
	if why := s.implausible(); why != "" {
		return Status{}, false, fmt.Errorf("the daemon's status file %s is ignored: %s, which slewd run never writes "+
			"(it rewrites the file while it runs; delete it if no daemon runs)", StatusFile, why)
	}
	return s, true, nil
}

// The status file's plausible range: what slewd run can write.
const (
	// maxStatusSeconds bounds the correction left and the error bound:
	// more than --max-offset's largest value (a year) is not slewed.
	maxStatusSeconds = 4e7
	// maxStatusOffset bounds the measured offset, which the panic guard
	// reports unslewed: 3000 years.
	maxStatusOffset  = 1e11
	maxStatusSources = 1 << 16
)

// implausible says what is out of range in a status ("" if nothing).
func (s Status) implausible() string {
	finite := func(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
	switch {
	case !finite(s.RemainingS) || math.Abs(s.RemainingS) > maxStatusSeconds:
		return fmt.Sprintf("remaining_s %g is beyond ±%g s", s.RemainingS, maxStatusSeconds)
	case !finite(s.OffsetS) || math.Abs(s.OffsetS) > maxStatusOffset:
		return fmt.Sprintf("offset_s %g is beyond ±%g s", s.OffsetS, maxStatusOffset)
	case !finite(s.ErrorS) || s.ErrorS < 0 || s.ErrorS > maxStatusSeconds:
		return fmt.Sprintf("error_s %g is not from 0 to %g s", s.ErrorS, maxStatusSeconds)
	case !finite(s.FrequencyPPM) || math.Abs(s.FrequencyPPM) > adjtime.KernelMaxRatePPM:
		return fmt.Sprintf("frequency_ppm %g is beyond the kernel's ±%d ppm", s.FrequencyPPM, adjtime.KernelMaxRatePPM)
	case s.Sources < 0 || s.Sources > maxStatusSources:
		return fmt.Sprintf("sources %d is not from 0 to %d", s.Sources, maxStatusSources)
	case s.Synchronized && s.Sources == 0:
		return "it says synchronized with no source"
	}
	return ""
}

func truncate(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// HighWaterFile is the high-water mark of known-good time in the state
// directory (/var/lib/slewd), like systemd-timesyncd's clock file: a time
// that true time was known to be past. After a reboot without network
// (an RTC with a flat battery boots in 1970 or at the firmware's build
// date), `slewd boot --restore-from-high-water` moves the clock forward to
// it, never backward.
const HighWaterFile = "highwater"

// SaveHighWater records t as known-good time. t must not be later than
// true time: pass REALTIME plus the correction still to make minus the
// error bound, while synchronized. `slewd boot` and `slewd sync` save it
// after a good sync, `slewd run` while synchronized (on becoming so, with
// the drift file, and at exit).
//
// It overwrites the mark even with an earlier time: a synchronized clock
// is the better witness, and a mark saved wrongly in the future must not
// stick.
func SaveHighWater(st adjtime.Store, t time.Time) error {
	if err := st.WriteFile(HighWaterFile, []byte(t.UTC().Format(time.RFC3339Nano)+"\n")); err != nil {
		return fmt.Errorf("saving the high-water mark: %w", err)
	}
	return nil
}

// MaxHighWaterAfterBuild bounds the high-water mark: a mark later than
// the binary's build time plus this is refused (ten years: no slewd runs
// unchanged that long, and a mark in 2200 would step the clock 173 years,
// which --forward-only could never undo). A mark that a synchronized
// clock later contradicts is replaced by the measured time (SaveHighWater).
const MaxHighWaterAfterBuild = 10 * 365 * 24 * time.Hour

// CheckHighWater refuses a mark implausibly far ahead of built, the
// binary's build time (zero: no bound), with what to do.
func CheckHighWater(mark, built time.Time) error {
	if built.IsZero() {
		return nil
	}
	if limit := built.Add(MaxHighWaterAfterBuild); mark.After(limit) {
		return fmt.Errorf("high-water mark %s in %s is later than this slewd's build (%s) plus %d years: "+
			"not trusted (delete the file; slewd writes a new one at the next sync)",
			mark.UTC().Format(time.RFC3339), HighWaterFile, built.UTC().Format("2006-01-02"), MaxHighWaterAfterBuild/(365*24*time.Hour))
	}
	return nil
}

// ReadHighWater returns the high-water mark; ok is false when there is none.
func ReadHighWater(st adjtime.Store) (t time.Time, ok bool, err error) {
	b, err := st.ReadFile(HighWaterFile)
	if errors.Is(err, fs.ErrNotExist) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("reading the high-water mark: %w", err)
	}
	t, err = time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b)))
	if y := t.UTC().Year(); err == nil && (y < 1 || y > 9999) {
		// Saved again in UTC it would no longer parse (FuzzHighWater).
		err = fmt.Errorf("year %d in UTC", y)
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("high-water mark %q is not an RFC 3339 time: delete %s and slewd writes a new one at the next sync",
			strings.TrimSpace(string(b)), HighWaterFile)
	}
	return t, true, nil
}

// StepFile is where a one-shot command (`slewd boot`, `slewd sync`) notes a
// step it is about to make, in the daemon's run directory, so that a
// running daemon takes that step for slewd's own and does not undo it.
const StepFile = "step.json"

// Step is one step a slewd process made: CLOCK_MONOTONIC_RAW (the same for
// every process on the machine) when it was made, and its size.
type Step struct {
	Raw  time.Duration `json:"raw_ns"`
	Step time.Duration `json:"step_ns"`
	By   string        `json:"by"` // "slewd boot", "slewd sync"
}

// OwnStepWindow is how long after a noted step a clock change still
// counts as that step.
const OwnStepWindow = 10 * time.Second

// NoteStep writes s as the latest step (just before making it).
func NoteStep(st adjtime.Store, s Step) error {
	b, _ := json.Marshal(s)
	if err := st.WriteFile(StepFile, append(b, '\n')); err != nil {
		return fmt.Errorf("noting the step for the daemon: %w", err)
	}
	return nil
}

// OwnStep says whether a change of the clock by step, seen at RAW time raw,
// is the step another slewd process noted (within tol, and within
// OwnStepWindow after it was noted).
func OwnStep(st adjtime.Store, raw, step, tol time.Duration) (Step, bool) {
	b, err := st.ReadFile(StepFile)
	if err != nil {
		return Step{}, false
	}
	var s Step
	if json.Unmarshal(b, &s) != nil || s.Step == 0 {
		return Step{}, false
	}
	age := raw - s.Raw
	if age < 0 || age > OwnStepWindow || (step-s.Step).Abs() > tol {
		return Step{}, false
	}
	return s, true
}

// ForgetStep clears the step note once a daemon has taken it for slewd's
// own, so that it cannot match a later change too.
func ForgetStep(st adjtime.Store) error {
	return st.WriteFile(StepFile, []byte("{}\n"))
}
