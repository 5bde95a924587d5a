package peers

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"slewd/control"
)

// sandbox runs `slewd run --dry-run` with no clock rights and no way to
// reach the host's /run or /var/lib: a user and mount namespace, tmpfs
// over both, and the run and state directories in a temp dir besides.
// After slewd exits the script fails (status 99) if anything told
// systemd the clock is synchronized: a dry run must not.
const sandbox = `set -u
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /var/lib
"$@" &
pid=$!
trap 'kill -TERM $pid' TERM INT
wait $pid
wait $pid
rc=$?
if [ -e /run/systemd/timesync/synchronized ]; then
	echo "SANDBOX: a dry run marked the clock synchronized for systemd" >&2
	exit 99
fi
exit $rc
`

// daemon is a sandboxed slewd run.
type daemon struct {
	cmd     *exec.Cmd
	socket  string
	metrics string // host:port
	stderr  bytes.Buffer
	exited  chan error
}

func startDaemon(t *testing.T, servers ...string) *daemon {
	t.Helper()
	dir := t.TempDir()
	d := &daemon{socket: filepath.Join(dir, "run", "slewd.sock"), metrics: freeTCPAddr(t), exited: make(chan error, 1)}
	args := append([]string{"--user", "--map-root-user", "--mount", "sh", "-c", sandbox, "sandbox",
		slewdBin, "run", "--dry-run", "--log-level", "debug",
		"--run-dir", filepath.Join(dir, "run"), "--state-dir", filepath.Join(dir, "state"),
		"--metrics-listen", d.metrics}, servers...)
	d.cmd = exec.Command("unshare", args...)
	d.cmd.Stderr = &d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.exited <- d.cmd.Wait() }()
	t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			d.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-d.exited:
			case <-time.After(10 * time.Second):
				d.cmd.Process.Kill()
			}
		}
		if t.Failed() {
			t.Logf("slewd run's log:\n%s", d.stderr.String())
		}
	})
	return d
}

// stop ends the daemon as systemd does and returns its exit error.
func (d *daemon) stop(t *testing.T) error {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.exited:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("slewd run did not stop within 10 s of SIGTERM")
	}
	return nil
}

func freeTCPAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// client runs a slewd client command on the host side of the sandbox,
// against the daemon's socket.
func (d *daemon) client(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(slewdBin, append(args, "--control-socket", d.socket)...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("slewd %v: %v", args, err)
	}
	return o.String(), e.String(), code
}

func (d *daemon) ask(t *testing.T, command string) control.Response {
	t.Helper()
	out, stderr, code := d.client(t, command, "--json")
	if code != 0 {
		t.Fatalf("slewd %s --json: exit %d: %s", command, code, stderr)
	}
	var r control.Response
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("slewd %s --json: %v\n%s", command, err, out)
	}
	if r.Version != control.Version {
		t.Errorf("slewd %s --json: version %d", command, r.Version)
	}
	return r
}

// scrape reads /metrics into series → value.
func (d *daemon) scrape(t *testing.T) (map[string]float64, http.Header) {
	t.Helper()
	resp, err := http.Get("http://" + d.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		m[line[:i]] = v
	}
	return m, resp.Header
}

