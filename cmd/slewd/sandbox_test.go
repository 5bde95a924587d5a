package main

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"slewd/adjtime"
	"slewd/discipline/statefile"
	"slewd/ntpclient/ntptest"
)

// sandboxScript runs slewd in a user and mount namespace with fresh tmpfs
// over /run and /var/lib: no clock rights whatever it tries, and whatever
// it writes there is listed afterwards (nothing may appear; mount(8)'s own
// /run/mount is listed before).
const sandboxScript = `
mount -t tmpfs tmpfs /run && mount -t tmpfs tmpfs /var/lib || exit 99
find /run /var/lib -mindepth 1 >"$SLEWD_LIST.before"
"$SLEWD_BIN" "$@" &
pid=$!
echo $pid >"$SLEWD_PIDFILE"
wait $pid
rc=$?
find /run /var/lib -mindepth 1 >"$SLEWD_LIST"
exit $rc
`

type sandboxResult struct {
	stdout, stderr string
	code           int
	appeared       []string      // files that appeared in /run and /var/lib
	afterSignal    time.Duration // how long it took to exit after the signal
}

// syncBuffer is a bytes.Buffer that a test may read while a process writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// inSandbox runs `slewd args...` in the sandbox; with sig non-zero it
// sends sig to slewd after a delay (or, with a string for after, once its
// standard error says that) and measures how fast it ends.
func inSandbox(t *testing.T, after any, sig syscall.Signal, args ...string) sandboxResult {
	t.Helper()
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("unshare (util-linux) not installed")
	}
	if out, err := exec.Command(unshare, "--user", "--map-root-user", "--mount", "sh", "-c", "mount -t tmpfs tmpfs /run").CombinedOutput(); err != nil {
		t.Skipf("user and mount namespaces unavailable here: %v: %s", err, out)
	}
	bin, err := buildSlewd()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pidFile, list := filepath.Join(dir, "pid"), filepath.Join(dir, "list")
	cmd := exec.Command(unshare, append([]string{"--user", "--map-root-user", "--mount", "sh", "-c", sandboxScript, "sandbox"}, args...)...)
	cmd.Env = append(os.Environ(), "SLEWD_BIN="+bin, "SLEWD_PIDFILE="+pidFile, "SLEWD_LIST="+list)
	var out, errOut syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var res sandboxResult
	if sig != 0 {
		var pid int
		for range 500 {
			if b, err := os.ReadFile(pidFile); err == nil && strings.HasSuffix(string(b), "\n") {
				pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if pid <= 0 {
			t.Fatal("slewd did not start in the sandbox")
		}
		switch a := after.(type) {
		case time.Duration:
			time.Sleep(a)
		case string:
			for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && !strings.Contains(errOut.String(), a); {
				time.Sleep(20 * time.Millisecond)
			}
			// A few control steps more: what it writes after saying so.
			time.Sleep(500 * time.Millisecond)
		}
		syscall.Kill(pid, sig)
		start := time.Now()
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(pid, syscall.SIGKILL)
			err = <-done
			t.Errorf("slewd %v still running 10 s after %v", args, sig)
		}
		res.afterSignal = time.Since(start)
	} else {
		select {
		case err = <-done:
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("slewd %v still running after a minute", args)
		}
	}
	res.stdout, res.stderr = out.String(), errOut.String()
	if ee, ok := err.(*exec.ExitError); ok {
		res.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if res.code == 99 {
		t.Fatalf("sandbox: cannot mount tmpfs: %s", res.stderr)
	}
	b, err := os.ReadFile(list)
	if err != nil {
		t.Fatalf("sandbox listing: %v (stderr %s)", err, res.stderr)
	}
	pre, _ := os.ReadFile(list + ".before")
	for _, f := range strings.Fields(string(b)) {
		if !slices.Contains(strings.Fields(string(pre)), f) {
			res.appeared = append(res.appeared, f)
		}
	}
	return res
}

// snapshot is every file under dir with its contents.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			m[p] = string(b)
		} else if err == nil {
			m[p+"/"] = ""
		}
		return nil
	})
	return m
}

