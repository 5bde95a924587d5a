package clockconf

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"slewd/clock"
	"slewd/clock/conformance"
	"slewd/test/kernel/guest"
)

// TestSlewdStatus runs the real slewd binary (rig.Config{Slewd: true}
// puts it at /usr/sbin/slewd) against a kernel clock with a tick bias and
// a singleshot pending, and checks what it reports. It is also the worked
// example of docs/rig.md: a child process, its output parsed, the clock
// restored for whatever runs next in this guest.
func TestSlewdStatus(t *testing.T) {
	c := guest.Clock(t)
	if _, err := os.Stat("/usr/sbin/slewd"); err != nil {
		t.Fatal("no /usr/sbin/slewd: boot this package with rig.Config{Slewd: true}")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t.Cleanup(func() {
		if err := conformance.Restore(context.Background(), c, clock.NewSystemLoop(1)); err != nil {
			t.Error(err)
		}
	})
	d := clock.NewDriver(c)
	if _, err := d.SetTick(9180); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ArmSingleshot(2 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, "/usr/sbin/slewd", "status", "--json").Output()
	if err != nil {
		t.Fatalf("slewd status --json: %v", err)
	}
	var st struct {
		TickUs              int64    `json:"tick_us"`
		RatePPM             float64  `json:"rate_ppm"`
		Synchronized        bool     `json:"synchronized"`
		PendingSingleshotUs int64    `json:"pending_singleshot_us"`
		StatusFlags         []string `json:"status_flags"`
		Clocksource         string   `json:"clocksource"`
		Verdict             string   `json:"verdict"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("slewd status --json printed %q: %v", out, err)
	}
	guest.Emit(t, "slewd-status", st)
	if st.TickUs != 9180 || st.RatePPM != -82000 || st.Synchronized || st.Clocksource != "hpet" {
		t.Errorf("status %+v", st)
	}
	// Set just now: at most one 500 µs chunk has gone.
	if st.PendingSingleshotUs != 2000 && st.PendingSingleshotUs != 1500 {
		t.Errorf("pending singleshot %d µs", st.PendingSingleshotUs)
	}
	for _, want := range []string{"8.2 % slow", "no end in sight", "is pending"} {
		if !strings.Contains(st.Verdict, want) {
			t.Errorf("verdict %q lacks %q", st.Verdict, want)
		}
	}
}
