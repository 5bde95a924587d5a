package conformance

import (
	"fmt"
	"math"
	"strings"

	"slewd/clock"
)

// Row compares one metric of one scenario between the simulator and the kernel.
type Row struct {
	Scenario, Metric, Unit string
	Sim, Kernel            *float64 // nil: not measured (the scenario failed)
	Tol                    float64
	Pass                   bool
	Why                    string // why it failed
}

// Diff is kernel minus simulator (NaN when either is missing).
func (r Row) Diff() float64 {
	if r.Sim == nil || r.Kernel == nil {
		return math.NaN()
	}
	return *r.Kernel - *r.Sim
}

// Compare pairs the simulator's results with the kernel's, scenario by
// scenario and metric by metric, in the simulator's order. A metric that
// only one side has, or a scenario that failed on either side, fails.
func Compare(sim, kernel []Result) []Row {
	byName := map[string]Result{}
	for _, r := range kernel {
		byName[r.Scenario] = r
	}
	var rows []Row
	for _, s := range sim {
		k, ok := byName[s.Scenario]
		delete(byName, s.Scenario)
		switch {
		case !ok:
			rows = append(rows, Row{Scenario: s.Scenario, Why: "not run on the kernel"})
			continue
		case s.Err != "" || k.Err != "":
			why := ""
			if s.Err != "" {
				why += "simulator: " + s.Err + " "
			}
			if k.Err != "" {
				why += "kernel: " + k.Err
			}
			rows = append(rows, Row{Scenario: s.Scenario, Why: strings.TrimSpace(why)})
		}
		km := map[string]Metric{}
		for _, m := range k.Metrics {
			km[m.Name] = m
		}
		for _, m := range s.Metrics {
			row := Row{Scenario: s.Scenario, Metric: m.Name, Unit: m.Unit, Tol: m.Tol, Sim: ptr(m.Value)}
			if kv, ok := km[m.Name]; ok {
				row.Kernel = ptr(kv.Value)
				d := math.Abs(kv.Value - m.Value)
				row.Pass = d <= m.Tol+1e-9
				if !row.Pass {
					row.Why = fmt.Sprintf("differs by %s (tolerance %s)", format(m.Unit, d), format(m.Unit, m.Tol))
				}
			} else {
				row.Why = "not measured on the kernel"
			}
			delete(km, m.Name)
			rows = append(rows, row)
		}
		for _, m := range k.Metrics {
			if _, extra := km[m.Name]; extra {
				rows = append(rows, Row{Scenario: s.Scenario, Metric: m.Name, Unit: m.Unit, Kernel: ptr(m.Value), Why: "not measured on the simulator"})
			}
		}
	}
	for name := range byName {
		rows = append(rows, Row{Scenario: name, Why: "not run on the simulator"})
	}
	return rows
}

func ptr(v float64) *float64 { return &v }

// Failed counts the failing rows.
func Failed(rows []Row) int {
	n := 0
	for _, r := range rows {
		if !r.Pass {
			n++
		}
	}
	return n
}

// format renders a value in its unit for the table.
func format(unit string, v float64) string {
	switch unit {
	case "flags":
		names := clock.StatusNames(int32(v))
		if len(names) == 0 {
			return "0"
		}
		return strings.Join(names, "\\|")
	case "state":
		return clock.State(int(v)).String()
	case "ppm":
		return trim(fmt.Sprintf("%.3f", v))
	case "µs":
		if v == math.Trunc(v) && math.Abs(v) < 1e12 {
			return fmt.Sprintf("%.0f", v)
		}
		return trim(fmt.Sprintf("%.3f", v))
	}
	return fmt.Sprintf("%g", v)
}

func trim(s string) string {
	if s == "-0.000" {
		return "0.000"
	}
	return s
}

// Markdown renders the rows as a Markdown table.
func Markdown(rows []Row) string {
	var b strings.Builder
	b.WriteString("| scenario | metric | unit | simulator | kernel | difference | tolerance | result |\n")
	b.WriteString("|---|---|---|---:|---:|---:|---:|---|\n")
	for _, r := range rows {
		cell := func(v *float64) string {
			if v == nil {
				return "—"
			}
			return format(r.Unit, *v)
		}
		diff := "—"
		if d := r.Diff(); !math.IsNaN(d) {
			switch r.Unit {
			case "flags", "state":
				diff = map[bool]string{true: "same", false: "differs"}[d == 0]
			default:
				diff = format(r.Unit, d)
			}
		}
		res := "pass"
		if !r.Pass {
			res = "**FAIL** " + r.Why
		}
		unit := r.Unit
		if unit == "flags" || unit == "state" {
			unit = ""
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n",
			r.Scenario, r.Metric, unit, cell(r.Sim), cell(r.Kernel), diff, tolString(r), res)
	}
	return b.String()
}

func tolString(r Row) string {
	if r.Tol == 0 {
		return "exact"
	}
	return format(r.Unit, r.Tol)
}
