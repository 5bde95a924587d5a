package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"slewd/adjtime"
	"slewd/clock/simclock"
	"slewd/discipline"
	"slewd/ntpclient"
	"slewd/ntpclient/ntptest"
)

// reloadRun is `slewd run`'s loop on a simulated kernel and network with
// the reload handler of the daemon, its sources from a configuration file.
type reloadRun struct {
	w    *simclock.World
	net  *ntptest.Network
	proc *simclock.Process
	d    *discipline.Discipline
	log  bytes.Buffer
	// what systemd was told
	notes []string
}

func newReloadRun(t *testing.T, conf string, clockError time.Duration, driftPPM float64) *reloadRun {
	t.Helper()
	r := &reloadRun{w: simclock.New(simclock.Config{Seed: 7, Kernel: simclock.KernelConfig{
		ClockError: clockError, Oscillator: simclock.Oscillator{DriftPPM: driftPPM}}})}
	r.net = ntptest.NewNetwork(r.w)
	for i := 1; i <= 6; i++ {
		r.net.AddServer("192.0.2."+string(rune('0'+i))+":123", ntptest.ServerConfig{Stratum: 1, Delay: 200 * time.Microsecond, Jitter: 20 * time.Microsecond})
	}
	f, err := loadFile(conf, true)
	if err != nil {
		t.Fatal(err)
	}
	rl := &sourceReloader{path: conf, required: true, started: f}
	state := &adjtime.MemStore{}
	log := slog.New(slog.NewTextHandler(&r.log, nil))
	ready := make(chan struct{})
	r.proc = r.w.Spawn("slewd", true, func(ctx context.Context, p *simclock.Process) error {
		client, err := ntpclient.NewClient(ntpclient.Config{Servers: f.Servers(), Pools: f.Pools()}, ntpclient.Env{
			Clock: p, Loop: p, Dialer: r.net.Dialer(p), Resolver: r.net.Resolver(),
			Logger: log, Rand: r.w.Rand("client"), SimulatedTime: true,
		})
		if err != nil {
			return err
		}
		r.d = discipline.New(discipline.Config{}, discipline.Env{
			Clock: p, Loop: p, Client: client, State: state, BootID: func() string { return "1" }, Log: log,
			Handlers: []discipline.Handler{&reloader{client: client, sources: rl.sources, log: log,
				notify: func(s string) { r.notes = append(r.notes, s) }, mono: p.Mono}},
		})
		close(ready)
		return r.d.Run(ctx)
	})
	r.w.Run(time.Millisecond)
	<-ready
	return r
}

func (r *reloadRun) asked(addr string) int64 { return r.net.Server(addr).Counters().Received }

// The done-when of the reload: the file's servers change under a running
// daemon that has learnt its oscillator's frequency and is in the middle
// of a 54 s slew. After SIGHUP (a reloadRequest in the loop) the new
// servers are polled and the old one no more, while the frequency
// estimate and the correction left go on as if nothing happened: the
// run ends as one without a reload does.
func TestReloadKeepsFrequencyAndSlew(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "slewd.conf")
	writeConf := func(text string) {
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeConf("server 192.0.2.1\nserver 192.0.2.2\nserver 192.0.2.3\n")
	const reloadAt = 6 * time.Minute
	r := newReloadRun(t, conf, 54*time.Second, 25)
	control := newReloadRun(t, conf, 54*time.Second, 25) // the same world, never reloaded

	r.w.Run(reloadAt)
	control.w.Run(reloadAt)
	before := r.d.Snapshot()
	if !before.Slewing || before.Remaining > -10*time.Second || !discipline.FrequencyTrusted(before.FreqSigmaPPM) || math.Abs(before.FreqPPM+25) > 1 {
		t.Fatalf("before the reload: slewing %v, %v left, frequency %.3f ± %.3f ppm; want a slew under way and -25 ppm learnt",
			before.Slewing, before.Remaining, before.FreqPPM, before.FreqSigmaPPM)
	}
	asked1 := r.asked("192.0.2.1:123")

	// The DHCP lease names other servers; the administrator drops one.
	dhcp := filepath.Join(filepath.Dir(conf), "dhcp")
	if err := os.MkdirAll(dhcp, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dhcp, "eth0.sources"), []byte("server 192.0.2.5 iburst\nserver 192.0.2.6 iburst\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeConf("server 192.0.2.2\nserver 192.0.2.4\nsourcedir dhcp\nmax-offset 10s\n")
	r.w.After(0, func() { r.proc.Post(reloadRequest{}) })
	r.w.Run(reloadAt + time.Second)
	control.w.Run(reloadAt + time.Second)
	after, ctl := r.d.Snapshot(), control.d.Snapshot()
	// A reset servo or slewer would start over: an untrusted frequency,
	// nothing (or all 54 s) left to slew.
	if !after.Slewing || math.Abs(after.FreqPPM-ctl.FreqPPM) > 0.05 || after.FreqSigmaPPM > 1.5*ctl.FreqSigmaPPM {
		t.Errorf("a second after the reload: slewing %v, frequency %.4f ± %.4f ppm; without the reload %.4f ± %.4f",
			after.Slewing, after.FreqPPM, after.FreqSigmaPPM, ctl.FreqPPM, ctl.FreqSigmaPPM)
	}
	if d := after.Remaining - ctl.Remaining; d.Abs() > 10*time.Millisecond {
		t.Errorf("correction left a second after the reload %v, without the reload %v", after.Remaining, ctl.Remaining)
	}
	log := r.log.String()
	for _, want := range []string{"source removed", "source=192.0.2.1:123", "source added", "source=192.0.2.5:123",
		"reloaded the sources", "max-offset changed in the configuration", "restart slewd to apply it"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q", want)
		}
	}

	r.w.Run(30 * time.Minute)
	control.w.Run(30 * time.Minute)
	if got := r.asked("192.0.2.1:123"); got != asked1 {
		t.Errorf("the dropped server was asked %d more times", got-asked1)
	}
	for _, a := range []string{"192.0.2.4:123", "192.0.2.5:123", "192.0.2.6:123"} {
		if n := r.asked(a); n < 6 {
			t.Errorf("new source %s asked %d times", a, n)
		}
	}
	end := r.d.Snapshot()
	ctl = control.d.Snapshot()
	if end.Sources < 3 || math.Abs(end.FreqPPM-ctl.FreqPPM) > 0.2 || end.FreqSigmaPPM > 2*ctl.FreqSigmaPPM {
		t.Errorf("30 min: %d sources, frequency %.3f ± %.3f ppm; without the reload %.3f ± %.3f", end.Sources, end.FreqPPM, end.FreqSigmaPPM, ctl.FreqPPM, ctl.FreqSigmaPPM)
	}
	if e, c := r.w.ClockError(), control.w.ClockError(); e.Abs() > time.Millisecond || c.Abs() > time.Millisecond {
		t.Errorf("clock error at 30 min %v (without the reload %v)", e, c)
	}
	t.Logf("at the reload: %v left, %.3f ± %.3f ppm; at 30 min: error %v (control %v), %.3f ppm (control %.3f)",
		before.Remaining, before.FreqPPM, before.FreqSigmaPPM, r.w.ClockError(), control.w.ClockError(), end.FreqPPM, ctl.FreqPPM)
}

