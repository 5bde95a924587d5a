package main

import (
	"bufio"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"slewd/ntpclient/ntptest"
)

// The loop itself is tested in package discipline (in virtual time); here
// the wiring `slewd run` adds: systemd's socket and watchdog, the binary.

func TestNotifySystemd(t *testing.T) {
	dir := t.TempDir()
	sock := dir + "/notify"
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	for _, msg := range []string{"READY=1\nSTATUS=waiting for the first estimate", "WATCHDOG=1"} {
		if err := sdNotify(msg); err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 512)
		n, err := conn.Read(buf)
		if err != nil || string(buf[:n]) != msg {
			t.Errorf("systemd read %q, %v; want %q", buf[:n], err, msg)
		}
	}
	t.Setenv("NOTIFY_SOCKET", "")
	if err := sdNotify("READY=1"); err != nil {
		t.Errorf("without NOTIFY_SOCKET: %v, want nothing done", err)
	}
}

func TestWatchdogInterval(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "30000000")
	t.Setenv("WATCHDOG_PID", "")
	if d := watchdogInterval(); d != 15*time.Second {
		t.Errorf("WatchdogSec=30 gives %v, want 15s", d)
	}
	t.Setenv("WATCHDOG_PID", "1")
	if d := watchdogInterval(); d != 0 {
		t.Errorf("watchdog meant for another pid: %v", d)
	}
}

// The real binary without clock rights (a user namespace, where the kernel
// refuses every clock change): slewd run refuses at start, naming the
// capability, with EX_NOPERM; --dry-run measures, keeps running, and stops
// cleanly on SIGTERM.
func TestRunBinaryWithoutCapSysTime(t *testing.T) {
	srv := loopbackServers(t, 1, ntptest.ServerConfig{Stratum: 2})
	state := t.TempDir()
	_, stderr, code, _ := unprivileged(t, "", "run", "--state-dir", state, "--run-dir", state, srv[0])
	if code != 77 || !strings.Contains(stderr, "CAP_SYS_TIME") {
		t.Errorf("exit %d, stderr %q: want 77 and a message naming CAP_SYS_TIME", code, stderr)
	}
	unshare, _ := exec.LookPath("unshare")
	bin, err := buildSlewd()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(unshare, sandboxArgs(bin, "run", "--dry-run", "--state-dir", state, "--run-dir", state, srv[0])...)
	out, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// SIGTERM once it says it has started (not after a guessed time);
	// kill it if it never does.
	guard := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	defer guard.Stop()
	var log strings.Builder
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		log.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "slewd started") {
			cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	err = cmd.Wait()
	if err != nil || !strings.Contains(log.String(), "dry_run=true") || !strings.Contains(log.String(), "slewd stopped") {
		t.Errorf("dry run: %v; log:\n%s", err, log.String())
	}
}
