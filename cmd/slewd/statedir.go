package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockFile in the state directory holds the PID of the `slewd run` that
// owns the directory, under an flock that the kernel drops when that
// process ends (so a killed daemon leaves no stale lock).
const lockFile = "lock"

// prepareDirs is what `slewd run` needs before it takes the clock (a
// dry run writes nothing and takes neither): the state directory, locked
// for this process, and a run directory it can write. A second daemon on
// the same state directory is refused, naming the first one's PID.
func prepareDirs(stateDir, runDir string) (release func(), err error) {
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return nil, fmt.Errorf("--state-dir %s cannot be used: %w", stateDir, err)
	}
	path := filepath.Join(stateDir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return nil, fmt.Errorf("--state-dir %s cannot be used: %w", stateDir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			pid := strings.TrimSpace(string(b[:n]))
			if _, perr := strconv.Atoi(pid); perr != nil {
				pid = "unknown"
			}
			return nil, fmt.Errorf("another slewd run (PID %s) already uses --state-dir %s (it holds %s): "+
				"one daemon per state directory; stop it first, or give this one its own --state-dir and --run-dir", pid, stateDir, path)
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("--state-dir %s cannot be used: %w", stateDir, err)
		}
	}
	if err := checkWritableDir(runDir); err != nil {
		f.Close()
		return nil, fmt.Errorf("--run-dir %s cannot be used: %w (slewd wait and slewd sync read the daemon's status there)", runDir, err)
	}
	return func() { f.Close() }, nil
}

// checkWritableDir makes dir if need be and proves a file can be
// created in it.
func checkWritableDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return err
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}
