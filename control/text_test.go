package control

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"slewd/foreign"
)

func f64(v float64) *float64 { return &v }

// The text forms show every field they are given, in words.
func TestTrackingAndSourcesText(t *testing.T) {
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	end := at.Add(8 * time.Second)
	tr := Tracking{
		Daemon:       Daemon{Version: "v9", Started: true},
		Synchronized: true, Stratum: 3, Leap: "none", Sources: 2,
		Reference: &Reference{Name: "ntp1:123", Address: "192.0.2.1:123", RefID: ".GPS.", Stratum: 1},
		OffsetS:   f64(-0.8), EstimateErrorS: f64(0.002), JitterS: f64(0.0001),
		CorrectionS: -0.75, Slewing: true, SlewRatePPM: 100500, SlewEnd: &end, SlewLeftS: 7.46,
		FrequencyPPM: 12.5, FrequencySigmaPPM: 0.05, ErrorBoundS: f64(0.753),
		RootDelayS: f64(0.004), RootDispersionS: f64(0.0005), PollS: f64(256),
		LastUpdate: &at, LastUpdateAgeS: f64(30),
		Kernel:  Kernel{Told: true, Synchronized: true, MaxErrorS: f64(0.753), EstErrorS: f64(0.75)},
		Systemd: Systemd{MarkedSynchronized: &at},
		Foreign: &foreign.Tally{Steps: 2, Backward: 1, Undone: 1, Culprits: map[string]int{"vmtoolsd": 2},
			Last: &foreign.Event{Time: at, Kind: "step", Step: -3 * time.Second, Action: "undone by a forward step", Culprit: "vmtoolsd"}},
	}
	var b bytes.Buffer
	WriteTracking(&b, tr)
	for _, want := range []string{
		"Reference:        ntp1:123 (192.0.2.1:123), stratum 1, refid .GPS.",
		"Offset now:       -750.000ms: the clock is ahead, the correction still to slew",
		"Slew:             slewing at 100500 ppm, done in 7.5 s (2026-12-01 12:00:08 UTC)",
		"Last offset:      -800.000ms ± 2.000ms, jitter 100µs",
		"Frequency:        12.500 ppm fast ± 0.050 ppm",
		"Error bound:      753.000ms",
		"Poll:             256s",
		"Last update:      2026-12-01 12:00:00 UTC (30s ago)",
		"Kernel:           STA_UNSYNC clear (synchronized; the kernel writes the RTC every 11 min), maxerror 753.000ms, esterror 750.000ms",
		"systemd:          /run/systemd/timesync/synchronized touched at 2026-12-01 12:00:00 UTC",
		"Foreign changes:  2 steps (1 backward, 1 undone), 0 resumes from suspend, 0 slews or rate changes; by vmtoolsd 2",
		"Last foreign:     step -3.000000s at 2026-12-01 12:00:00 UTC, undone by a forward step; likely vmtoolsd",
	} {
		if !strings.Contains(b.String(), want+"\n") && !strings.Contains(b.String(), want) {
			t.Errorf("tracking text lacks %q:\n%s", want, b.String())
		}
	}

	b.Reset()
	WriteSources(&b, []Source{
		{Name: "ntp1:123", Address: "192.0.2.1:123", State: StateSelected, Reference: true, Stratum: 1, Replies: 8,
			ReachOctal: "377", PollS: 256, LastSampleAgeS: f64(700), OffsetS: f64(-0.8), ErrorS: f64(0.002), DelayS: f64(0.004)},
		{Name: "ntp2:123", State: StateUnreachable, ReachOctal: "0", PollS: 64, Reason: "unreachable: timeout"},
	}, false)
	out := b.String()
	for _, want := range []string{"* selected    ntp1:123 192.0.2.1:123 1  256s 377   12m    -800.000ms ± 2.000ms 4.000ms",
		"? unreachable ntp2:123 -             -  64s  0     -", "not selected:\n  ntp2:123: unreachable: timeout\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("sources text lacks %q:\n%s", want, out)
		}
	}
}

func TestForeignLine(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	f := &foreign.Tally{Steps: 3, Backward: 2, Undone: 2, Last: &foreign.Event{Time: now.Add(-90 * time.Second), Kind: "step",
		Step: -5 * time.Second, Action: "undone: stepped forward by 5s", Culprit: "VMware Tools (vmtoolsd runs)"}}
	got := ForeignLine(f, now)
	for _, want := range []string{"3 steps by other programs (2 back, 2 undone)", "the last 1m30s ago", "set back by 5s", "undone: stepped forward by 5s", "culprit: VMware Tools"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q lacks %q", got, want)
		}
	}
	f.Last = &foreign.Event{Time: now, Kind: "suspend", Suspend: time.Hour, Action: "re-measuring at once", Culprit: "unknown"}
	if got := ForeignLine(f, now); !strings.Contains(got, "resumed after 1h0m0s suspended") {
		t.Errorf("suspend: %q", got)
	}
}

func TestTrackingLine(t *testing.T) {
	end := time.Date(2026, 12, 1, 12, 5, 0, 0, time.UTC)
	tr := Tracking{Synchronized: true, CorrectionS: -0.0042, ErrorBoundS: f64(0.00123), Slewing: true, SlewEnd: &end, SlewLeftS: 300,
		Sources: 3, Reference: &Reference{Name: "ntp1"}}
	tr.Daemon.Version = "1.2"
	if got, want := TrackingLine(tr), "slewd 1.2: synchronized, offset now -4.200ms ± 1.230ms, slewing for 5.0 min, 3 sources agree, reference ntp1"; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	tr.Daemon.DryRun, tr.Synchronized, tr.ErrorBoundS, tr.Reference = true, false, nil, nil
	if got, want := TrackingLine(tr), "slewd 1.2 (dry run): not synchronized, offset now -4.200ms, would slew for 5.0 min, 3 sources agree"; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}
