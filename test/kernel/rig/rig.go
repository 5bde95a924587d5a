// Package rig is the host half of the real-kernel rig: it boots a Go test
// package as /init (PID 1) of a throwaway qemu guest under software
// emulation (TCG), on Debian's cloud kernel, and returns what the guest
// reported. Clock-changing tests run there and nowhere else: the guest's
// clock is the guest's, and the guest is gone when the test ends.
//
// A host test boots a scenario package (whose TestMain is guest.Main):
//
//	res := rig.Boot(t, rig.Config{Package: "./test/kernel/scenarios/clockconf", Slewd: true})
//	kernel, err := rig.Decode[conformance.Result](res, "conformance")
//
// Boot fails the test loudly when the rig cannot run (no qemu, no kernel,
// a kernel panic, a timeout), and marks it failed when a guest test
// failed. SLEWD_SKIP_KERNEL=1 or `go test -short` skips it instead.
// See docs/rig.md.
package rig

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"slewd/test/kernel/guest"
)

// Config is one boot of the guest.
type Config struct {
	// Package is the guest scenario package, relative to the module root
	// (e.g. "./test/kernel/scenarios/clockconf"). Its test binary is /init.
	Package string
	// Run selects the guest's tests (-test.run); empty runs them all.
	// Kernel command-line words cannot contain spaces.
	Run string
	// Args are more arguments for the guest test binary.
	Args []string
	// Files go into the initramfs besides /init.
	Files []File
	// Slewd builds ./cmd/slewd static and installs it as /usr/sbin/slewd.
	Slewd bool
	// Chrony adds Debian's chronyd 4.3 (fetched with apt-get download,
	// never installed) with its libraries, /etc/passwd, /run/chrony 0750
	// and /var/lib/chrony. See Chrony.
	Chrony bool
	// ICount runs qemu with -icount shift=2,sleep=off: guest time is
	// virtual (1 instruction = 4 ns) and idle time is skipped, so sleeps
	// cost no wall time. Clock reads cost virtual time (brackets ~8 µs).
	ICount bool
	// Timeout is the wall-clock limit of the whole boot (default 3 min).
	Timeout time.Duration
	// KernelArgs are more kernel command-line words (before the marker).
	KernelArgs []string
	// MemoryMiB is the guest's RAM (default 256).
	MemoryMiB int
}

// Result is what a boot produced.
type Result struct {
	Console string        // the serial console, \r removed
	Code    int           // the guest test binary's exit status (0: all passed)
	Wall    time.Duration // qemu's wall-clock run time
	Build   time.Duration // building the guest binary and the initramfs
	Boot    guest.Boot    // what init saw (kernel, clocksource, uptime)
	TestsS  float64       // guest seconds spent in m.Run
	Records []Record      // RIG-RESULT lines, in order
	LogPath string        // a copy of the console
}

// Record is one RIG-RESULT line (guest.Emit).
type Record struct {
	Test string          `json:"test"`
	Kind string          `json:"kind"`
	Data json.RawMessage `json:"data"`
}

