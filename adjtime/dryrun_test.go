package adjtime

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"slewd/clock"
	"slewd/clock/simclock"
)

// A dry run with a journal that records a killed slewd's tick bias
// leaves the journal and the kernel as they are, and says so: no "removed
// the tick bias", no "handed the remaining correction to the kernel".
func TestDryRunTouchesNoJournalAndClaimsNothing(t *testing.T) {
	w := simclock.New(simclock.Config{Kernel: simclock.KernelConfig{ClockError: 5 * time.Second}})
	if _, err := clock.NewDriver(w).SetTick(11000); err != nil {
		t.Fatal(err)
	}
	st := &MemStore{}
	entry, _ := json.Marshal(journalEntry{BootID: "b", Active: true, BaseTick: 10000, BulkTick: 11000})
	st.WriteFile(JournalFile, entry)
	j := &Journal{Store: st, BootID: func() string { return "b" }}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	w.Spawn("slewd", true, func(ctx context.Context, p *simclock.Process) error {
		s := NewSlewer(p, SlewerConfig{Method: MethodTick, Journal: j, DryRun: true}, log)
		if err := s.TakeControl(0); err != nil {
			t.Errorf("TakeControl: %v", err)
		}
		raw, phase, f := exactTarget(w, p)
		s.SetTarget(raw, phase, f, 0, 0)
		if _, err := s.Control(); err != nil {
			t.Errorf("Control: %v", err)
		}
		if err := s.Release(); err != nil {
			t.Errorf("Release: %v", err)
		}
		return nil
	})
	w.Run(2 * time.Second)
	if b, _ := st.ReadFile(JournalFile); !bytes.Equal(b, entry) {
		t.Errorf("dry run rewrote the journal: %s", b)
	}
	if k, _ := clock.NewDriver(w).Read(); k.Tick != 11000 {
		t.Errorf("dry run changed the tick to %d", k.Tick)
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		for _, claim := range []string{"removed the tick bias", "handed the remaining correction", "slewing with the tick", "cancelled a pending"} {
			if strings.Contains(line, claim) && !strings.Contains(line, "dry run") {
				t.Errorf("dry run claims an action: %s", line)
			}
		}
	}
	if !strings.Contains(logs.String(), "dry run, not done: handed the remaining correction") {
		t.Errorf("no dry-run word for the hand-back:\n%s", logs.String())
	}
}

// A journal whose tick is outside the kernel's range (base_tick 1) is
// ignored with a WARN naming the file; nothing is written from it.
func TestJournalOutOfRange(t *testing.T) {
	for _, e := range []journalEntry{
		{BootID: "b", Active: true, BaseTick: 1, BulkTick: 11000},
		{BootID: "b", Active: true, BaseTick: 10000, BulkTick: 20000},
		{BootID: "b", Active: true, BaseTick: 10000, BulkTick: 10000, BaseFreq: 1 << 40},
	} {
		w := simclock.New(simclock.Config{})
		st := &MemStore{}
		b, _ := json.Marshal(e)
		st.WriteFile(JournalFile, b)
		j := &Journal{Store: st, BootID: func() string { return "b" }}
		var logs bytes.Buffer
		w.Spawn("slewd", true, func(ctx context.Context, p *simclock.Process) error {
			s := NewSlewer(p, SlewerConfig{Method: MethodTick, Journal: j}, slog.New(slog.NewTextHandler(&logs, nil)))
			if err := s.TakeControl(0); err != nil {
				t.Errorf("TakeControl with %+v: %v", e, err)
			}
			return nil
		})
		w.Run(time.Second)
		if k, _ := clock.NewDriver(w).Read(); k.Tick != clock.NominalTick {
			t.Errorf("journal %+v: tick %d", e, k.Tick)
		}
		if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "file="+JournalFile) ||
			!strings.Contains(logs.String(), "outside the kernel's range") {
			t.Errorf("journal %+v: no WARN naming the file:\n%s", e, logs.String())
		}
	}
}
