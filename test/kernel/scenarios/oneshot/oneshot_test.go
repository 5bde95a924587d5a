// Package oneshot runs `slewd boot`, `slewd sync` and `slewd wait` (the
// real binary) against the real kernel clock of a throwaway qemu guest:
// boot steps a clock 54 s ahead once, --forward-only slews it instead, no
// server gives the documented exit status at the deadline, sync leaves a
// singleshot of the right size and sign, wait returns once `slewd run` has
// converged and times out otherwise. The NTP servers run in the guest and
// serve time derived from CLOCK_MONOTONIC_RAW (anchored at the start of
// each test), never the guest's clock. The host side is
// test/kernel/oneshot_test.go.
package oneshot

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"slewd/clock"
	"slewd/clock/conformance"
	"slewd/test/kernel/guest"
)

func TestMain(m *testing.M) { guest.Main(m) }

const slewdBin = "/usr/sbin/slewd"

// Record is what each scenario emits ("oneshot"); the host prints them.
type Record struct {
	Scenario     string  `json:"scenario"`
	Code         int     `json:"code"`
	TookS        float64 `json:"took_s"` // wall time of the command, guest clock (RAW)
	Action       string  `json:"action,omitempty"`
	OffsetS      float64 `json:"offset_s,omitempty"` // what slewd measured
	ErrorBeforeS float64 `json:"error_before_s"`     // REALTIME − truth before
	ErrorAfterS  float64 `json:"error_after_s"`      // and after
	JumpS        float64 `json:"jump_s"`             // change of REALTIME − RAW across the command
	SingleshotUs int64   `json:"singleshot_us"`      // pending after the command
	Status       string  `json:"status,omitempty"`   // kernel status flags after
	Note         string  `json:"note,omitempty"`
}

// kernel reads the kernel's state and the pending singleshot, in µs.
func kernel(t *testing.T, c clock.Clock) (clock.KernelState, int64) {
	t.Helper()
	d := clock.NewDriver(c)
	k, err := d.Read()
	if err != nil {
		t.Fatal(err)
	}
	ss, err := d.SingleshotRemaining()
	if err != nil {
		t.Fatal(err)
	}
	return k, ss.Microseconds()
}