// The end-to-end check: `slewd run --dry-run`, sandboxed, against
// three chrony servers serving time shifted by a known offset, one that
// is 5 s further off and one that is not there. `slewd sources --json`,
// `slewd tracking --json` and /metrics must say the offset, who agrees,
// who is a falseticker and who is unreachable; the daemon tells neither
// the kernel nor systemd anything; a burst polls again; once it is
// stopped the clients say there is no daemon (exit 3).
func TestRunDryRunControlAndMetrics(t *testing.T) {
	const shift = 0.35 // s: the local clock is 350 ms behind these servers
	upstream := startChrony(t, chronyConfig{Stratum: 7})
	var good []string
	for i := 0; i < 3; i++ {
		good = append(good, startChrony(t, chronyConfig{Upstream: upstream.Port, Offset: shift}).Addr())
	}
	falseticker := startChrony(t, chronyConfig{Upstream: upstream.Port, Offset: shift + 5}).Addr()
	dead := fmt.Sprintf("127.0.0.1:%d", freePort(t, false)) // nothing answers there
	d := startDaemon(t, append(good, falseticker, dead)...)

	// Until the initial bursts are in: three agree, the falseticker and
	// the dead server are named.
	var srcs map[string]control.Source
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case err := <-d.exited:
			t.Fatalf("slewd run exited: %v\n%s", err, d.stderr.String())
		default:
		}
		if _, err := os.Stat(d.socket); err == nil {
			srcs = map[string]control.Source{}
			for _, s := range d.ask(t, "sources").Sources {
				srcs[s.Name] = s
			}
			tr := d.ask(t, "tracking").Tracking
			if tr != nil && tr.Sources == 3 && srcs[falseticker].State == control.StateFalseticker &&
				srcs[dead].State == control.StateUnreachable && srcs[dead].Polls > 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no estimate from three sources after 20 s; sources: %+v", srcs)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// slewd sources --json
	if len(srcs) != 5 {
		t.Errorf("%d sources, want 5: %+v", len(srcs), srcs)
	}
	refs := 0
	for _, a := range good {
		s := srcs[a]
		if s.Reference {
			refs++
		}
		if s.State != control.StateSelected && s.State != control.StateCandidate {
			t.Errorf("%s: state %q (%s), want selected or candidate", a, s.State, s.Reason)
		}
		if s.OffsetS == nil || math.Abs(*s.OffsetS-shift) > 200e-6 {
			t.Errorf("%s: offset %v, want %+.6f within 200 µs", a, s.OffsetS, shift)
			continue
		}
		if s.Stratum != 8 || s.ReachOctal == "0" || s.Reach == 0 || s.Samples == 0 || s.Replies == 0 || s.Polls < s.Replies ||
			*s.ErrorS <= 0 || *s.ErrorS > 0.01 || *s.DelayS <= 0 || *s.DelayS > 0.01 || *s.LastSampleAgeS > 20 ||
			s.PollS < 16 || s.RefID != "127.0.0.1" || s.Leap != "none" {
			t.Errorf("%s: %+v", a, s)
		}
		if oct, _ := strconv.ParseUint(s.ReachOctal, 8, 8); uint8(oct) != s.Reach {
			t.Errorf("%s: reach %d is not %s in octal", a, s.Reach, s.ReachOctal)
		}
	}
	if refs != 1 {
		t.Errorf("%d references among the agreeing sources, want 1", refs)
	}
	if s := srcs[falseticker]; s.OffsetS == nil || math.Abs(*s.OffsetS-(shift+5)) > 1e-3 || !strings.HasPrefix(s.Reason, "falseticker") || s.Reference {
		t.Errorf("falseticker: %+v", s)
	}
	if s := srcs[dead]; s.Reach != 0 || s.ReachOctal != "0" || s.OffsetS != nil || s.Replies != 0 || s.Reason == "" {
		t.Errorf("dead server: %+v", s)
	}

	// slewd tracking --json
	tr := d.ask(t, "tracking").Tracking
	t.Logf("tracking: offset %+.6fs ± %.6fs, correction %+.6fs, %d sources agree, reference %s, slew done in %.2fs",
		*tr.OffsetS, *tr.EstimateErrorS, tr.CorrectionS, tr.Sources, tr.Reference.Name, tr.SlewLeftS)
	near := func(what string, got *float64, want, tol float64) {
		t.Helper()
		if got == nil || math.Abs(*got-want) > tol {
			t.Errorf("tracking: %s = %v, want %+.6f within %g", what, got, want, tol)
		}
	}
	near("offset_s", tr.OffsetS, shift, 200e-6)
	// A dry run corrects nothing: the offset now is still the whole shift.
	near("correction_s", &tr.CorrectionS, shift, 1e-3)
	near("error_bound_s", tr.ErrorBoundS, shift, 1e-3)
	near("slew_left_s", &tr.SlewLeftS, shift/0.1005, 0.05)
	if tr.Reference == nil || srcs[tr.Reference.Name].State == control.StateFalseticker || tr.Stratum != 9 ||
		tr.Synchronized || !tr.Slewing || tr.SlewRatePPM != 100500 || tr.SlewEnd == nil || tr.OutOfBounds ||
		tr.RootDelayS == nil || *tr.RootDelayS <= 0 || tr.PollS == nil || tr.LastUpdate == nil || *tr.LastUpdateAgeS > 20 ||
		!tr.Daemon.DryRun || !tr.Daemon.Started || tr.Kernel.Told || tr.Systemd.MarkedSynchronized != nil || tr.Leap != "none" {
		t.Errorf("tracking: %+v", tr)
	}
	if time.Until(*tr.SlewEnd) > 5*time.Second || time.Since(*tr.LastUpdate) > 25*time.Second {
		t.Errorf("tracking: slew end %v, last update %v", tr.SlewEnd, tr.LastUpdate)
	}

	// The text forms say the same.
	out, _, code := d.client(t, "sources", "-v")
	if code != 0 || !strings.Contains(out, "falseticker") || !strings.Contains(out, "unreachable") || !strings.Contains(out, "REACH") {
		t.Errorf("slewd sources -v: exit %d:\n%s", code, out)
	}
	out, _, code = d.client(t, "tracking")
	if code != 0 || !strings.Contains(out, "Offset now:       +") || !strings.Contains(out, "Kernel:           not told (dry run)") {
		t.Errorf("slewd tracking: exit %d:\n%s", code, out)
	}
	out, _, code = d.client(t, "status")
	if code != 0 || !strings.Contains(out, "daemon:        slewd") || !strings.Contains(out, "(dry run): not synchronized, offset now +") {
		t.Errorf("slewd status: exit %d:\n%s", code, out)
	}

	// /metrics
	m, h := d.scrape(t)
	if ct := h.Get("Content-Type"); ct != "text/plain; version=0.0.4; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	metric := func(series string, want, tol float64) {
		t.Helper()
		if got, ok := m[series]; !ok || math.Abs(got-want) > tol {
			t.Errorf("%s = %v (there: %v), want %g within %g", series, got, ok, want, tol)
		}
	}
	metric("slewd_offset_seconds", shift, 200e-6)
	metric("slewd_correction_remaining_seconds", shift, 1e-3)
	metric("slewd_sources_agreeing", 3, 0)
	metric("slewd_synchronized", 0, 0)
	metric("slewd_dry_run", 1, 0)
	metric("slewd_slew_rate_ratio", 0.1005, 1e-12)
	for _, a := range good {
		metric(fmt.Sprintf(`slewd_source_offset_seconds{source=%q,address=%q}`, a, a), shift, 200e-6)
		metric(fmt.Sprintf(`slewd_source_stratum{source=%q,address=%q}`, a, a), 8, 0)
	}
	metric(fmt.Sprintf(`slewd_source_offset_seconds{source=%q,address=%q}`, falseticker, falseticker), shift+5, 1e-3)
	metric(fmt.Sprintf(`slewd_source_state{source=%q,address=%q,state="falseticker"}`, falseticker, falseticker), 1, 0)
	metric(fmt.Sprintf(`slewd_source_state{source=%q,address=%q,state="unreachable"}`, dead, dead), 1, 0)
	metric(fmt.Sprintf(`slewd_source_reach_ratio{source=%q,address=%q}`, dead, dead), 0, 0)
	if _, ok := m[fmt.Sprintf(`slewd_source_offset_seconds{source=%q,address=%q}`, dead, dead)]; ok {
		t.Error("an offset for the dead server")
	}
	found := false
	for k := range m {
		found = found || strings.HasPrefix(k, "slewd_build_info{")
	}
	if !found {
		t.Error("no slewd_build_info")
	}

	// A burst (root: this process is root in the daemon's namespace)
	// polls every source again now, long before its 16 s poll.
	before := d.ask(t, "sources").Sources
	if out, stderr, code := d.client(t, "burst"); code != 0 {
		t.Errorf("slewd burst: exit %d: %s%s", code, out, stderr)
	}
	polled := false
	for end := time.Now().Add(3 * time.Second); !polled && time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		after := d.ask(t, "sources").Sources
		polled = true
		for i := range before {
			if before[i].Name != dead && after[i].Replies <= before[i].Replies {
				polled = false
			}
		}
	}
	if !polled {
		t.Error("no new reply from every server within 3 s of slewd burst")
	}

	// Another user: kept out by the socket's mode (0600 here, as there is
	// no group slewd in the test), and, let in, refused a state change by
	// its credentials while it may still read.
	if setpriv, err := exec.LookPath("setpriv"); err == nil && os.Getuid() == 0 {
		nobody := func(args ...string) (string, int) {
			cmd := exec.Command(setpriv, append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", slewdBin},
				append(args, "--control-socket", d.socket)...)...)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return string(out), ee.ExitCode()
			} else if err != nil {
				t.Fatalf("setpriv: %v", err)
			}
			return string(out), 0
		}
		if out, code := nobody("tracking"); code != 77 || !strings.Contains(out, "permission denied") {
			t.Errorf("tracking as nobody through a 0600 socket: exit %d: %s", code, out)
		}
		for p := d.socket; p != "/"; p = filepath.Dir(p) {
			if fi, err := os.Stat(p); err == nil && fi.IsDir() && fi.Mode().Perm()&0o005 != 0o005 {
				os.Chmod(p, fi.Mode().Perm()|0o005)
			}
		}
		os.Chmod(d.socket, 0o666)
		out, code := nobody("burst")
		t.Logf("slewd burst as nobody: exit %d: %s", code, strings.TrimSpace(out))
		if code != 77 || !strings.Contains(out, "only root may ask it") {
			t.Errorf("burst as nobody: exit %d: %s", code, out)
		}
		if out, code := nobody("tracking"); code != 0 || !strings.Contains(out, "Offset now:") {
			t.Errorf("tracking as nobody through an open socket: exit %d: %s", code, out)
		}
	}

	if err := d.stop(t); err != nil {
		t.Fatalf("slewd run: %v\n%s", err, d.stderr.String())
	}
	if _, err := os.Stat(d.socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the socket outlives the daemon: %v", err)
	}
	for _, cmd := range []string{"sources", "tracking"} {
		if _, stderr, code := d.client(t, cmd); code != 3 || !strings.Contains(stderr, "no slewd daemon is running") {
			t.Errorf("slewd %s without a daemon: exit %d, %q", cmd, code, stderr)
		}
	}
	if out, _, code := d.client(t, "status"); code != 0 || !strings.Contains(out, "daemon:        not running") {
		t.Errorf("slewd status without a daemon: exit %d:\n%s", code, out)
	}
	if _, err := http.Get("http://" + d.metrics + "/metrics"); err == nil {
		t.Error("/metrics still served after the daemon stopped")
	}
}
