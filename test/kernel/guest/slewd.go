package guest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"slewd/adjtime"
	"slewd/clock"
	"slewd/discipline/statefile"
)

// Slewd is a `slewd run` started in the guest, with its state and run
// directories and its log.
type Slewd struct {
	Cmd   *exec.Cmd
	State string // --state-dir
	Run   string // --run-dir
	log   lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var slewdDirs atomic.Int64

// StartSlewd starts /usr/sbin/slewd run with args, in fresh state and run
// directories unless state is given (a restart keeps its state directory).
func StartSlewd(t testing.TB, state string, args ...string) *Slewd {
	t.Helper()
	return StartSlewdEnv(t, state, nil, args...)
}

// StartSlewdEnv is StartSlewd with more environment variables (NAME=value).
func StartSlewdEnv(t testing.TB, state string, env []string, args ...string) *Slewd {
	t.Helper()
	if state == "" {
		state = fmt.Sprintf("/tmp/slewd-state-%d", slewdDirs.Add(1))
	}
	d := &Slewd{State: state, Run: filepath.Join(state, "run")}
	d.Cmd = exec.Command("/usr/sbin/slewd", append([]string{"run", "--state-dir", d.State, "--run-dir", d.Run}, args...)...)
	d.Cmd.Env = append(os.Environ(), env...)
	d.Cmd.Stdout, d.Cmd.Stderr = &d.log, &d.log
	if err := d.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return d
}

// Stop signals the daemon and waits for it; the log goes to the test's
// output when the test failed or runs verbosely.
func (d *Slewd) Stop(t testing.TB, sig syscall.Signal) {
	t.Helper()
	d.Cmd.Process.Signal(sig)
	d.Cmd.Wait()
	if t.Failed() || testing.Verbose() {
		t.Logf("slewd log:\n%s", d.log.String())
	}
}

// Log is what the daemon has logged so far.
func (d *Slewd) Log() string { return d.log.String() }

// WaitLog waits up to limit for a log line containing s and returns it
// with how long it took to appear (polled every millisecond).
func (d *Slewd) WaitLog(s string, from int, limit time.Duration) (string, time.Duration, bool) {
	start := time.Now()
	for time.Since(start) < limit {
		if out := d.Log(); len(out) > from {
			for _, line := range strings.Split(out[from:], "\n") {
				if strings.Contains(line, s) {
					return line, time.Since(start), true
				}
			}
		}
		time.Sleep(time.Millisecond)
	}
	return "", limit, false
}

// Status reads the daemon's status file.
func (d *Slewd) Status() (statefile.Status, bool) {
	st, ok, err := statefile.ReadStatus(adjtime.DirStore{Dir: d.Run})
	return st, ok && err == nil
}

// WaitConverged polls the clock error every 100 ms until it has stayed
// within 1 ms for hold, or until limit. It returns when it first came
// within 1 ms for good (-1 if never), in seconds from start (RAW), and the
// largest |error| over the last 10 s of the hold, when the slew has long
// landed.
func WaitConverged(w *Truth, c clock.Clock, start time.Duration, hold, limit time.Duration) (float64, time.Duration) {
	settled := time.Duration(-1)
	var worst time.Duration
	for {
		now := c.Raw()
		e := w.ClockError().Abs()
		switch {
		case e > time.Millisecond:
			settled, worst = -1, 0
		case settled < 0:
			settled = now
		case now-settled >= hold-10*time.Second:
			worst = max(worst, e)
		}
		if settled >= 0 && now-settled >= hold {
			return (settled - start).Seconds(), worst
		}
		if now-start > limit {
			return -1, 0
		}
		time.Sleep(100 * time.Millisecond)
	}
}