// A broken file on reload is logged and changes nothing.
func TestReloadBadConfigKeepsSources(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "slewd.conf")
	if err := os.WriteFile(conf, []byte("server 192.0.2.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := newReloadRun(t, conf, 20*time.Millisecond, 0)
	r.w.Run(2 * time.Minute)
	if err := os.WriteFile(conf, []byte("server 192.0.2.2\nmaxoffset 5s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r.w.After(0, func() { r.proc.Post(reloadRequest{}) })
	r.w.Run(20 * time.Minute)
	if n := r.asked("192.0.2.2:123"); n != 0 {
		t.Errorf("a bad file's server was asked %d times", n)
	}
	if done, err := r.proc.Exited(); done {
		t.Errorf("the daemon stopped: %v", err)
	}
	if len(r.notes) != 2 || !regexp.MustCompile(`^RELOADING=1\nMONOTONIC_USEC=[1-9][0-9]{6,}$`).MatchString(r.notes[0]) || r.notes[1] != "READY=1" {
		t.Errorf("systemd was told %q; want RELOADING=1 with the monotonic time, then READY=1", r.notes)
	}
	if log := r.log.String(); !strings.Contains(log, `reload: configuration not used, the sources in use are kept`) || !strings.Contains(log, "slewd.conf:2: unknown directive") {
		t.Errorf("log:\n%s", log)
	}
}

// The real binary (--dry-run, in a user namespace without clock rights):
// SIGHUP re-reads the file's sources instead of killing the daemon, and
// with stderr on the "journal" (JOURNAL_STREAM naming it) each line
// carries its priority.
func TestRunBinaryReloadsOnSIGHUP(t *testing.T) {
	srv := loopbackServers(t, 2, ntptest.ServerConfig{Stratum: 2})
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("unshare (util-linux) not installed")
	}
	if out, err := exec.Command(unshare, "--user", "--map-root-user", "true").CombinedOutput(); err != nil {
		t.Skipf("user namespaces unavailable here: %v: %s", err, out)
	}
	bin, err := buildSlewd()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "slewd.conf")
	if err := os.WriteFile(conf, []byte("server "+srv[0]+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	st, _ := r.Stat()
	sys := st.Sys().(*syscall.Stat_t)
	cmd := exec.Command(unshare, sandboxArgs(bin, "run", "--dry-run", "--config", conf, "--state-dir", dir, "--run-dir", dir)...)
	cmd.Env = append(os.Environ(), fmt.Sprintf("JOURNAL_STREAM=%d:%d", sys.Dev, sys.Ino), "SLEWD_SERVERS=", "SLEWD_POOLS=")
	cmd.Stderr = w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	guard := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	defer guard.Stop()
	var log strings.Builder
	sc := bufio.NewScanner(r)
	hupped := false
	for sc.Scan() {
		line := sc.Text()
		log.WriteString(line + "\n")
		switch {
		case strings.Contains(line, "slewd started") && !hupped:
			if err := os.WriteFile(conf, []byte("server "+srv[1]+"\n"), 0o644); err != nil {
				t.Error(err)
			}
			hupped = true
			cmd.Process.Signal(syscall.SIGHUP)
		case strings.Contains(line, "reloaded the sources"):
			cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	err = cmd.Wait()
	text := log.String()
	if err != nil || !strings.Contains(text, "<6>level=INFO msg=\"reloaded the sources\" servers=["+srv[1]+"]") ||
		!strings.Contains(text, "<6>level=INFO msg=\"slewd stopped\"") || strings.Contains(text, "time=") {
		t.Errorf("exit %v; log:\n%s", err, text)
	}
}