// slewd runs the binary and returns its stdout, stderr and exit status.
func slewd(t *testing.T, args ...string) (string, string, int, time.Duration) {
	t.Helper()
	cmd := exec.Command(slewdBin, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := clock.System{}.Raw()
	err := cmd.Run()
	took := clock.System{}.Raw() - start
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	t.Logf("slewd %s: status %d in %v\n%s%s", strings.Join(args, " "), code, took, out.String(), errOut.String())
	return out.String(), errOut.String(), code, took
}

type bootJSON struct {
	Action          string  `json:"action"`
	OffsetS         float64 `json:"offset_s"`
	Sources         int     `json:"sources"`
	StepS           float64 `json:"step_s"`
	SlewS           float64 `json:"slew_s"`
	BackwardRefused bool    `json:"backward_refused"`
	ExitCode        int     `json:"exit_code"`
	KernelSynced    bool    `json:"kernel_synchronized"`
}

func decode(t *testing.T, out string) bootJSON {
	t.Helper()
	var j bootJSON
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	return j
}

func stateDir(t *testing.T) string {
	d, err := os.MkdirTemp("/tmp", "slewd-state")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// The guest clock 54 s ahead: slewd boot steps it back once and exits 0.
func TestBootStepsBack(t *testing.T) {
	c := guest.Clock(t)
	w := guest.NewTruth(t, c, 3)
	guest.Step(t, c, 54*time.Second)
	prior, _ := kernel(t, c) // the test's own step set STA_NANO
	before, rmr0 := w.ClockError(), clock.Read(c, 6).RealMinusRaw()
	out, _, code, took := slewd(t, append([]string{"boot", "--json", "--state-dir", stateDir(t)}, w.Addrs...)...)
	rmr1 := clock.Read(c, 6).RealMinusRaw()
	after := w.ClockError()
	tx, ss := kernel(t, c)
	j := decode(t, out)
	guest.Emit(t, "oneshot", Record{Scenario: "boot, clock 54 s ahead", Code: code, TookS: took.Seconds(), Action: j.Action, OffsetS: j.OffsetS,
		ErrorBeforeS: before.Seconds(), ErrorAfterS: after.Seconds(), JumpS: (rmr1 - rmr0).Seconds(), SingleshotUs: ss,
		Status: strings.Join(tx.Status.Names(), "|")})
	if code != 0 || j.Action != "step" || j.ExitCode != 0 || j.Sources < 2 {
		t.Fatalf("status %d, JSON %+v", code, j)
	}
	// One step of -54 s: REALTIME − RAW moved by the step and nothing else.
	if math.Abs((rmr1-rmr0).Seconds()-j.StepS) > 0.002 || math.Abs(j.StepS+54) > 0.01 {
		t.Errorf("REALTIME − RAW moved %v; the step was %v s", rmr1-rmr0, j.StepS)
	}
	if after.Abs() > 5*time.Millisecond {
		t.Errorf("clock off by %v after boot", after)
	}
	// Tick and frequency untouched, nothing pending, the status bits as
	// they were but for STA_UNSYNC (boot's ADJ_SETOFFSET|ADJ_NANO must not
	// change the kernel's units either).
	st, was := tx.Status, prior.Status
	st.Unsync, was.Unsync = false, false
	if tx.Tick != clock.NominalTick || tx.FrequencyPPM != 0 || ss != 0 || st != was {
		t.Errorf("kernel left with tick %d freq %v ppm singleshot %d status %v (before: %v)", tx.Tick, tx.FrequencyPPM, ss,
			tx.Status.Names(), prior.Status.Names())
	}
	if j.KernelSynced != !tx.Status.Unsync {
		t.Errorf("JSON says kernel synchronized %v, status %v", j.KernelSynced, tx.Status.Names())
	}
}

// --forward-only with the clock 54 s ahead: no step back; the 54 s go to
// the singleshot and boot says so.
func TestBootForwardOnly(t *testing.T) {
	c := guest.Clock(t)
	w := guest.NewTruth(t, c, 3)
	guest.Step(t, c, 54*time.Second)
	before, rmr0 := w.ClockError(), clock.Read(c, 6).RealMinusRaw()
	out, errOut, code, took := slewd(t, append([]string{"boot", "--forward-only", "--json", "--state-dir", stateDir(t)}, w.Addrs...)...)
	rmr1 := clock.Read(c, 6).RealMinusRaw()
	tx, ss := kernel(t, c)
	j := decode(t, out)
	guest.Emit(t, "oneshot", Record{Scenario: "boot --forward-only, clock 54 s ahead", Code: code, TookS: took.Seconds(), Action: j.Action,
		OffsetS: j.OffsetS, ErrorBeforeS: before.Seconds(), ErrorAfterS: w.ClockError().Seconds(), JumpS: (rmr1 - rmr0).Seconds(),
		SingleshotUs: ss, Status: strings.Join(tx.Status.Names(), "|")})
	if code != 0 || j.Action != "slew" || !j.BackwardRefused || j.StepS != 0 {
		t.Fatalf("status %d, JSON %+v", code, j)
	}
	// Not stepped: REALTIME − RAW moved only by the slew (500 µs/s at most).
	if d := (rmr1 - rmr0).Abs(); d > time.Duration(took.Seconds()*500e3+2e6) {
		t.Errorf("REALTIME − RAW moved %v during %v", rmr1-rmr0, took)
	}
	if ss > -53_900_000 || ss < -54_010_000 {
		t.Errorf("pending singleshot %d µs, want about -54 s", ss)
	}
	if !strings.Contains(errOut, "--forward-only forbids stepping it back") {
		t.Errorf("no warning on stderr: %q", errOut)
	}
}

// No server: boot gives up at --deadline with status 3 (4 with
// --require-sync), clock untouched.
func TestBootNoServer(t *testing.T) {
	c := guest.Clock(t)
	w := guest.NewTruth(t, c, 0)
	for _, tc := range []struct {
		args []string
		code int
	}{{nil, 3}, {[]string{"--require-sync"}, 4}} {
		rmr0 := clock.Read(c, 6).RealMinusRaw()
		args := append(append([]string{"boot", "--json", "--deadline", "3s", "--state-dir", stateDir(t)}, tc.args...), "127.0.0.1:9", "127.0.0.1:10")
		out, errOut, code, took := slewd(t, args...)
		rmr1 := clock.Read(c, 6).RealMinusRaw()
		j := decode(t, out)
		guest.Emit(t, "oneshot", Record{Scenario: "boot, no server " + strings.Join(tc.args, " "), Code: code, TookS: took.Seconds(),
			Action: j.Action, ErrorAfterS: w.ClockError().Seconds(), JumpS: (rmr1 - rmr0).Seconds()})
		if code != tc.code || j.ExitCode != tc.code || j.Action != "none" {
			t.Errorf("%v: status %d, JSON %+v", tc.args, code, j)
		}
		if took < 3*time.Second || took > 6*time.Second {
			t.Errorf("%v: gave up after %v, deadline 3 s", tc.args, took)
		}
		if (rmr1 - rmr0).Abs() > 100*time.Microsecond {
			t.Errorf("clock moved %v", rmr1-rmr0)
		}
		if !strings.Contains(errOut, "not synchronized after") {
			t.Errorf("stderr %q", errOut)
		}
	}
}

// slewd sync leaves a pending singleshot of the right size and sign.
func TestSyncSingleshot(t *testing.T) {
	c := guest.Clock(t)
	for _, off := range []time.Duration{300 * time.Millisecond, -120 * time.Millisecond} { // REALTIME − truth
		w := guest.NewTruth(t, c, 2)
		guest.Step(t, c, off)
		before, rmr0 := w.ClockError(), clock.Read(c, 6).RealMinusRaw()
		out, _, code, took := slewd(t, append([]string{"sync", "--json", "--samples", "2", "--interval", "1s",
			"--state-dir", stateDir(t), "--run-dir", stateDir(t)}, w.Addrs...)...)
		rmr1 := clock.Read(c, 6).RealMinusRaw()
		_, ss := kernel(t, c)
		j := decode(t, out)
		guest.Emit(t, "oneshot", Record{Scenario: fmt.Sprintf("sync, clock %v off", off), Code: code, TookS: took.Seconds(), Action: j.Action,
			OffsetS: j.OffsetS, ErrorBeforeS: before.Seconds(), ErrorAfterS: w.ClockError().Seconds(), JumpS: (rmr1 - rmr0).Seconds(), SingleshotUs: ss})
		if code != 0 || j.Action != "slew" {
			t.Fatalf("status %d, JSON %+v", code, j)
		}
		// The pending correction is -off (NTP sign), less what the kernel
		// has slewed since (500 µs per second) and within 0.05 % plus the
		// measurement error.
		want := -off.Microseconds()
		if math.Signbit(float64(ss)) != math.Signbit(float64(want)) || math.Abs(float64(ss-want)) > 3000 {
			t.Errorf("clock %v off: pending singleshot %d µs, want about %d", off, ss, want)
		}
		if (rmr1 - rmr0).Abs() > 3*time.Millisecond {
			t.Errorf("sync stepped: REALTIME − RAW moved %v", rmr1-rmr0)
		}
	}
}

// slewd wait returns once a running slewd run has converged, and times
// out when nothing synchronizes the clock.
func TestWait(t *testing.T) {
	c := guest.Clock(t)
	w := guest.NewTruth(t, c, 3)
	guest.Step(t, c, -200*time.Millisecond)
	runDir := stateDir(t)
	daemon := exec.Command(slewdBin, append([]string{"run", "--state-dir", stateDir(t), "--run-dir", runDir, "--log-level", "warn"}, w.Addrs...)...)
	var dlog bytes.Buffer
	daemon.Stdout, daemon.Stderr = &dlog, &dlog
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			daemon.Process.Signal(syscall.SIGTERM)
			daemon.Wait()
			stopped = true
		}
	}
	defer stop()
	_, errOut, code, took := slewd(t, "wait", "--timeout", "120s", "--max-correction", "5ms", "--run-dir", runDir)
	errAt := w.ClockError()
	tx, _ := kernel(t, c)
	guest.Emit(t, "oneshot", Record{Scenario: "wait for slewd run (clock 0.2 s behind)", Code: code, TookS: took.Seconds(),
		ErrorBeforeS: -0.2, ErrorAfterS: errAt.Seconds(), Status: strings.Join(tx.Status.Names(), "|")})
	if code != 0 {
		t.Fatalf("wait: status %d: %s\ndaemon:\n%s", code, errOut, dlog.String())
	}
	if errAt.Abs() > 6*time.Millisecond {
		t.Errorf("wait returned with the clock %v off", errAt)
	}
	if tx.Status.Unsync {
		t.Errorf("wait returned while the kernel says unsynchronized: %v", tx.Status.Names())
	}
	stop()

	// Nothing keeps the clock now: STA_UNSYNC, and wait times out.
	if err := conformance.Restore(t.Context(), c, clock.NewSystemLoop(1)); err != nil {
		t.Fatal(err)
	}
	_, errOut, code, took = slewd(t, "wait", "--timeout", "2s", "--run-dir", stateDir(t))
	guest.Emit(t, "oneshot", Record{Scenario: "wait, nothing synchronizes", Code: code, TookS: took.Seconds()})
	if code != 3 || took < 2*time.Second || took > 4*time.Second || !strings.Contains(errOut, "not synchronized after 2s") {
		t.Errorf("wait without a daemon: status %d after %v: %s", code, took, errOut)
	}
}

var _ = filepath.Join
