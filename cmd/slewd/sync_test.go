package main

import (
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"slewd/boot"
	"slewd/clock"
	"slewd/ntpclient/ntptest"
)

// `slewd sync` on the simulated kernel: 0.4219 s ahead; the kernel is left
// slewing it out, nothing is stepped.
func TestSyncCommand(t *testing.T) {
	m := newSimMachine(t, 421900*time.Microsecond, ntptest.ServerConfig{}, ntptest.ServerConfig{}, ntptest.ServerConfig{})
	res := m.runCmd(t, 30*time.Second, true, append([]string{"sync", "--json"}, m.servers...)...)
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	j := decodeOneShot(t, res.stdout)
	if j.Action != "slew" || math.Abs(j.OffsetS+0.4219) > 1e-3 || j.StepS != 0 || j.Sources < 2 {
		t.Errorf("JSON %+v", j)
	}
	ss, err := clock.NewDriver(m.w).SingleshotRemaining()
	if err != nil || ss > -400*time.Millisecond || ss < -421900*time.Microsecond {
		t.Errorf("pending singleshot %v (%v), want about -421.9ms less what was slewed since", ss, err)
	}
	if len(m.rec.Jumps) != 0 {
		t.Errorf("stepped: %+v", m.rec.Jumps)
	}
	// Text, and --quiet prints nothing when all is well.
	m2 := newSimMachine(t, -50*time.Millisecond, ntptest.ServerConfig{}, ntptest.ServerConfig{})
	res = m2.runCmd(t, 30*time.Second, true, append([]string{"sync"}, m2.servers...)...)
	if res.code != 0 || !regexp.MustCompile(`^slewd sync: slew \+0\.0(49|50)\d+ s: clock (49|50)\.\d+ms behind: slewing it at 500 ppm \(1m40s;`).MatchString(res.stdout) {
		t.Errorf("exit %d, stdout %q", res.code, res.stdout)
	}
	m3 := newSimMachine(t, -50*time.Millisecond, ntptest.ServerConfig{}, ntptest.ServerConfig{})
	if res = m3.runCmd(t, 30*time.Second, true, append([]string{"sync", "--quiet"}, m3.servers...)...); res.code != 0 || res.stdout != "" {
		t.Errorf("--quiet: exit %d, stdout %q", res.code, res.stdout)
	}
}

func TestSyncCommandExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		clockErr time.Duration
		server   ntptest.ServerConfig
		args     []string
		priv     bool
		code     int
		msg      string
	}{
		{"an hour off: refused", time.Hour, ntptest.ServerConfig{}, nil, true, boot.ExitRefused, "too far to slew"},
		{"no answer", 0, ntptest.ServerConfig{Drop: true}, []string{"--samples", "2"}, true, boot.ExitNoSync, "no usable time"},
		{"unprivileged", 0, ntptest.ServerConfig{}, nil, false, boot.ExitNoPerm, "CAP_SYS_TIME"},
		{"unprivileged dry run", time.Second, ntptest.ServerConfig{}, []string{"--dry-run"}, false, 0, "slew -1.0"},
		{"bad samples", 0, ntptest.ServerConfig{}, []string{"--samples", "9"}, true, boot.ExitUsage, "--samples"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newSimMachine(t, tc.clockErr, tc.server)
			res := m.runCmd(t, time.Minute, tc.priv, append(append([]string{"sync"}, tc.args...), m.servers...)...)
			if res.code != tc.code || !strings.Contains(res.stdout+res.stderr, tc.msg) {
				t.Errorf("exit %d, stdout %q stderr %q; want %d and %q", res.code, res.stdout, res.stderr, tc.code, tc.msg)
			}
			if len(m.rec.Jumps) != 0 {
				t.Error("sync stepped")
			}
		})
	}
}

// The real binary without clock rights: `slewd sync --dry-run` measures
// loopback servers, `slewd sync` is refused with 77.
func TestSyncBinaryUnprivileged(t *testing.T) {
	addrs := loopbackServers(t, 3, ntptest.ServerConfig{Offset: -30 * time.Millisecond})
	out, errOut, code, _ := unprivileged(t, "", append([]string{"sync", "--dry-run", "--json", "--samples", "2", "--interval", "20ms", "--run-dir", t.TempDir()}, addrs...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if j := decodeOneShot(t, out); j.Action != "slew" || math.Abs(j.OffsetS+0.03) > 0.005 || !j.DryRun {
		t.Errorf("JSON %+v", j)
	}
	_, errOut, code, _ = unprivileged(t, "", append([]string{"sync", "--run-dir", t.TempDir()}, addrs...)...)
	if code != boot.ExitNoPerm {
		t.Errorf("without clock rights: exit %d: %s", code, errOut)
	}
}
