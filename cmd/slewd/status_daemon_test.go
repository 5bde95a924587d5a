package main

import (
	"strings"
	"testing"
	"time"

	"slewd/foreign"
)

func TestLastForeign(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	f := &foreign.Tally{Steps: 3, Backward: 2, Undone: 2, Last: &foreign.Event{Time: now.Add(-90 * time.Second), Kind: "step",
		Step: -5 * time.Second, Action: "undone: stepped forward by 5s", Culprit: "VMware Tools (vmtoolsd runs)"}}
	got := lastForeign(f, now)
	for _, want := range []string{"3 steps by other programs (2 back, 2 undone)", "the last 1m30s ago", "set back by 5s", "undone: stepped forward by 5s", "culprit: VMware Tools"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q lacks %q", got, want)
		}
	}
	f.Last = &foreign.Event{Time: now, Kind: "suspend", Suspend: time.Hour, Action: "re-measuring at once", Culprit: "unknown"}
	if got := lastForeign(f, now); !strings.Contains(got, "resumed after 1h0m0s suspended") {
		t.Errorf("suspend: %q", got)
	}
}