// claims are log lines that say something was done to the clock or its
// files; a dry run may say them only as what it would do.
var claims = []string{"handed the remaining correction", "removed the tick bias", `msg="clock synchronized"`,
	"moving the clock forward", "slewing with the tick", "cancelled a pending", "setting it", "replaced a pending"}

func checkNoClaims(t *testing.T, what, log string) {
	t.Helper()
	for _, line := range strings.Split(log, "\n") {
		for _, c := range claims {
			if strings.Contains(line, c) && !strings.Contains(line, "dry run") {
				t.Errorf("%s claims what it did not do: %s", what, line)
			}
		}
	}
}

// Every command's dry run (and the read-only ones), as the real binary in
// a sandbox with tmpfs over /run and /var/lib, against loopback servers:
// nothing appears in /run or /var/lib (no systemd flag, no /run/slewd
// status, no /var/lib/slewd), the state and run directories given are
// left exactly as they were (a tick journal of a killed slewd, a drift
// file, a high-water mark), and no log line claims an action.
func TestDryRunSandbox(t *testing.T) {
	addrs := loopbackServers(t, 3, ntptest.ServerConfig{Offset: 40 * time.Millisecond})
	servers := strings.Join(addrs, ",")
	// A state directory as a killed tick-method slewd leaves it, and a
	// run directory with a daemon status.
	state, run := t.TempDir(), t.TempDir()
	bootID, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	journal, _ := json.Marshal(map[string]any{"boot_id": strings.TrimSpace(string(bootID)), "active": true, "base_tick": 10000, "bulk_tick": 11000})
	os.WriteFile(filepath.Join(state, adjtime.JournalFile), journal, 0o644)
	os.WriteFile(filepath.Join(state, adjtime.DriftFile), []byte("12.500000 0.010000\n"), 0o644)
	os.WriteFile(filepath.Join(state, statefile.HighWaterFile), []byte(time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)+"\n"), 0o644)
	before := snapshot(t, state)
	for k, v := range snapshot(t, run) {
		before[k] = v
	}
	dirs := []string{"--state-dir", state, "--run-dir", run}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := pc.LocalAddr().String()
	pc.Close()

	for _, tc := range []struct {
		name string
		args []string
		sig  bool // a daemon: stopped with SIGTERM once it has planned a slew
		code int
	}{
		{"run, default dirs", []string{"run", "--dry-run", "--server", servers}, true, 0},
		{"run, tick, given dirs", append([]string{"run", "--dry-run", "--slew-method", "tick", "--server", servers}, dirs...), true, 0},
		{"boot, default dir", []string{"boot", "--dry-run", "--server", servers}, false, 0},
		{"boot, given dir", []string{"boot", "--dry-run", "--state-dir", state, "--server", servers}, false, 0},
		{"boot, restore the high-water mark", []string{"boot", "--dry-run", "--restore-from-high-water", "--deadline", "2s",
			"--timeout", "500ms", "--state-dir", state, dead}, false, 3},
		{"sync, default dirs", []string{"sync", "--dry-run", "--samples", "2", "--interval", "100ms", "--server", servers}, false, 0},
		{"sync, given dirs", append([]string{"sync", "--dry-run", "--samples", "2", "--interval", "100ms", "--server", servers}, dirs...), false, 0},
		{"ntpdate -q", append([]string{"ntpdate", "-q", "-p", "1"}, addrs...), false, 0},
		{"ntpdate -d", append([]string{"ntpdate", "-d", "-p", "1"}, addrs...), false, 0},
		{"ntpdate -q -b", append([]string{"ntpdate", "-q", "-b", "-p", "1"}, addrs...), false, 0},
		{"query", []string{"query", "--samples", "2", "--interval", "100ms", "--server", servers}, false, 0},
		{"wait", []string{"wait", "--timeout", "300ms", "--daemon-only", "--run-dir", run}, false, 3},
		{"status", []string{"status"}, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var res sandboxResult
			if tc.sig {
				res = inSandbox(t, "dry run: would slew", syscall.SIGTERM, tc.args...)
			} else {
				res = inSandbox(t, 0, 0, tc.args...)
			}
			if res.code != tc.code {
				t.Errorf("exit %d, want %d: stdout %q, stderr %q", res.code, tc.code, res.stdout, res.stderr)
			}
			if tc.args[0] == "run" {
				// A dry run serves its control socket (slewd tracking says
				// "dry run"), in the run directory, and removes it when it
				// stops: the empty directory is all that may stay.
				res.appeared = slices.DeleteFunc(res.appeared, func(p string) bool { return p == "/run/slewd" })
			}
			if len(res.appeared) > 0 {
				t.Errorf("these appeared in /run or /var/lib: %v", res.appeared)
			}
			after := snapshot(t, state)
			for k, v := range snapshot(t, run) {
				after[k] = v
			}
			for k, v := range before {
				if after[k] != v {
					t.Errorf("%s changed: %q, was %q", k, after[k], v)
				}
			}
			for k := range after {
				if _, ok := before[k]; !ok {
					t.Errorf("%s appeared", k)
				}
			}
			checkNoClaims(t, "slewd "+strings.Join(tc.args, " "), res.stderr+res.stdout)
			if tc.sig && !strings.Contains(res.stderr, "dry run: would slew") {
				t.Errorf("the daemon's dry run did not measure and plan:\n%s", res.stderr)
			}
		})
	}
}

