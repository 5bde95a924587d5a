//go:build linux

package clock

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func pt(sec int64, nsec uint32) unix.PtpClockTime { return unix.PtpClockTime{Sec: sec, Nsec: nsec} }

func TestFromPrecise(t *testing.T) {
	r := fromPrecise(unix.PtpSysOffsetPrecise{Device: pt(1000, 500), Realtime: pt(999, 999_999_000), Monoraw: pt(42, 7)})
	if got, want := r.Offset(), 1500*time.Nanosecond; got != want {
		t.Errorf("offset %v, want %v", got, want)
	}
	if r.Raw != 42*time.Second+7 || r.Width != 0 {
		t.Errorf("raw %v width %v, want 42.000000007s and 0", r.Raw, r.Width)
	}
}

func TestExtendedTriplesNarrowest(t *testing.T) {
	var x unix.PtpSysOffsetExtended
	x.Samples = 3
	// REALTIME 100 s; the PHC 37 s ahead (TAI); brackets 900, 300, 2000 ns.
	x.Ts[0] = [3]unix.PtpClockTime{pt(100, 0), pt(137, 450), pt(100, 900)}
	x.Ts[1] = [3]unix.PtpClockTime{pt(100, 10_000), pt(137, 10_100), pt(100, 10_300)}
	x.Ts[2] = [3]unix.PtpClockTime{pt(100, 20_000), pt(137, 21_000), pt(100, 22_000)}
	x.Ts[3] = [3]unix.PtpClockTime{pt(1, 0), pt(1, 0), pt(1, 1)} // beyond Samples: ignored
	phc, real, w, err := narrowest(extendedTriples(x))
	if err != nil {
		t.Fatal(err)
	}
	if w != 300 {
		t.Errorf("width %v, want the narrowest, 300ns", w)
	}
	if off := phc.Sub(real); off != 37*time.Second-50 {
		t.Errorf("offset %v, want 37s−50ns (PHC at 10100, REALTIME midpoint 10150)", off)
	}
}

func TestBasicTriples(t *testing.T) {
	var x unix.PtpSysOffset
	x.Samples = 2
	// sys, phc, sys, phc, sys: the middle sys ends one triple and starts the next.
	x.Ts[0], x.Ts[1], x.Ts[2], x.Ts[3], x.Ts[4] = pt(5, 0), pt(5, 600), pt(5, 1000), pt(5, 1200), pt(5, 1400)
	ts := basicTriples(x)
	if len(ts) != 2 {
		t.Fatalf("%d triples, want 2", len(ts))
	}
	if ts[1].before != ts[0].after {
		t.Errorf("the second triple starts at %v, want the first's end %v", ts[1].before, ts[0].after)
	}
	phc, real, w, err := narrowest(ts)
	if err != nil || w != 400 || phc.Sub(real) != 0 {
		t.Errorf("got width %v offset %v err %v, want the second triple: 400ns, 0", w, phc.Sub(real), err)
	}
	x.Samples = 1000 // a corrupt count cannot read past the array
	if n := len(basicTriples(x)); n != 25 {
		t.Errorf("%d triples from a count of 1000, want 25", n)
	}
}

func TestNarrowestRejectsBackwardBrackets(t *testing.T) {
	t0 := time.Unix(100, 0)
	if _, _, _, err := narrowest([]phcTriple{{t0, t0, t0.Add(-time.Microsecond)}}); err == nil {
		t.Error("a bracket that runs backwards was taken as a reading")
	}
	if _, _, _, err := narrowest(nil); err == nil {
		t.Error("no triples gave a reading")
	}
	_, real, w, err := narrowest([]phcTriple{{t0, t0, t0.Add(-1)}, {t0, t0, t0.Add(2 * time.Microsecond)}})
	if err != nil || w != 2*time.Microsecond || !real.Equal(t0.Add(time.Microsecond)) {
		t.Errorf("got %v %v %v, want the forward bracket", real, w, err)
	}
}

