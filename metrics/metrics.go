// Package metrics serves slewd's state as Prometheus metrics: the text
// exposition format (version 0.0.4), written by hand from the control
// package's views. Base units (seconds, ratios), _total counters,
// slewd_build_info; nothing that node_exporter's timex collector already
// exports (the kernel's maxerror, esterror, status, tick, frequency).
//
// A client library was weighed against this (docs/operations.md, sizes):
// prometheus/client_golang adds about 2.9 MB to the binary and eight
// modules, VictoriaMetrics/metrics about 0.3 MB; what is exported here is
// a few dozen gauges and counters written from one snapshot per scrape,
// which needs neither.
package metrics

import (
	"bufio"
	"io"
	"math"
	"math/bits"
	"runtime"
	"strconv"
	"strings"

	"slewd/control"
)

// ContentType is the text exposition format's.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Write writes the metrics of one scrape: t and srcs, from one snapshot.
func Write(w io.Writer, version string, t control.Tracking, srcs []control.Source) error {
	e := &enc{w: bufio.NewWriter(w)}
	e.family("slewd_build_info", "gauge", "slewd's version, and the Go version and architecture it was built with.")
	e.sample("slewd_build_info", 1, "version", version, "goversion", runtime.Version(), "goarch", runtime.GOARCH)

	e.gauge("slewd_dry_run", "1 if the daemon only measures and never adjusts the clock (--dry-run).", b(t.Daemon.DryRun))
	e.gauge("slewd_synchronized", "1 while the correction left plus the error bound is below --sync-threshold (the kernel and systemd are told so).", b(t.Synchronized))
	e.gauge("slewd_out_of_bounds", "1 if the last estimate was beyond --max-offset and is not being slewed.", b(t.OutOfBounds))
	e.gauge("slewd_sources_agreeing", "How many sources agree, behind the estimate.", float64(t.Sources))
	e.gaugePtr("slewd_offset_seconds", "What the sources said at the last update: true time minus the clock (positive: the clock was behind).", t.OffsetS)
	e.gaugePtr("slewd_estimate_error_seconds", "Bound on the error of slewd_offset_seconds: the root distance of the combined sources.", t.EstimateErrorS)
	e.gauge("slewd_correction_remaining_seconds", "The offset now: the correction still to slew (positive: the clock is behind).", t.CorrectionS)
	e.gaugePtr("slewd_error_bound_seconds", "Bound on |true time - the clock| at the last control step: |correction| + estimate error + servo uncertainty (the kernel's maxerror when it was set).", t.ErrorBoundS)
	e.gauge("slewd_slew_rate_ratio", "How fast the clock is slewed: seconds gained or lost per second (0.1005 is the kernel's limit; 0 when not slewing).", t.SlewRatePPM/1e6)
	e.gauge("slewd_frequency_ratio", "The drift compensation: how fast the uncorrected oscillator runs (positive: fast), as a ratio (1e-6 is 1 ppm).", t.FrequencyPPM/1e6)
	e.gauge("slewd_frequency_uncertainty_ratio", "The 1-sigma uncertainty of slewd_frequency_ratio.", t.FrequencySigmaPPM/1e6)
	e.gaugePtr("slewd_root_delay_seconds", "Round-trip delay to the primary server through the reference source.", t.RootDelayS)
	e.gaugePtr("slewd_root_dispersion_seconds", "Dispersion to the primary server through the reference source.", t.RootDispersionS)
	if t.LastUpdate != nil {
		e.gauge("slewd_last_update_timestamp_seconds", "When the last estimate was made (Unix time).", float64(t.LastUpdate.UnixNano())/1e9)
	}

	e.family("slewd_source_state", "gauge", "1 for the state each source is in, 0 for the others (selected, candidate, falseticker, unreachable, kiss-of-death, unusable).")
	for _, s := range srcs {
		for _, st := range control.States {
			e.sample("slewd_source_state", b(s.State == st), "source", s.Name, "address", s.Address, "state", st)
		}
	}
	e.perSource(srcs, "slewd_source_offset_seconds", "gauge", "The source's filtered offset: its time minus the clock.", func(s control.Source) *float64 { return s.OffsetS })
	e.perSource(srcs, "slewd_source_error_seconds", "gauge", "The source's root distance: the bound on its offset's error.", func(s control.Source) *float64 { return s.ErrorS })
	e.perSource(srcs, "slewd_source_delay_seconds", "gauge", "Round-trip delay to the source.", func(s control.Source) *float64 { return s.DelayS })
	e.perSource(srcs, "slewd_source_reach_ratio", "gauge", "Answers in the last eight polls, as a ratio (the reach register's bits set / 8).", func(s control.Source) *float64 {
		return f(float64(bits.OnesCount8(s.Reach)) / 8)
	})
	e.perSource(srcs, "slewd_source_stratum", "gauge", "The source's stratum (0 before it answers).", func(s control.Source) *float64 { return f(float64(s.Stratum)) })
	e.perSource(srcs, "slewd_source_poll_seconds", "gauge", "The source's poll interval.", func(s control.Source) *float64 { return f(s.PollS) })
	e.perSource(srcs, "slewd_source_last_sample_age_seconds", "gauge", "How long ago the source's newest sample was taken.", func(s control.Source) *float64 { return s.LastSampleAgeS })
	e.perSource(srcs, "slewd_source_polls_total", "counter", "Queries sent to the source.", func(s control.Source) *float64 { return f(float64(s.Polls)) })
	e.perSource(srcs, "slewd_source_replies_total", "counter", "Answers from the source.", func(s control.Source) *float64 { return f(float64(s.Replies)) })
	e.perSource(srcs, "slewd_source_kiss_of_death_total", "counter", "Kiss-of-death answers from the source (RATE, DENY, RSTR, ...).", func(s control.Source) *float64 { return f(float64(s.Kisses)) })

	if ft := t.Foreign; ft != nil {
		e.counter("slewd_foreign_steps_total", "Steps of the clock made by other programs.", float64(ft.Steps))
		e.counter("slewd_foreign_backward_steps_total", "Of those, steps back.", float64(ft.Backward))
		e.counter("slewd_foreign_steps_undone_total", "Backward steps slewd undid.", float64(ft.Undone))
		e.counter("slewd_foreign_suspends_total", "Resumes from suspend.", float64(ft.Suspends))
		e.counter("slewd_foreign_slews_total", "Slews, tick or frequency changes made by other programs.", float64(ft.Slews))
	}
	return e.w.Flush()
}

