package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A second daemon on the same state directory is refused, naming the
// first one's PID; the lock goes with the process that held it. An
// unusable run or state directory is an error at start.
func TestStateDirLock(t *testing.T) {
	dir := t.TempDir()
	state, run := filepath.Join(dir, "state"), filepath.Join(dir, "run")
	release, err := prepareDirs(state, run)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(state, lockFile)); strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Errorf("lock file holds %q, want this PID", b)
	}
	// flock locks belong to the open file: a second open in this process
	// is refused like another process would be.
	if _, err := prepareDirs(state, run); err == nil || !strings.Contains(err.Error(), "PID "+strconv.Itoa(os.Getpid())) {
		t.Errorf("second instance: %v; want refused naming PID %d", err, os.Getpid())
	}
	release()
	r2, err := prepareDirs(state, run)
	if err != nil {
		t.Errorf("after release: %v", err)
	} else {
		r2()
	}
	if os.Geteuid() == 0 {
		// root writes anywhere: a file where a directory should be does it.
		os.WriteFile(filepath.Join(dir, "file"), nil, 0o644)
		run = filepath.Join(dir, "file", "run")
	} else {
		os.Mkdir(filepath.Join(dir, "ro"), 0o555)
		run = filepath.Join(dir, "ro", "run")
	}
	if _, err := prepareDirs(state, run); err == nil || !strings.Contains(err.Error(), "--run-dir") {
		t.Errorf("unusable run dir: %v", err)
	}
}

// The real binary: a second `slewd run` on a state directory that another
// process holds is refused at once with exit 1, naming that PID.
func TestSecondRunRefused(t *testing.T) {
	dir := t.TempDir()
	// A holder: flock(1) on the lock file, as a running daemon holds it.
	os.MkdirAll(filepath.Join(dir, "state"), 0o755)
	lock := filepath.Join(dir, "state", lockFile)
	os.WriteFile(lock, []byte("4242\n"), 0o644)
	holder := exec.Command("flock", "-x", lock, "sleep", "30")
	if err := holder.Start(); err != nil {
		t.Skipf("flock(1): %v", err)
	}
	defer holder.Process.Kill()
	for range 300 { // until flock(1) holds it
		r, err := prepareDirs(filepath.Join(dir, "state"), filepath.Join(dir, "run"))
		if err != nil {
			break
		}
		r()
		time.Sleep(10 * time.Millisecond)
	}
	// In a user namespace: no clock rights, whatever happens.
	_, errOut, code, _ := unprivileged(t, "", "run", "--state-dir", filepath.Join(dir, "state"), "--run-dir", filepath.Join(dir, "run"), "127.0.0.1")
	b, _ := os.ReadFile(lock)
	if code != 1 || !strings.Contains(errOut, "another slewd run (PID "+strings.TrimSpace(string(b))+") already uses --state-dir") {
		t.Errorf("exit %d: %s", code, errOut)
	}
}
