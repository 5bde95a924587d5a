package adjtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"strings"
	"time"

	"slewd/clock"
)

// The tick method (MethodTick), the design chrony uses: bias tick and
// frequency for the bulk of a slew, end the bias at a planned
// CLOCK_MONOTONIC_RAW time, and hand the last milliseconds to the adjtime
// singleshot, which stops at zero by itself. The kernel never expires a
// tick bias, so a write-ahead journal records it before it is set: a
// restarted slewd removes it first thing. If slewd is never restarted the
// bias stays; that is the weakness docs/crash-safety.md measures.

// tickMargin is what the bulk leaves for the singleshot: 2 ms take 4 s at
// 500 µs/s and cover half a second of late wake-up at 0.4 %... the bulk is
// stopped against RAW by a spin-wait, so lateness is milliseconds.
const (
	tickMargin    = 2 * time.Millisecond
	tickThreshold = 10 * time.Millisecond // smaller corrections go to the singleshot alone
	tickSpin      = 20 * time.Millisecond // spin on RAW this close to the stop
)

// JournalFile is the name of the slew journal in a Store.
const JournalFile = "slew-journal"

// Journal is the write-ahead record of a tick bias.
type Journal struct {
	Store  Store
	BootID func() string
}

type journalEntry struct {
	BootID   string `json:"boot_id"`
	Active   bool   `json:"active"`
	BaseTick int64  `json:"base_tick"`
	BaseFreq int64  `json:"base_freq"`
	BulkTick int64  `json:"bulk_tick"`
	BulkFreq int64  `json:"bulk_freq"`
	RawStart int64  `json:"raw_start_ns"`
}

func (j *Journal) write(e journalEntry) error {
	e.BootID = j.BootID()
	b, _ := json.Marshal(e)
	return j.Store.WriteFile(JournalFile, append(b, '\n'))
}

// Active reports whether the journal records a tick bias under way (a
// nil journal records none).
func (j *Journal) Active() bool {
	if j == nil {
		return false
	}
	e, ok, err := j.read()
	return err == nil && ok && e.Active && e.BootID == j.BootID()
}

func (j *Journal) read() (journalEntry, bool, error) {
	var e journalEntry
	b, err := j.Store.ReadFile(JournalFile)
	if errors.Is(err, fs.ErrNotExist) {
		return e, false, nil
	}
	if err != nil {
		return e, false, err
	}
	if err := json.Unmarshal(b, &e); err != nil {
		return e, false, fmt.Errorf("slew journal %q is not JSON (%v)", strings.TrimSpace(string(b)), err)
	}
	// Recovery sets the base tick and frequency: a damaged journal must
	// not set a tick the kernel takes but no slewd ever sets (FuzzJournal).
	if e.Active && !journalValues(e) {
		return journalEntry{}, false, fmt.Errorf("slew journal %q: its tick or frequency is outside the kernel's range (tick %d..%d, frequency ±%d ppm)",
			truncateJournal(b), clock.MinTick, clock.MaxTick, clock.MaxFreqPPM)
	}
	return e, true, nil
}

// journalValues says whether an entry's ticks and frequencies are ones
// the kernel takes (and slewd sets).
func journalValues(e journalEntry) bool {
	const maxFreq = clock.MaxFreqPPM << 16 // ADJ_FREQUENCY's scaled ppm
	inTick := func(t int64) bool { return t >= clock.MinTick && t <= clock.MaxTick }
	inFreq := func(f int64) bool { return f >= -maxFreq && f <= maxFreq }
	return inTick(e.BaseTick) && inTick(e.BulkTick) && inFreq(e.BaseFreq) && inFreq(e.BulkFreq)
}

func truncateJournal(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}

type tickBulk struct {
	active     bool
	rate       float64       // bias against RAW while active, s/s
	stopRaw    time.Duration // when to end the bias
	bulkTick   int64
	bulkFreq   int64
	singleshot float64 // last handed to the singleshot, s
}

// biasing says whether the tick method's bulk is under way: tick and
// frequency are then its bias, not the drift compensation.
func (s *Slewer) biasing() bool { return s.tick != nil && s.tick.active }

// recover undoes a bias that a killed slewd left, before anything else.
func (t *tickBulk) recover(s *Slewer, cur clock.KernelState) error {
	j := s.cfg.Journal
	if j == nil {
		return errors.New("the tick slew method needs a journal (a state directory)")
	}
	e, ok, err := j.read()
	if err != nil {
		// Whatever it said, TakeControl sets tick and frequency to the
		// drift compensation next, which removes any bias; the journal is
		// rewritten before the next bias.
		s.log.Warn("ignoring the slew journal", "file", JournalFile, "err", err, "tick", cur.Tick, "freq_ppm", cur.FrequencyPPM,
			"fix", "nothing to do: slewd rewrites it at the next tick slew (delete it to silence this)")
		return nil
	}
	if !ok || !e.Active {
		return nil
	}
	if e.BootID != j.BootID() {
		s.log.Info("slew journal is from an earlier boot; the kernel started clean")
		if s.cfg.DryRun {
			return nil
		}
		return j.write(journalEntry{Active: false})
	}
	if s.cfg.DryRun {
		s.log.Warn("dry run, not done: the slew journal records a tick bias a killed slewd left; a real run removes it",
			"tick", cur.Tick, "restored_tick", e.BaseTick)
		return nil
	}
	if _, err := s.apply(tickFreq(e.BaseTick, e.BaseFreq)); err != nil {
		return fmt.Errorf("removing the tick bias a killed slewd left: %w", err)
	}
	s.log.Warn("removed the tick bias a killed slewd left", "tick", cur.Tick, "restored_tick", e.BaseTick)
	return j.write(journalEntry{Active: false})
}