func TestDegrade(t *testing.T) {
	for _, c := range []struct {
		m    phcMethod
		err  error
		want phcMethod
		ok   bool
	}{
		{phcPrecise, unix.EOPNOTSUPP, phcExtended, true}, // no cross-timestamp (ptp_kvm on most hosts)
		{phcPrecise, unix.ENOTTY, phcExtended, true},
		{phcExtended, unix.EINVAL, phcBasic, true},
		{phcExtended, unix.EOPNOTSUPP, phcBasic, true},
		{phcBasic, unix.EOPNOTSUPP, phcBasic, false}, // nothing left
		{phcPrecise, unix.EIO, phcPrecise, false},    // a failing device is an error, not a method
		{phcExtended, fmt.Errorf("wrapped: %w", unix.ENOTTY), phcBasic, true},
	} {
		got, ok := degrade(c.m, c.err)
		if got != c.want || ok != c.ok {
			t.Errorf("degrade(%v, %v) = %v, %v; want %v, %v", c.m, c.err, got, ok, c.want, c.ok)
		}
	}
}

func TestFromTriplesOnRAW(t *testing.T) {
	// REALTIME − RAW is 1000 s before the call and 1000 s + 2 µs after
	// (a slew); the reading sits halfway.
	a := Reading{Real: time.Unix(1100, 0), Raw: 100 * time.Second}
	b := Reading{Real: time.Unix(1100, 0).Add(20 * time.Microsecond), Raw: 100*time.Second + 18*time.Microsecond}
	real0 := time.Unix(1100, 0).Add(9 * time.Microsecond)
	r, err := fromTriples([]phcTriple{{real0, real0.Add(5 * time.Millisecond), real0.Add(2 * time.Microsecond)}}, a, b)
	if err != nil {
		t.Fatal(err)
	}
	if want := 1000*time.Second + time.Microsecond; r.RealMinusRaw() != want {
		t.Errorf("REALTIME − RAW %v, want %v", r.RealMinusRaw(), want)
	}
	if r.Offset() != 5*time.Millisecond-time.Microsecond || r.Width != 2*time.Microsecond {
		t.Errorf("offset %v width %v", r.Offset(), r.Width)
	}
}

func TestPHCName(t *testing.T) {
	for _, c := range []struct{ dev, cn, want string }{
		{"/dev/ptp0", "ptp_kvm\n", "PHC0 (ptp_kvm)"},
		{"/dev/ptp12", "", "PHC12"},
		{"/dev/ptp_hyperv", "hyperv", "ptp_hyperv (hyperv)"},
		{"/dev/ptp", "x", "ptp (x)"},
	} {
		if got := PHCName(c.dev, c.cn); got != c.want {
			t.Errorf("PHCName(%q, %q) = %q, want %q", c.dev, c.cn, got, c.want)
		}
	}
}

func TestOpenPHCErrors(t *testing.T) {
	if _, err := OpenPHC(filepath.Join(t.TempDir(), "ptp9")); err == nil {
		t.Error("a missing device opened")
	}
	// A regular file is no PHC: every ioctl fails with ENOTTY.
	p := filepath.Join(t.TempDir(), "ptp0")
	os.WriteFile(p, nil, 0o644)
	if _, err := OpenPHC(p); err == nil {
		t.Error("a regular file opened as a PHC")
	}
}

// TestDevicePHC reads every PHC this machine has (read-only).
func TestDevicePHC(t *testing.T) {
	devs, _ := filepath.Glob("/dev/ptp[0-9]*")
	if len(devs) == 0 {
		t.Skip("no /dev/ptpN here")
	}
	for _, p := range devs {
		d, err := OpenPHC(p)
		if err != nil {
			t.Logf("%s: %v", p, err)
			continue
		}
		r, err := d.Read()
		d.Close()
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		t.Logf("%s: offset %v width %v method %s", d.Name(), r.Offset(), r.Width, r.Method)
	}
}
