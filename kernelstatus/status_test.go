package kernelstatus

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"slewd/boot"
	"slewd/clock"
	"slewd/clock/simclock"
	"slewd/hostinfo"
)

// kernel builds what boot.ReadKernel returns.
func kernel(k clock.KernelState, singleshot time.Duration) boot.KernelClock {
	return boot.KernelClock{KernelState: k, Singleshot: singleshot}
}

func TestDecodeStatus(t *testing.T) {
	const ms = time.Millisecond
	unsync := clock.NTPStatus{Unsync: true}
	atBoot := clock.KernelState{State: clock.TimeError, Tick: 10000, Status: unsync, MaxError: 16 * time.Second, EstError: 16 * time.Second, TimeConstant: 2, TolerancePPM: 500}
	for _, tc := range []struct {
		name     string
		k        clock.KernelState
		ss       time.Duration
		sync     bool
		reasons  int
		ratePPM  float64
		pllS     float64
		pllLeftS float64
		verdict  []string // substrings
	}{
		{name: "boot defaults", k: atBoot, reasons: 2,
			verdict: []string{"unsynchronized", "tick and frequency are nominal"}},
		{name: "synchronized, frequency corrected", sync: true, ratePPM: 12.5,
			k:       clock.KernelState{State: clock.TimeOK, Tick: 10000, FrequencyPPM: 12.5, MaxError: 3 * ms, TimeConstant: 6},
			verdict: []string{"considers the clock synchronized", "+12.500 ppm", "oscillator"}},
		{name: "tick bias left behind", reasons: 1, ratePPM: -100000,
			k:       clock.KernelState{State: clock.TimeError, Tick: 9000, Status: unsync, MaxError: 5 * ms},
			verdict: []string{"running 10 % slow (tick 9000 µs) with no end in sight", "has died"}},
		{name: "tick and freq add", sync: true, ratePPM: 82000 - 500,
			k:       clock.KernelState{State: clock.TimeOK, Tick: 10820, FrequencyPPM: -500, MaxError: 100 * time.Microsecond},
			verdict: []string{"running 8.15 % fast"}},
		{name: "singleshot pending", k: atBoot, reasons: 2, ss: -20500 * time.Microsecond,
			verdict: []string{"adjtime() slew of -20.500 ms is pending", "500 ppm slow", "41 s left"}},
		{name: "PLL offset, time constant 0", sync: true, pllS: 0.3, pllLeftS: 44,
			k:       clock.KernelState{State: clock.TimeOK, Tick: 10000, Status: clock.PLLMode(true), PLLOffset: 300 * ms},
			verdict: []string{"PLL is slewing out +300.000 ms", "1/4 of the rest", "7.5 % fast now", "44 s until it is within 1 µs"}},
		{name: "PLL offset, time constant 6", sync: true, pllS: -0.002,
			k:       clock.KernelState{State: clock.TimeOK, Tick: 10000, Status: clock.NTPStatus{PLL: true}, PLLOffset: -2 * ms, TimeConstant: 6},
			verdict: []string{"-2.000 ms", "1/256 of the rest"}},
		{name: "clock error", reasons: 1,
			k:       clock.KernelState{State: clock.TimeError, Tick: 10000, Status: clock.NTPStatus{ClockErr: true}, MaxError: 10 * time.Microsecond},
			verdict: []string{"unsynchronized"}},
		{name: "leap second pending", sync: true,
			k:       clock.KernelState{State: clock.TimeIns, Tick: 10000, Status: clock.NTPStatus{LeapInsert: true}, MaxError: 10 * time.Microsecond},
			verdict: []string{"leap second will be inserted"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Decode(kernel(tc.k, tc.ss), "hpet", 0)
			if s.Synchronized != tc.sync {
				t.Errorf("synchronized %v, want %v", s.Synchronized, tc.sync)
			}
			if len(s.UnsyncReasons) != tc.reasons {
				t.Errorf("reasons %q, want %d", s.UnsyncReasons, tc.reasons)
			}
			if math.Abs(s.RatePPM-tc.ratePPM) > 1e-9 {
				t.Errorf("rate %v ppm, want %v", s.RatePPM, tc.ratePPM)
			}
			if math.Abs(s.PLLOffsetS-tc.pllS) > 1e-12 {
				t.Errorf("PLL offset %v s, want %v", s.PLLOffsetS, tc.pllS)
			}
			if tc.pllLeftS != 0 && math.Abs(s.PLLLeftS-tc.pllLeftS) > 1 {
				t.Errorf("PLL left %v s, want %v", s.PLLLeftS, tc.pllLeftS)
			}
			if us := tc.ss.Microseconds(); s.PendingSingleshotS != float64(us)/1e6 || s.SingleshotLeftS != math.Abs(float64(us))/500 {
				t.Errorf("singleshot %v s, %v s left", s.PendingSingleshotS, s.SingleshotLeftS)
			}
			for _, want := range tc.verdict {
				if !strings.Contains(s.Verdict, want) {
					t.Errorf("verdict %q lacks %q", s.Verdict, want)
				}
			}
			if s.Synchronized && s.UnsyncInS == nil {
				t.Error("synchronized but no time until maxerror reaches 16 s")
			}
		})
	}
}

