package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// The simulations themselves are tested in package simulation; here, the
// command's flags and output.
func TestSimulateCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	app := newApp()
	app.Writer, app.ErrWriter = &out, &errOut
	if err := app.Run([]string{"slewd", "simulate", "--clock-error=+13s", "--duration=5m", "--json"}); err != nil {
		t.Fatalf("%v: %s", err, errOut.String())
	}
	var got map[string]any
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, out.String())
	}
	for _, k := range []string{"converged_after_s", "backward_steps", "max_backward_s", "rms_error_after_convergence_s",
		"max_abs_error_after_convergence_s", "final_error_s", "max_rate_ppm", "rms_error_after_1h_s", "max_abs_error_after_1h_s"} {
		if _, ok := got[k]; !ok {
			t.Errorf("--json lacks %q", k)
		}
	}
	if got["rms_error_after_1h_s"] != nil {
		t.Errorf("a 5 min run has no figures after 1 h, got %v", got["rms_error_after_1h_s"])
	}
	if c, ok := got["converged_after_s"].(float64); !ok || c > 135 {
		t.Errorf("converged_after_s %v", got["converged_after_s"])
	}
	// 5 min: the initial burst, then polls at 64 s at first.
	if q, ok := got["ntp_queries"].(float64); !ok || q < 4+3 || q > 8+6 {
		t.Errorf("ntp_queries %v in 5 min", got["ntp_queries"])
	}

	out.Reset()
	app = newApp()
	app.Writer, app.ErrWriter = &out, &errOut
	if err := app.Run([]string{"slewd", "simulate", "--clock-error=54"}); err == nil || !strings.Contains(err.Error(), "+54s") {
		t.Errorf("a bad --clock-error should say how to write it, got %v", err)
	}
}

func TestSimulateLeapSecondFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	app := newApp()
	app.Writer, app.ErrWriter = &out, &errOut
	if err := app.Run([]string{"slewd", "simulate", "--clock-error=10ms", "--servers=4", "--leap-second=insert", "--leap-at=5m", "--duration=10m"}); err != nil {
		t.Fatalf("%v: %s", err, errOut.String())
	}
	for _, want := range []string{"a leap second (insert) at 5m0s, errors against UTC", "leap second: slewed, within 1 ms of UTC", "0 backward steps"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
	for _, args := range [][]string{
		{"--leap-second=smear"},
		{"--leap-second=delete", "--leap-at=1h", "--duration=30m"},
		{"--leap-second=insert", "--leap-ignorers=2", "--servers=1"},
	} {
		app = newApp()
		app.Writer, app.ErrWriter = &out, &errOut
		if err := app.Run(append([]string{"slewd", "simulate"}, args...)); err == nil || !strings.Contains(err.Error(), "--leap-") {
			t.Errorf("%v: got %v, want a complaint about a --leap- flag", args, err)
		}
	}
}