func (t *tickBulk) control(s *Slewer) (time.Duration, error) {
	rd, _ := s.Measure()
	ss, err := s.drv.SingleshotRemaining()
	if err != nil {
		return 0, err
	}
	pending := float64(ss) / 1e9
	need := -s.lastErr
	if t.active {
		left := (t.stopRaw - rd.Raw).Seconds()
		if left <= 0 {
			if err := t.stop(s); err != nil {
				return 0, err
			}
			return t.control(s)
		}
		if left*1e9 < float64(tickSpin) {
			// Near the stop: come back at it exactly (the caller's waits
			// end early and re-check RAW).
			return t.stopRaw, nil
		}
		// Re-plan the stop from what is still needed (new estimates move it).
		bulkLeft := math.Abs(need) - tickMargin.Seconds()
		if bulkLeft <= 0 || math.Signbit(need) != math.Signbit(t.rate) {
			if err := t.stop(s); err != nil {
				return 0, err
			}
			return t.control(s)
		}
		t.stopRaw = rd.Raw + time.Duration(bulkLeft/math.Abs(t.rate)*1e9)
		return t.stopRaw - tickSpin/2, nil
	}
	if math.Abs(need) >= tickThreshold.Seconds() {
		if err := t.start(s, need, rd.Raw); err != nil {
			return 0, err
		}
		return t.control(s)
	}
	// Small: all of it to the singleshot, which stops at zero by itself.
	us := int64(math.Round(need * 1e6))
	if math.Abs(need-pending) >= 1e-6 {
		if _, err := s.apply(s.statusChange()); err != nil {
			return 0, err
		}
		if _, err := s.armSingleshot(time.Duration(us) * time.Microsecond); err != nil {
			return 0, err
		}
		t.singleshot = need
	}
	return Idle, nil
}

func (t *tickBulk) start(s *Slewer, need float64, raw time.Duration) error {
	maxPPM := s.cfg.MaxRatePPM
	sign := 1.0
	if need < 0 {
		sign = -1
	}
	dTick := math.Min(1000, math.Floor(maxPPM/clock.PPMPerTick))
	bulkTick := s.baseTick + int64(sign*dTick)
	bulkTick = min(max(bulkTick, clock.MinTick), clock.MaxTick)
	restPPM := maxPPM - math.Abs(float64(bulkTick-s.baseTick))*clock.PPMPerTick
	bulkFreq := s.baseFreq + clock.PPMToFreq(sign*restPPM)
	bulkFreq = min(max(bulkFreq, -clock.MaxFreqPPM*clock.FreqScale), clock.MaxFreqPPM*clock.FreqScale)
	// Write ahead: the journal first, then the bias.
	if !s.cfg.DryRun {
		if err := s.cfg.Journal.write(journalEntry{Active: true, BaseTick: s.baseTick, BaseFreq: s.baseFreq,
			BulkTick: bulkTick, BulkFreq: bulkFreq, RawStart: int64(raw)}); err != nil {
			return fmt.Errorf("writing the slew journal: %w", err)
		}
	}
	// Cancel any singleshot tail: it would add to the bulk.
	if !s.cfg.DryRun {
		if _, err := s.drv.CancelSingleshot(); err != nil {
			return err
		}
	}
	k, err := s.apply(tickFreq(bulkTick, bulkFreq))
	if err != nil {
		return fmt.Errorf("biasing the tick for a slew: %w", err)
	}
	t.active = true
	t.bulkTick, t.bulkFreq = k.Tick, k.FrequencyRaw()
	t.rate = k.RatePPM()*1e-6 - s.baseRate
	if math.Abs(t.rate) < 1e-6 {
		// The base already sits at the kernel's limit in this direction:
		// nothing is left to slew with. Give the correction to the singleshot.
		if err := t.stop(s); err != nil {
			return err
		}
		return fmt.Errorf("no slew rate left beyond the base frequency (%.0f ppm)", s.baseRate*1e6)
	}
	bulkLeft := math.Abs(need) - tickMargin.Seconds()
	t.stopRaw = raw + time.Duration(bulkLeft/math.Abs(t.rate)*1e9)
	s.log.Info(s.claim("slewing with the tick"), "correction", dur(need), "rate_ppm", math.Round(t.rate*1e7)/10,
		"duration", time.Duration(bulkLeft/math.Abs(t.rate)*1e9).Round(time.Millisecond))
	return nil
}

// stop ends the bias and records that it ended.
func (t *tickBulk) stop(s *Slewer) error {
	k, err := s.apply(tickFreq(s.baseTick, s.baseFreq))
	if err != nil {
		return fmt.Errorf("ending the tick bias: %w", err)
	}
	s.tookTick, s.tookFreq = k.Tick, k.FrequencyRaw()
	t.active = false
	if !s.cfg.DryRun {
		if err := s.cfg.Journal.write(journalEntry{Active: false}); err != nil {
			return fmt.Errorf("writing the slew journal: %w", err)
		}
	}
	return nil
}
