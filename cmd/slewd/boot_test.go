package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"slewd/adjtime"
	"slewd/boot"
	"slewd/clock"
	"slewd/clock/simclock"
	"slewd/ntpclient"
	"slewd/ntpclient/ntptest"
)

// simMachine runs slewd commands in-process on a simulated kernel and
// network: the one-shot environment of each command is the simulated
// process it runs in.
type simMachine struct {
	w       *simclock.World
	net     *ntptest.Network
	rec     *simclock.Recorder
	servers []string
	state   *adjtime.MemStore
	run     *adjtime.MemStore
}

func newSimMachine(t *testing.T, clockError time.Duration, servers ...ntptest.ServerConfig) *simMachine {
	t.Helper()
	w := simclock.New(simclock.Config{Seed: 3, Kernel: simclock.KernelConfig{ClockError: clockError}})
	m := &simMachine{w: w, net: ntptest.NewNetwork(w), rec: simclock.NewRecorder(w), state: &adjtime.MemStore{}, run: &adjtime.MemStore{}}
	for i, cfg := range servers {
		if cfg.Delay == 0 {
			cfg.Delay, cfg.Jitter = 200*time.Microsecond, 20*time.Microsecond
		}
		addr := fmt.Sprintf("192.0.2.%d:123", i+1)
		m.net.AddServer(addr, cfg)
		m.servers = append(m.servers, addr)
	}
	return m
}

// cliResult is what a command printed and its exit status.
type cliResult struct {
	stdout, stderr string
	code           int
	at             time.Duration // world time when it returned
}

// start runs `slewd args...` as a simulated process (with CAP_SYS_TIME if
// privileged); the result is ready once the world has run past its exit.
func (m *simMachine) start(t *testing.T, privileged bool, args ...string) (*simclock.Process, *cliResult) {
	t.Helper()
	res := &cliResult{code: -1}
	p := m.w.Spawn("slewd "+args[0], privileged, func(ctx context.Context, p *simclock.Process) error {
		prev := newOneShotEnv
		newOneShotEnv = func(c *cli.Context, log *slog.Logger) boot.Env {
			return boot.Env{
				Net: ntpclient.Env{Clock: p, Loop: p, Dialer: m.net.Dialer(p), Resolver: m.net.Resolver(), Logger: log,
					Rand: rand.New(rand.NewPCG(5, 6)), SimulatedTime: true},
				State: m.state, Run: m.run, Log: log,
			}
		}
		defer func() { newOneShotEnv = prev }()
		var out, errOut bytes.Buffer
		app := newApp()
		app.Writer, app.ErrWriter = &out, &errOut
		err := app.RunContext(ctx, append([]string{"slewd"}, args...))
		res.code = exitCode(err)
		if err != nil && err.Error() != "" {
			fmt.Fprintln(&errOut, "slewd:", err)
		}
		res.stdout, res.stderr, res.at = out.String(), errOut.String(), m.w.Now()
		return nil
	})
	return p, res
}

// runCmd runs a command to completion in the simulated world.
func (m *simMachine) runCmd(t *testing.T, until time.Duration, privileged bool, args ...string) cliResult {
	t.Helper()
	p, res := m.start(t, privileged, args...)
	m.w.Run(until)
	if ok, _ := p.Exited(); !ok {
		t.Fatalf("slewd %v still running at %v", args, until)
	}
	return *res
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ec, ok := err.(cli.ExitCoder); ok {
		return ec.ExitCode()
	}
	return 1
}

func decodeOneShot(t *testing.T, out string) oneShotJSON {
	t.Helper()
	var j oneShotJSON
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, out)
	}
	return j
}

// `slewd boot --json` on the simulated kernel: the clock 54 s ahead is
// stepped back once, and the JSON says so.
func TestBootCommandSteps(t *testing.T) {
	m := newSimMachine(t, 54*time.Second, ntptest.ServerConfig{}, ntptest.ServerConfig{}, ntptest.ServerConfig{})
	res := m.runCmd(t, 2*time.Second, true, append([]string{"boot", "--json"}, m.servers...)...)
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	j := decodeOneShot(t, res.stdout)
	if j.Action != "step" || math.Abs(j.OffsetS+54) > 1e-3 || math.Abs(j.StepS-j.OffsetS) > 1e-9 || j.Sources < 2 ||
		j.ErrorS == nil || !j.Synchronized || !j.KernelSynchronized || j.ExitCode != 0 || len(j.Servers) != 3 || !j.HighWaterSaved {
		t.Errorf("JSON: %+v", j)
	}
	if e := m.w.ClockError(); e.Abs() > time.Millisecond {
		t.Errorf("clock off by %v", e)
	}
	if len(m.rec.Jumps) != 1 {
		t.Errorf("jumps %+v", m.rec.Jumps)
	}
	if !strings.Contains(res.stderr, "msg=estimate") {
		t.Errorf("no log line on stderr: %q", res.stderr)
	}
}

