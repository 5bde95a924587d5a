// Package guest is the in-guest half of the real-kernel rig: the test
// binary of a scenario package runs as /init (PID 1) in a throwaway qemu
// guest, and this package sets up the little userland it needs, reports
// results on the serial console and powers the guest off with the test
// status.
//
// A scenario package is an ordinary Go test package:
//
//	func TestMain(m *testing.M) { guest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		c := guest.Clock(t) // skips unless in a rig guest
//		...
//		guest.Emit(t, "mykind", result)
//	}
//
// On a host the tests skip themselves, so `go test ./...` is safe: the
// guard is that Clock (and Require) only let a test through when the
// process is PID 1 and the kernel command line carries Marker.
package guest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"slewd/clock"
)

// Marker is the kernel command-line parameter the host rig adds. Nothing
// in a guest test changes a clock unless it is present and the process is
// PID 1: a machine's real init never runs a Go test binary, and no real
// boot carries this parameter.
const Marker = "slewd.rig=1"

// Line prefixes on the console, parsed by the host (package rig).
const (
	ResultPrefix = "RIG-RESULT "
	BootPrefix   = "RIG-BOOT "
	ExitPrefix   = "RIG-EXIT "
)

var (
	guestOnce sync.Once
	isGuest   bool
)

// IsGuest reports whether this process is PID 1 of a rig guest.
func IsGuest() bool {
	guestOnce.Do(func() {
		if os.Getpid() != 1 {
			return
		}
		cmdline, err := os.ReadFile("/proc/cmdline")
		if err != nil {
			return
		}
		for _, f := range strings.Fields(string(cmdline)) {
			if f == Marker {
				isGuest = true
			}
		}
	})
	return isGuest
}

// Require skips t unless it runs in a rig guest.
func Require(t testing.TB) {
	t.Helper()
	if !IsGuest() {
		t.Skip("runs only as PID 1 in a throwaway qemu guest (test/kernel rig: make test-kernel)")
	}
}

// Clock returns the guest's real kernel clock, skipping t unless it runs
// in a rig guest: the only way a guest test gets a clock it may change.
func Clock(t testing.TB) clock.System {
	t.Helper()
	Require(t)
	return clock.System{}
}

// Boot describes the guest as init saw it.
type Boot struct {
	Kernel      string   `json:"kernel"`      // uname -r
	Clocksource string   `json:"clocksource"` // current_clocksource
	UptimeS     float64  `json:"uptime_s"`    // guest uptime when init started
	Args        []string `json:"args"`
}

var emitMu sync.Mutex

// Emit prints one machine-readable result line for the host:
// RIG-RESULT {"test":..., "kind":..., "data":...}. The host collects them
// with rig.Result.Records / Decode.
func Emit(t testing.TB, kind string, data any) {
	t.Helper()
	b, err := json.Marshal(struct {
		Test string `json:"test"`
		Kind string `json:"kind"`
		Data any    `json:"data"`
	}{t.Name(), kind, data})
	if err != nil {
		t.Fatalf("rig result %s: %v", kind, err)
	}
	emitMu.Lock()
	defer emitMu.Unlock()
	// One write, starting on a fresh line, so that kernel messages and
	// test output cannot split it.
	os.Stdout.Write(append(append([]byte("\n"+ResultPrefix), b...), '\n'))
}

// Main is TestMain for scenario packages. On a host it just runs the
// tests (which skip themselves). As PID 1 it refuses to run without
// Marker, sets up /proc, /sys, /dev, /tmp, /run and the loopback
// interface, runs the tests and powers off with their status.
func Main(m *testing.M) {
	if os.Getpid() != 1 {
		os.Exit(m.Run())
	}
	// Only /proc, and only if it is not there yet, before the marker is
	// checked: PID 1 of a pid namespace on a real machine must touch nothing.
	if _, err := os.Stat("/proc/cmdline"); err != nil {
		os.MkdirAll("/proc", 0o555)
		unix.Mount("proc", "/proc", "proc", 0, "")
	}
	if !IsGuest() {
		// PID 1 without the marker: a real machine, or a rig built wrongly.
		// No mounts, no I/O port: just exit (in a guest the kernel then
		// panics, and the host reports it with this line).
		fmt.Printf("rig guest: refusing to run: PID 1 but %q is not on the kernel command line\n", Marker)
		os.Exit(2)
	}
	if err := mountFS(); err != nil {
		fmt.Println("rig guest: setting up:", err)
	}
	os.Setenv("TMPDIR", "/tmp")
	os.Setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	os.Setenv("HOME", "/root")
	if err := loopbackUp(); err != nil {
		fmt.Println("rig guest: bringing lo up:", err)
		powerOff(3)
	}
	b := Boot{Kernel: uname(), Clocksource: Clocksource(), UptimeS: uptime(), Args: os.Args}
	line, _ := json.Marshal(b)
	fmt.Printf("\n%s%s\n", BootPrefix, line)
	start := time.Now()
	code := m.Run()
	fmt.Printf("\n%s%d %.3f\n", ExitPrefix, code, time.Since(start).Seconds())
	powerOff(code)
}

func mountFS() error {
	for _, mnt := range []struct{ src, dir, fs string }{
		{"sysfs", "/sys", "sysfs"},
		{"devtmpfs", "/dev", "devtmpfs"},
		{"tmpfs", "/tmp", "tmpfs"},
		{"tmpfs", "/run", "tmpfs"},
	} {
		if err := os.MkdirAll(mnt.dir, 0o755); err != nil {
			return err
		}
		// /run keeps what the initramfs put there (e.g. /run/chrony 0750):
		// the initramfs root is already writable memory.
		if mnt.dir == "/run" {
			if ents, _ := os.ReadDir("/run"); len(ents) > 0 {
				continue
			}
		}
		if err := unix.Mount(mnt.src, mnt.dir, mnt.fs, 0, ""); err != nil && err != unix.EBUSY {
			return fmt.Errorf("mount %s: %w", mnt.dir, err)
		}
	}
	return nil
}

// loopbackUp sets IFF_UP on lo with SIOCSIFFLAGS (no netlink needed).
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCGIFFLAGS: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP | unix.IFF_RUNNING)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCSIFFLAGS: %w", err)
	}
	return nil
}

// Clocksource is the kernel's current clocksource.
func Clocksource() string {
	b, err := os.ReadFile("/sys/devices/system/clocksource/clocksource0/current_clocksource")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func uname() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

func uptime() float64 {
	b, _ := os.ReadFile("/proc/uptime")
	var up float64
	fmt.Sscan(string(b), &up)
	return up
}

// powerOff ends the guest with status code: through qemu's isa-debug-exit
// device (qemu then exits with (16+code)*2+1), or, failing that, by
// powering off (the host then reads the RIG-EXIT line). Only in a guest:
// an I/O port write on a real machine could do anything.
func powerOff(code int) {
	if !IsGuest() {
		os.Exit(code)
	}
	os.Stdout.Sync()
	unix.Sync()
	if err := debugExit(code); err != nil {
		fmt.Println("rig guest: isa-debug-exit:", err)
	}
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	os.Exit(code) // not reached; PID 1 exiting panics the kernel
}

// KeepTicking wakes the guest every millisecond until ctx is done, so that
// its CPU never idles long enough for the NO_HZ kernel to stop the
// scheduler tick. With the tick stopped the kernel runs timekeeping, and
// so second_overflow (the per-second singleshot and PLL chunks), only at
// the next wakeup, which may be many milliseconds after the REALTIME
// second boundary; with it running, within one tick (1/HZ).
func KeepTicking(ctx context.Context) {
	go func() {
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}