// Decode returns the data of every record of kind, decoded as T.
func Decode[T any](r *Result, kind string) ([]T, error) {
	var out []T
	for _, rec := range r.Records {
		if rec.Kind != kind {
			continue
		}
		var v T
		if err := json.Unmarshal(rec.Data, &v); err != nil {
			return out, fmt.Errorf("rig result %s from %s: %w", kind, rec.Test, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// Skip skips t when the rig is switched off: SLEWD_SKIP_KERNEL=1 or -short.
func Skip(t testing.TB) {
	t.Helper()
	if v := os.Getenv("SLEWD_SKIP_KERNEL"); v != "" && v != "0" {
		t.Skip("kernel rig skipped: SLEWD_SKIP_KERNEL=" + v)
	}
	if testing.Short() {
		t.Skip("kernel rig skipped: -short")
	}
}

const qemuBinary = "qemu-system-x86_64"

// Boot builds the guest, boots it and returns its results. It fails t
// (Fatal) when the rig cannot run, and marks t failed (Error, with the
// console's tail) when the guest's tests failed.
func Boot(t testing.TB, cfg Config) *Result {
	t.Helper()
	Skip(t)
	qemu, err := exec.LookPath(qemuBinary)
	if err != nil {
		t.Fatalf("kernel rig: %s not found: install it with `apt-get install --no-install-recommends qemu-system-x86 cpio` "+
			"(.ci/run does), or skip the rig with SLEWD_SKIP_KERNEL=1", qemuBinary)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 3 * time.Minute
	}
	if cfg.MemoryMiB == 0 {
		cfg.MemoryMiB = 256
	}
	kernel := Kernel(t)
	start := time.Now()
	work := t.TempDir()
	files := baseFiles()
	initBin := filepath.Join(work, "init")
	buildGo(t, initBin, "test", "-c", cfg.Package)
	files = append(files, File{Path: "/init", Src: initBin, Mode: 0o755})
	if cfg.Slewd {
		files = append(files, BuildSlewd(t, work))
	}
	if cfg.Chrony {
		files = append(files, Chrony(t)...)
	}
	files = append(files, cfg.Files...)
	initrd := filepath.Join(work, "initrd.cpio")
	f, err := os.Create(initrd)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteInitramfs(f, files); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	cmdline, err := commandLine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	res := &Result{Build: time.Since(start)}
	args := qemuArgs(cfg, kernel, initrd, cmdline)

	ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, args...)
	cmd.WaitDelay = 5 * time.Second
	var console, stderr bytes.Buffer
	var out io.Writer = &console
	if os.Getenv("SLEWD_RIG_VERBOSE") != "" {
		out = io.MultiWriter(&console, os.Stderr)
	}
	cmd.Stdout, cmd.Stderr = out, &stderr
	t.Logf("kernel rig: booting %s (%s, %s)", cfg.Package, filepath.Base(kernel), map[bool]string{true: "icount", false: "TCG real time"}[cfg.ICount])
	qstart := time.Now()
	runErr := cmd.Run()
	res.Wall = time.Since(qstart)
	res.Console = strings.ReplaceAll(console.String(), "\r", "")
	res.LogPath = saveLog(t, res.Console)
	status := -1
	var ee *exec.ExitError
	switch {
	case runErr == nil:
		status = 0
	case errors.As(runErr, &ee) && ee.Exited():
		status = ee.ExitCode()
	}
	if ctx.Err() != nil {
		t.Fatalf("kernel rig: the guest did not finish within %v (console in %s):\n%s", cfg.Timeout, res.LogPath, tail(res.Console, 40))
	}
	parse(res)
	code, problem := decodeExit(status, res.Console)
	if status < 0 && problem == "" {
		problem = fmt.Sprintf("qemu: %v", runErr)
	}
	if problem != "" {
		t.Fatalf("kernel rig: %s; qemu stderr: %s\nconsole (%s):\n%s", problem, strings.TrimSpace(stderr.String()), res.LogPath, tail(res.Console, 60))
	}
	res.Code = code
	t.Logf("kernel rig: %s: guest status %d, %v wall (build %v), init at %.2f s guest uptime, tests %.1f s guest time, kernel %s, clocksource %s",
		cfg.Package, code, res.Wall.Round(time.Millisecond), res.Build.Round(time.Millisecond), res.Boot.UptimeS, res.TestsS, res.Boot.Kernel, res.Boot.Clocksource)
	if code != 0 {
		t.Errorf("kernel rig: guest tests failed (status %d; console in %s):\n%s", code, res.LogPath, failures(res.Console))
	}
	return res
}

// baseFiles are in every guest: a console node, mount points, a root user.
func baseFiles() []File {
	return []File{
		{Path: "/dev/console", Mode: os.ModeDevice | os.ModeCharDevice | 0o600, Major: 5, Minor: 1},
		Dir("/proc", 0o555), Dir("/sys", 0o555), Dir("/tmp", 0o1777), Dir("/root", 0o700),
		DataFile("/etc/passwd", []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644),
		DataFile("/etc/group", []byte("root:x:0:\n"), 0o644),
	}
}

// commandLine is the kernel command line: console on the serial port, a
// panic ends qemu at once (-no-reboot), hpet as the clocksource (the
// tsc-early → tsc switch 0.4 s after init would skew any measurement
// across it), the rig marker, and after "--" the test binary's arguments.
func commandLine(cfg Config) (string, error) {
	words := []string{"console=ttyS0", "panic=-1", "quiet", "clocksource=hpet"}
	words = append(words, cfg.KernelArgs...)
	words = append(words, guest.Marker, "--", "-test.v", "-test.timeout="+(cfg.Timeout-10*time.Second).String())
	if cfg.Run != "" {
		words = append(words, "-test.run="+cfg.Run)
	}
	words = append(words, cfg.Args...)
	for _, w := range words {
		if w == "" || strings.ContainsAny(w, " \t\n\"") {
			return "", fmt.Errorf("kernel rig: command-line word %q is empty or has spaces or quotes", w)
		}
	}
	s := strings.Join(words, " ")
	if len(s) > 2000 {
		return "", fmt.Errorf("kernel rig: command line of %d bytes is over the kernel's 2048", len(s))
	}
	return s, nil
}

func qemuArgs(cfg Config, kernel, initrd, cmdline string) []string {
	args := []string{
		"-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
		"-accel", "tcg", "-cpu", "max", "-smp", "1", "-m", strconv.Itoa(cfg.MemoryMiB),
		"-serial", "stdio", "-monitor", "none",
		"-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
		"-nic", "none",
	}
	if cfg.ICount {
		args = append(args, "-icount", "shift=2,sleep=off")
	}
	return append(args, "-kernel", kernel, "-initrd", initrd, "-append", cmdline)
}

var exitLine = regexp.MustCompile(`(?m)^` + guest.ExitPrefix + `(-?\d+) ([0-9.]+)$`)

// decodeExit turns qemu's exit status into the guest's test status. The
// guest writes 16+code to isa-debug-exit and qemu exits (16+code)*2+1, an
// odd status ≥ 33 that no qemu error (1) or signal can fake. If the guest
// powered off instead (status 0), its RIG-EXIT line says the status; a
// kernel panic or a guest without a result is a problem, not a pass.
func decodeExit(status int, console string) (code int, problem string) {
	if status >= 33 && status%2 == 1 && status < 256 {
		return (status-1)/2 - 16, ""
	}
	if i := strings.Index(console, "Kernel panic"); i >= 0 {
		line, _, _ := strings.Cut(console[i:], "\n")
		return -1, "the guest kernel panicked: " + line
	}
	if status == 0 {
		if m := exitLine.FindAllStringSubmatch(console, -1); m != nil {
			c, _ := strconv.Atoi(m[len(m)-1][1])
			return c, ""
		}
		return -1, "the guest ended without reporting a result"
	}
	return -1, fmt.Sprintf("qemu exited with status %d", status)
}

// parse collects the RIG-* lines of the console.
func parse(r *Result) {
	sc := bufio.NewScanner(strings.NewReader(r.Console))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, guest.ResultPrefix):
			var rec Record
			if err := json.Unmarshal([]byte(line[len(guest.ResultPrefix):]), &rec); err == nil {
				r.Records = append(r.Records, rec)
			}
		case strings.HasPrefix(line, guest.BootPrefix):
			json.Unmarshal([]byte(line[len(guest.BootPrefix):]), &r.Boot)
		}
	}
	if m := exitLine.FindAllStringSubmatch(r.Console, -1); m != nil {
		r.TestsS, _ = strconv.ParseFloat(m[len(m)-1][2], 64)
	}
}

// failures picks the failing tests' output from the console (go test -v).
func failures(console string) string {
	var b strings.Builder
	lines := strings.Split(console, "\n")
	for i, l := range lines {
		if strings.Contains(l, "--- FAIL") || strings.HasPrefix(strings.TrimSpace(l), "panic:") {
			for j := max(0, i-15); j < min(len(lines), i+15); j++ {
				b.WriteString(lines[j] + "\n")
			}
			b.WriteString("...\n")
		}
	}
	if b.Len() == 0 {
		return tail(console, 40)
	}
	return b.String()
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// saveLog keeps the console under the cache directory (logs/), named after the test.
func saveLog(t testing.TB, console string) string {
	dir := filepath.Join(CacheDir(t), "logs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return ""
	}
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()) + ".log"
	p := filepath.Join(dir, name)
	if os.WriteFile(p, []byte(console), 0o644) != nil {
		return ""
	}
	return p
}