// The PLL time to 1 µs follows the kernel's decay: check it by iterating
// the kernel's per-second step.
func TestPLLLeftMatchesKernelDecay(t *testing.T) {
	for _, tc := range []struct {
		offsetNs, constant int64
	}{{3e8, 0}, {-2e6, 6}, {5e5, 2}, {999, 0}} {
		s := Decode(kernel(clock.KernelState{State: clock.TimeOK, Tick: 10000, Status: clock.PLLMode(true), PLLOffset: time.Duration(tc.offsetNs), TimeConstant: tc.constant}, 0), "", 0)
		off, n := math.Abs(float64(tc.offsetNs)), 0.0
		for off > 1000 {
			off -= off / float64(int64(1)<<(2+tc.constant))
			n++
		}
		if s.PLLLeftS != n {
			t.Errorf("offset %d ns tc %d: %v s left, kernel decay gives %v", tc.offsetNs, tc.constant, s.PLLLeftS, n)
		}
	}
}

// TestStatusOnSimulatedKernel reads a simulated kernel with a real
// singleshot pending, as an unprivileged process.
func TestStatusOnSimulatedKernel(t *testing.T) {
	w := simclock.New(simclock.Config{})
	d := clock.NewDriver(w)
	if _, err := d.ArmSingleshot(2 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if _, err := d.SetTick(9180); err != nil {
		t.Fatal(err)
	}
	var got Status
	var readErr error
	p := w.Spawn("status", false, func(ctx context.Context, p *simclock.Process) error {
		if err := clock.Sleep(ctx, p, 1500*time.Millisecond); err != nil {
			return err
		}
		got, readErr = Read(p, "hpet", 0)
		return nil
	})
	w.Run(10 * time.Second)
	if ok, err := p.Exited(); !ok || err != nil {
		t.Fatalf("process: exited %v, %v", ok, err)
	}
	if readErr != nil {
		t.Fatal(readErr)
	}
	// 1.5 s of MONOTONIC at 0.918 crosses one REALTIME second: one 500 µs chunk gone.
	if got.PendingSingleshotUs != 1500 || got.SingleshotLeftS != 3 {
		t.Errorf("pending %d µs, %v s left; want 1500 µs, 3 s", got.PendingSingleshotUs, got.SingleshotLeftS)
	}
	if got.TickUs != 9180 || math.Abs(got.RatePPM+82000) > 1e-9 {
		t.Errorf("tick %d rate %v", got.TickUs, got.RatePPM)
	}
	for _, want := range []string{"8.2 % slow", "no end in sight", "+1.500 ms is pending", "3 s left"} {
		if !strings.Contains(got.Verdict, want) {
			t.Errorf("verdict %q lacks %q", got.Verdict, want)
		}
	}
}

// jsonFields is s as `slewd status --json` has it, by key.
func jsonFields(t *testing.T, s Status) map[string]any {
	t.Helper()
	js, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(js, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestStatusTextAndJSON(t *testing.T) {
	s := Decode(kernel(clock.KernelState{State: clock.TimeError, Tick: 10000, Status: clock.NTPStatus{Unsync: true},
		MaxError: 16 * time.Second, EstError: 16 * time.Second, TimeConstant: 2}, 700*time.Microsecond), "tsc", 0)
	var text bytes.Buffer
	WriteText(&text, s)
	for _, want := range []string{"synchronized:  no (TIME_ERROR)", "clocksource:   tsc", "+700.000 µs pending (700 µs), 1 s left", "STA_UNSYNC (0x40)"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
	m := jsonFields(t, s)
	for _, k := range []string{"tick_us", "frequency_ppm", "synchronized", "maxerror_s", "esterror_s", "pending_singleshot_s", "status_flags", "pll_offset_s", "rate_ppm", "tai_offset_s", "clocksource", "state", "verdict",
		"frequency_raw", "status_raw", "pending_singleshot_us", "pll_offset_ns"} { // .ci/run reads these too
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
}

func TestStatusMachine(t *testing.T) {
	kvm := hostinfo.Machine{FS: fstest.MapFS{
		"sys/class/dmi/id/sys_vendor":   {Data: []byte("QEMU\n")},
		"sys/class/dmi/id/product_name": {Data: []byte("Standard PC (Q35 + ICH9, 2009)\n")},
		"sys/class/ptp/ptp0/clock_name": {Data: []byte("KVM virtual PTP\n")},
		"sys/class/ptp/ptp1/clock_name": {Data: []byte("e1000e\n")},
		"proc/self/uid_map":             {Data: []byte("         0          0 4294967295\n")},
		"proc/self/gid_map":             {Data: []byte("         0          0 4294967295\n")},
		"proc/self/setgroups":           {Data: []byte("allow\n")},
		"proc/1/environ":                {Data: []byte("HOME=/\x00")},
	}}
	s := Decode(kernel(clock.KernelState{State: clock.TimeOK, Tick: 10000}, 0), "kvm-clock", time.Hour).WithMachine(kvm)
	var text bytes.Buffer
	WriteText(&text, s)
	for _, want := range []string{"machine:       virtualization qemu, container none",
		"PHCs:          /dev/ptp0 (KVM virtual PTP): the host's clock, use it with --phc /dev/ptp0; /dev/ptp1 (e1000e)"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
	m := jsonFields(t, s)
	if m["virtualization"] != "qemu" || m["container"] != "none" || len(m["phcs"].([]any)) != 2 {
		t.Errorf("JSON: virtualization %v container %v phcs %v", m["virtualization"], m["container"], m["phcs"])
	}
	bare := s.WithMachine(hostinfo.Machine{FS: fstest.MapFS{}})
	if bare.Virtualization != "none" || bare.Container != "none" || bare.PHCs == nil {
		t.Errorf("bare metal: %q %q %v, want none, none, []", bare.Virtualization, bare.Container, bare.PHCs)
	}
}

// maxerror at its limit is explained by the uptime: up 18 minutes, it is
// the boot value, not "8.9 hours without a refresh"; every figure has a
// unit.
func TestStatusMaxErrorUptimeAndUnits(t *testing.T) {
	k := kernel(clock.KernelState{State: clock.TimeError, Tick: 10000, Status: clock.NTPStatus{Unsync: true},
		MaxError: 16 * time.Second, EstError: 16 * time.Second}, 0)
	for _, tc := range []struct {
		up        time.Duration
		want, not string
	}{
		{18 * time.Minute, "its value at boot: no time daemon has marked the clock synchronized since boot (up 18 min)", "8.9 hours"},
		{3 * 24 * time.Hour, "nothing has refreshed it for 8.9 hours (up 3 days)", "since boot (up"},
		{0, "nothing has refreshed it for 8.9 hours", "(up"},
	} {
		var text bytes.Buffer
		WriteText(&text, Decode(k, "tsc", tc.up))
		if !strings.Contains(text.String(), tc.want) || strings.Contains(text.String(), tc.not) {
			t.Errorf("up %v:\n%s\nwant %q, not %q", tc.up, text.String(), tc.want, tc.not)
		}
		for _, want := range []string{"PLL offset:    0 s,", "frequency +0.000 ppm (0 in the kernel's units of 2^-16 ppm)"} {
			if !strings.Contains(text.String(), want) {
				t.Errorf("text lacks %q:\n%s", want, text.String())
			}
		}
	}
}