// --forward-only: the clock ahead is slewed, and text and JSON say so.
func TestBootCommandForwardOnly(t *testing.T) {
	m := newSimMachine(t, 54*time.Second, ntptest.ServerConfig{}, ntptest.ServerConfig{})
	res := m.runCmd(t, 2*time.Second, true, append([]string{"boot", "--forward-only"}, m.servers...)...)
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	if !regexp.MustCompile(`^slewd boot: slew -5[34]\.\d+ s: clock 5[34]\.\d+s ahead: forward-only: not stepping the clock back; slewing it at 500 ppm`).MatchString(res.stdout) {
		t.Errorf("stdout %q", res.stdout)
	}
	if !strings.Contains(res.stderr, "--forward-only forbids stepping it back") {
		t.Errorf("no warning on stderr: %q", res.stderr)
	}
	if len(m.rec.Jumps) != 0 {
		t.Errorf("stepped: %+v", m.rec.Jumps)
	}
	m2 := newSimMachine(t, 54*time.Second, ntptest.ServerConfig{}, ntptest.ServerConfig{})
	j := decodeOneShot(t, m2.runCmd(t, 2*time.Second, true, append([]string{"boot", "--forward-only", "--json"}, m2.servers...)...).stdout)
	if j.Action != "slew" || !j.BackwardRefused || !j.ForwardOnly || j.StepS != 0 || math.Abs(j.SlewS+54) > 1e-3 {
		t.Errorf("JSON %+v", j)
	}
}

// No server answers: the documented exit statuses, at the deadline.
func TestBootCommandNoServer(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
	}{{nil, boot.ExitNoSync}, {[]string{"--require-sync"}, boot.ExitNoSyncRequired}} {
		m := newSimMachine(t, time.Second, ntptest.ServerConfig{Drop: true})
		args := append(append([]string{"boot", "--json", "--deadline", "5s"}, tc.args...), m.servers...)
		res := m.runCmd(t, time.Minute, true, args...)
		if res.code != tc.code || res.at < 5*time.Second || res.at > 6*time.Second {
			t.Errorf("%v: exit %d at %v, want %d at the 5 s deadline", tc.args, res.code, res.at, tc.code)
		}
		j := decodeOneShot(t, res.stdout)
		if j.Action != "none" || j.ExitCode != tc.code || j.Synchronized || j.Sources != 0 || j.ErrorS != nil {
			t.Errorf("JSON %+v", j)
		}
		if !strings.Contains(res.stderr, "boot: not synchronized after 5s: no usable time from the servers") ||
			!strings.Contains(res.stderr, "192.0.2.1:123: unreachable") {
			t.Errorf("stderr %q", res.stderr)
		}
	}
}

func TestBootCommandUsage(t *testing.T) {
	m := newSimMachine(t, 0)
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"boot"}, 2, "no NTP servers"},
		{[]string{"boot", "--deadline", "0s", "192.0.2.1"}, 2, "--deadline"},
		{[]string{"boot", "--servers-from", "/nonexistent/ntp.conf"}, 2, "--servers-from"},
		{[]string{"boot", "192.0.2.1", "192.0.2.1:123"}, 2, "configured twice"},
		{[]string{"boot", "192.0.2.1"}, boot.ExitNoPerm, "CAP_SYS_TIME"}, // unprivileged
	} {
		res := m.runCmd(t, time.Minute, false, tc.args...)
		if res.code != tc.code || !strings.Contains(res.stderr, tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, res.code, res.stderr, tc.code, tc.msg)
		}
	}
}

