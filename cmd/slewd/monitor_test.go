package main

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"slewd/ntpclient/ntptest"
)

func TestMonitorModeFlag(t *testing.T) {
	for _, c := range []struct {
		in   string
		want monitorMode
		err  bool
	}{
		{"true", monitorYes, false}, // --monitor-only alone
		{"yes", monitorYes, false},
		{"no", monitorNo, false},
		{"false", monitorNo, false},
		{"AUTO", monitorAuto, false},
		{"maybe", monitorNo, true},
	} {
		m := monitorNo
		err := m.Set(c.in)
		if (err != nil) != c.err || (err == nil && m != c.want) {
			t.Errorf("Set(%q) = %v, %v; want %v (error %v)", c.in, m, err, c.want, c.err)
		}
	}
}

// sandboxed runs the binary in a user namespace (no clock rights) with
// tmpfs over /run and /var/lib, so that nothing it might write there
// reaches the host, and returns its stderr lines as they come.
func sandboxed(t *testing.T, args ...string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("unshare (util-linux) not installed")
	}
	if out, err := exec.Command(unshare, "--user", "--map-root-user", "--mount", "sh", "-c", "mount -t tmpfs none /run && mount -t tmpfs none /var/lib").CombinedOutput(); err != nil {
		t.Skipf("user and mount namespaces unavailable here: %v: %s", err, out)
	}
	bin, err := buildSlewd()
	if err != nil {
		t.Fatal(err)
	}
	script := `mount -t tmpfs none /run && mount -t tmpfs none /var/lib && exec "$@"`
	cmd := exec.Command(unshare, append([]string{"--user", "--map-root-user", "--mount", "sh", "-c", script, "sh", bin}, args...)...)
	out, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	guard := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
	t.Cleanup(func() { guard.Stop() })
	return cmd, bufio.NewScanner(out)
}

// Without clock rights: `slewd run` refuses with 77 and the three ways
// on; --monitor-only (alone, before the servers) and --monitor-only=auto
// measure, log the offset, write nothing, and stop cleanly on SIGTERM.
func TestMonitorOnlyUnprivileged(t *testing.T) {
	srv := loopbackServers(t, 1, ntptest.ServerConfig{Stratum: 2, Offset: 30 * time.Millisecond})
	state, run := t.TempDir(), t.TempDir()
	// (Its own state directory: a daemon that would correct the clock
	// locks its state directory before it finds it may not.)
	_, stderr, code, _ := unprivileged(t, "", "run", "--state-dir", t.TempDir(), "--run-dir", t.TempDir(), srv[0])
	for _, want := range []string{"CAP_SYS_TIME", "--cap-add SYS_TIME", "on the host", "--monitor-only", "user namespace"} {
		if code != 77 || !strings.Contains(stderr, want) {
			t.Errorf("exit %d, stderr %q: want 77 and %q", code, stderr, want)
		}
	}
	for _, mode := range [][]string{{"--monitor-only"}, {"--monitor-only=auto"}} {
		args := append(append([]string{"run"}, mode...), "--state-dir", state, "--run-dir", run, srv[0])
		cmd, sc := sandboxed(t, args...)
		var log strings.Builder
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "monitoring: the clock is off") {
				cmd.Process.Signal(syscall.SIGTERM)
			}
		}
		err := cmd.Wait()
		out := log.String()
		// The server is 30 ms ahead; over loopback on a loaded machine the
		// measurement is within a few milliseconds of that.
		if err != nil || !strings.Contains(out, "monitor_only=true") || !offsetNear(out, 30*time.Millisecond, 5*time.Millisecond) || !strings.Contains(out, "slewd stopped") || strings.Contains(out, "would") {
			t.Errorf("%v: %v; log:\n%s", mode, err, out)
		}
		if mode[0] == "--monitor-only=auto" && strings.Count(out, "monitoring only, nothing is corrected") != 1 {
			t.Errorf("auto: want one line saying it fell back to monitoring:\n%s", out)
		}
		for _, dir := range []string{state, run} {
			if es, _ := os.ReadDir(dir); len(es) != 0 {
				t.Errorf("%v wrote %v in %s", mode, es, dir)
			}
		}
	}
}

// offsetNear says whether the log's first offset=DURATION is within tol of want.
func offsetNear(log string, want, tol time.Duration) bool {
	_, rest, ok := strings.Cut(log, "offset=")
	if !ok {
		return false
	}
	d, err := time.ParseDuration(strings.Fields(rest)[0])
	return err == nil && (d-want).Abs() <= tol
}