// enc writes families: # HELP, # TYPE, then every sample.
type enc struct{ w *bufio.Writer }

func (e *enc) family(name, typ, help string) {
	e.w.WriteString("# HELP " + name + " " + escapeHelp(help) + "\n# TYPE " + name + " " + typ + "\n")
}

func (e *enc) sample(name string, v float64, labels ...string) {
	e.w.WriteString(name)
	if len(labels) > 0 {
		e.w.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				e.w.WriteByte(',')
			}
			e.w.WriteString(labels[i] + `="` + escapeLabel(labels[i+1]) + `"`)
		}
		e.w.WriteByte('}')
	}
	e.w.WriteString(" " + value(v) + "\n")
}

func (e *enc) gauge(name, help string, v float64) {
	e.family(name, "gauge", help)
	e.sample(name, v)
}

func (e *enc) counter(name, help string, v float64) {
	e.family(name, "counter", help)
	e.sample(name, v)
}

// gaugePtr writes nothing when there is no value (before the first
// estimate): an absent series, not a false zero.
func (e *enc) gaugePtr(name, help string, v *float64) {
	if v != nil {
		e.gauge(name, help, *v)
	}
}

func (e *enc) perSource(srcs []control.Source, name, typ, help string, get func(control.Source) *float64) {
	header := false
	for _, s := range srcs {
		v := get(s)
		if v == nil {
			continue
		}
		if !header {
			e.family(name, typ, help)
			header = true
		}
		e.sample(name, *v, "source", s.Name, "address", s.Address)
	}
}

func value(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

var (
	labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
)

func escapeLabel(s string) string { return labelEscaper.Replace(s) }
func escapeHelp(s string) string  { return helpEscaper.Replace(s) }

func b(x bool) float64 {
	if x {
		return 1
	}
	return 0
}

func f(x float64) *float64 { return &x }