// --servers-from takes the servers of an ntp.conf.
func TestBootServersFrom(t *testing.T) {
	m := newSimMachine(t, -2*time.Second, ntptest.ServerConfig{}, ntptest.ServerConfig{}, ntptest.ServerConfig{})
	conf := filepath.Join(t.TempDir(), "ntp.conf")
	os.WriteFile(conf, []byte("driftfile /var/lib/ntp/drift\nserver 192.0.2.1 iburst\nserver 192.0.2.2 iburst\nserver 192.0.2.3 prefer\npeer 192.0.2.9\n"), 0o644)
	res := m.runCmd(t, 2*time.Second, true, "boot", "--json", "--servers-from", conf)
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	if j := decodeOneShot(t, res.stdout); j.Sources < 2 || len(j.Servers) != 3 || j.Action != "step" || math.Abs(j.StepS-2) > 1e-3 {
		t.Errorf("JSON %+v", j)
	}
	if !strings.Contains(res.stderr, "ntp.conf:5: peer 192.0.2.9 left out") {
		t.Errorf("no note about the peer: %q", res.stderr)
	}
}

var updateMan = flag.Bool("update-man", false, "rewrite dist/slewd.8 from the CLI (make man)")

// manPage is the slewd(8) man page: urfave/cli's ToManWithSection(8),
// which lists commands and flags, plus each command's description (with
// its exit statuses) and the sections a man page needs (EXIT STATUS,
// FILES, SEE ALSO), all from the CLI's own text.
func manPage(app *cli.App) (string, error) {
	page, err := app.ToManWithSection(8)
	if err != nil {
		return "", err
	}
	// urfave/cli writes `--flag=""` for every flag that takes a value, as
	// if "" were its default; the usage already ends with the default.
	page = strings.ReplaceAll(page, `\fP="": `, `\fP: `)
	if i, j := strings.Index(page, ".SH SYNOPSIS\n"), strings.Index(page, ".SH DESCRIPTION\n"); i >= 0 && j > i {
		page = page[:i] + manSynopsis(app) + "\n\n" + page[j:]
	}
	roff := func(text string) string {
		var b strings.Builder
		for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
			line = strings.ReplaceAll(line, `\`, `\e`)
			if strings.HasPrefix(line, ".") || strings.HasPrefix(line, "'") {
				line = `\&` + line
			}
			b.WriteString(line + "\n")
		}
		return b.String()
	}
	for _, c := range app.Commands {
		if c.Description == "" {
			continue
		}
		head := "\n.SH " + c.Name + "\n"
		i := strings.Index(page, head)
		if i < 0 {
			return "", fmt.Errorf("man page: no section for command %s", c.Name)
		}
		i += len(head)
		i += strings.IndexByte(page[i:], '\n') + 1 // after the usage line
		page = page[:i] + "\n.PP\n.EX\n" + roff(c.Description) + ".EE\n" + page[i:]
	}
	cfgSection, err := manConfigFile()
	if err != nil {
		return "", err
	}
	page += "\n.SH EXIT STATUS\n" +
		".PP\n.EX\n" + roff(exitStatusTable) + ".EE\n" +
		".PP\n\\fBslewd ntpdate\\fP (and slewd invoked as \\fBntpdate\\fP) keeps ntpdate's: 0 done (with -q: measured), " +
		"1 no suitable server, the clock could not be adjusted or (without -q) the offset is beyond 2145 s, 2 bad arguments.\n" +
		cfgSection + manEnvironment(app) + manFiles +
		"\n.SH SEE ALSO\n" +
		"adjtimex(2), ntpdate(8), ntp-wait(8), chronyd(8), chronyc(1), systemd.service(5), systemd-time-wait-sync.service(8)\n"
	return page, nil
}

// The man page is generated from the CLI (`make man`) and checked in; it
// must carry the exit statuses of boot, sync and wait.
func TestManPage(t *testing.T) {
	page, err := manPage(newApp())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("..", "..", "dist", "slewd.8")
	if *updateMan {
		if err := os.WriteFile(path, []byte(page), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	disk, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%s: %v (generate it: make man)", path, err)
	}
	for name, p := range map[string]string{"generated page": page, path: string(disk)} {
		for _, want := range []string{".TH slewd 8", ".SH EXIT STATUS", "Exit status, for every command:", "no usable time from the servers before --deadline",
			"as 3, under --require-sync", "not synchronized before --timeout", "the offset is beyond what the adjtime slew can make",
			"\\fBslewd ntpdate\\fP", "--forward-only", "/var/lib/slewd/highwater"} {
			if !strings.Contains(p, want) {
				t.Errorf("%s lacks %q (regenerate: make man)", name, want)
			}
		}
	}
	if string(disk) != page {
		t.Errorf("%s differs from the CLI's help text: regenerate it with `make man` and commit it", path)
	}
	// The page must be valid roff: man(1) renders it without warnings.
	if groff, err := exec.LookPath("groff"); err == nil {
		cmd := exec.Command(groff, "-k", "-man", "-Tutf8", "-ww", "-z")
		cmd.Stdin = strings.NewReader(page)
		if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("groff: %v\n%s", err, out)
		}
	}
}

// readOnlyClock is the host's clock for in-process tests: any adjtimex
// that would change something fails the test instead of reaching the kernel.
type readOnlyClock struct {
	clock.System
	t *testing.T
}

func (c readOnlyClock) Adjtimex(tx *clock.Timex) (clock.State, error) {
	if !tx.ReadOnly() {
		c.t.Errorf("a test tried adjtimex(%s) on the host clock", clock.ModeString(tx.Modes))
		return 0, fmt.Errorf("refused by the test")
	}
	return c.System.Adjtimex(tx)
}

// buildSlewd builds the real binary once per test run.
var buildSlewd = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "slewd-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "slewd")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// unprivileged runs the real binary in a user namespace, where the kernel
// refuses every clock change: the host clock is safe whatever it tries.
func unprivileged(t *testing.T, argv0 string, args ...string) (stdout, stderr string, code int, took time.Duration) {
	t.Helper()
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
	if argv0 != "" { // invoked through a symlink (ntpdate)
		link := filepath.Join(t.TempDir(), argv0)
		if err := os.Symlink(bin, link); err != nil {
			t.Fatal(err)
		}
		bin = link
	}
	cmd := exec.Command(unshare, sandboxArgs(bin, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err = cmd.Run()
	took = time.Since(start)
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code, took
}

// sandboxArgs are unshare's arguments to run bin in a user and mount
// namespace with fresh tmpfs over /run and /var/lib: no clock rights, and
// as root outside, no way to write the host's synchronized flag or
// /var/lib/slewd either.
func sandboxArgs(bin string, args ...string) []string {
	return append([]string{"--user", "--map-root-user", "--mount", "sh", "-c",
		`mount -t tmpfs tmpfs /run && mount -t tmpfs tmpfs /var/lib && exec "$0" "$@"`, bin}, args...)
}

func loopbackServers(t *testing.T, n int, cfg ntptest.ServerConfig) []string {
	var addrs []string
	for range n {
		s := ntptest.NewServer(cfg)
		t.Cleanup(s.Close)
		addrs = append(addrs, s.Addr())
	}
	return addrs
}

// The real binary, without clock rights: --dry-run measures four loopback
// servers and plans; without --dry-run it refuses with status 77 at once.
func TestBootBinaryUnprivileged(t *testing.T) {
	addrs := loopbackServers(t, 4, ntptest.ServerConfig{Offset: 200 * time.Millisecond})
	out, errOut, code, took := unprivileged(t, "", append([]string{"boot", "--dry-run", "--json", "--state-dir", t.TempDir()}, addrs...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	j := decodeOneShot(t, out)
	if j.Action != "step" || !j.DryRun || math.Abs(j.OffsetS-0.2) > 0.005 || j.Sources < 3 || j.HighWaterSaved {
		t.Errorf("JSON %+v", j)
	}
	t.Logf("slewd boot --dry-run with four loopback servers: %v (process start to exit)", took)

	out, errOut, code, took = unprivileged(t, "", append([]string{"boot", "--json", "--state-dir", t.TempDir()}, addrs...)...)
	if code != boot.ExitNoPerm || !strings.Contains(errOut, "CAP_SYS_TIME") || took > 5*time.Second {
		t.Errorf("without clock rights: exit %d after %v: %s", code, took, errOut)
	}
	// Scripts reading --json get their object on a failure too.
	if j := decodeOneShot(t, out); j.ExitCode != boot.ExitNoPerm || j.Action != "none" || !strings.Contains(j.Reason, "CAP_SYS_TIME") {
		t.Errorf("--json on a failure: %+v", j)
	}
}

var _ = io.Discard