// SIGINT and SIGTERM end a command within a second whatever it waits on:
// a wait for ever, a query with an hour's deadline, a daemon; a FIFO as
// --servers-from is refused at once instead of blocking the open.
func TestSignalsEndCommands(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close() // a server that never answers
	silent := pc.LocalAddr().String()
	fifo := filepath.Join(t.TempDir(), "ntp.conf")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		sig  syscall.Signal
		args []string
	}{
		{"wait for ever, SIGTERM", syscall.SIGTERM, []string{"wait", "--daemon-only", "--run-dir", t.TempDir()}},
		{"query, SIGINT", syscall.SIGINT, []string{"query", "--deadline", "1h", "--timeout", "10m", silent}},
		{"sync, SIGTERM", syscall.SIGTERM, []string{"sync", "--dry-run", "--deadline", "1h", "--timeout", "10m", silent}},
		{"boot, SIGINT", syscall.SIGINT, []string{"boot", "--dry-run", "--deadline", "1h", "--timeout", "10m", silent}},
		{"ntpdate -q, SIGTERM", syscall.SIGTERM, []string{"ntpdate", "-q", "-t", "3600", silent}},
		{"run, SIGINT", syscall.SIGINT, []string{"run", "--dry-run", "--timeout", "10m", silent}},
		{"simulate a month, SIGINT", syscall.SIGINT, []string{"simulate", "--duration", "720h"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := inSandbox(t, 700*time.Millisecond, tc.sig, tc.args...)
			if res.afterSignal > time.Second {
				t.Errorf("exited %v after %v", res.afterSignal, tc.sig)
			}
			if tc.args[0] != "run" && (res.code != 1 || !strings.Contains(res.stderr, "interrupted")) {
				t.Errorf("an interrupted %s: exit %d, %q; want 1 and \"interrupted\"", tc.args[0], res.code, res.stderr)
			}
		})
	}
	start := time.Now()
	res := inSandbox(t, 0, 0, "query", "--servers-from", fifo)
	if res.code != 2 || !strings.Contains(res.stderr, "not a regular file (a FIFO)") || time.Since(start) > 5*time.Second {
		t.Errorf("--servers-from FIFO: exit %d after %v, %q", res.code, time.Since(start), res.stderr)
	}
}
