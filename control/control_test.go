package control

import (
	"context"
	"errors"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"slewd/discipline"
	"slewd/foreign"
	"slewd/ntpclient"
)

// fixedClock reads the same instant every time.
type fixedClock struct {
	now time.Time
	raw time.Duration
}

func (c fixedClock) Now() time.Time     { return c.now }
func (c fixedClock) Raw() time.Duration { return c.raw }

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// snapshot is a daemon 250 ms behind, slewing, with one source of each
// state.
func snapshot() discipline.Snapshot {
	rep := func(name string, mod func(*ntpclient.SourceReport)) ntpclient.SourceReport {
		r := ntpclient.SourceReport{Source: name, Addr: name, Stratum: 2, RefID: 0xc0000201, Reach: 0o377,
			Poll: 64 * time.Second, Samples: 8, Offset: 250 * time.Millisecond, Delay: 2 * time.Millisecond,
			Dispersion: 100 * time.Microsecond, Jitter: 50 * time.Microsecond, RootDistance: 3 * time.Millisecond,
			RootDelay: 10 * time.Millisecond, RootDispersion: 400 * time.Microsecond,
			LastSample: 95 * time.Second, Candidate: true, Queries: 12, Replies: 11}
		mod(&r)
		return r
	}
	reports := []ntpclient.SourceReport{
		rep("a:123", func(r *ntpclient.SourceReport) { r.Selected = true; r.Reason = "" }),
		rep("b:123", func(r *ntpclient.SourceReport) { r.Selected = true; r.Stratum = 1; r.RefID = 0x47505300 }),
		rep("c:123", func(r *ntpclient.SourceReport) {
			r.Reason = "agrees, but its root distance is over twice the system peer's"
		}),
		rep("d:123", func(r *ntpclient.SourceReport) {
			r.Offset = 2 * time.Second
			r.Reason = "falseticker: +1.75s from where the majority agrees"
		}),
		rep("e:123", func(r *ntpclient.SourceReport) {
			r.Reach, r.Samples, r.Candidate, r.Replies, r.Reason = 0, 0, false, 0, "unreachable: connection refused"
		}),
		rep("f:123", func(r *ntpclient.SourceReport) {
			r.KissCode, r.Samples, r.Candidate, r.Kisses, r.Reason = "RATE", 0, false, 3, "kiss-of-death RATE and no sample yet"
		}),
		rep("g:123", func(r *ntpclient.SourceReport) {
			r.Samples, r.Candidate, r.Stratum, r.Reason = 0, false, 0, "unsynchronized (stratum 0, LI=3)"
		}),
	}
	return discipline.Snapshot{
		Started: true, Remaining: 240 * time.Millisecond, Slewing: true, SlewRatePPM: 100500,
		FreqPPM: 12.5, FreqSigmaPPM: 0.25, Sources: 3, Reports: reports,
		Estimate: &ntpclient.Estimate{Raw: 99 * time.Second, Offset: 250 * time.Millisecond, Error: 3 * time.Millisecond,
			Jitter: 60 * time.Microsecond, Sources: 3, Stratum: 2},
		KernelMaxError: 243*time.Millisecond + 400, KernelEstError: 240*time.Millisecond + 20*time.Microsecond,
		MarkedSynced: t0.Add(-time.Hour),
	}
}

func view(s discipline.Snapshot) View {
	return View{Snapshot: func() discipline.Snapshot { return s }, Clock: fixedClock{t0, 100 * time.Second}, Version: "v-test"}
}

func TestSourceStates(t *testing.T) {
	want := map[string]string{
		"a:123": StateSelected, "b:123": StateSelected, "c:123": StateCandidate, "d:123": StateFalseticker,
		"e:123": StateUnreachable, "f:123": StateKissOfDeath, "g:123": StateUnusable,
	}
	srcs := view(snapshot()).Sources()
	if len(srcs) != len(want) {
		t.Fatalf("%d sources, want %d", len(srcs), len(want))
	}
	for _, s := range srcs {
		if s.State != want[s.Name] {
			t.Errorf("%s: state %q, want %q", s.Name, s.State, want[s.Name])
		}
		// The stratum-1 one of the two selected is the reference.
		if s.Reference != (s.Name == "b:123") {
			t.Errorf("%s: reference %v", s.Name, s.Reference)
		}
		if s.State == StateSelected && s.Reason != "" {
			t.Errorf("%s: selected with a reason %q", s.Name, s.Reason)
		}
		if s.State != StateSelected && s.Reason == "" {
			t.Errorf("%s: %s without a reason", s.Name, s.State)
		}
	}
	a, e := srcs[0], srcs[4]
	if a.ReachOctal != "377" || a.PollS != 64 || *a.LastSampleAgeS != 5 || *a.OffsetS != 0.25 ||
		*a.ErrorS != 0.003 || *a.DelayS != 0.002 || *a.RootDelayS != 0.01 || a.RefID != "192.0.2.1" || a.Polls != 12 {
		t.Errorf("selected source: %+v", a)
	}
	if e.OffsetS != nil || e.LastSampleAgeS != nil || e.ReachOctal != "0" || e.RefID != "" {
		t.Errorf("unreachable source shows a sample: %+v", e)
	}
	if srcs[1].RefID != ".GPS." || srcs[5].Kisses != 3 || srcs[5].KissCode != "RATE" {
		t.Errorf("refid %q, kisses %d %q", srcs[1].RefID, srcs[5].Kisses, srcs[5].KissCode)
	}
}

func TestTracking(t *testing.T) {
	tr := view(snapshot()).Tracking()
	if tr.Reference == nil || tr.Reference.Name != "b:123" || tr.Reference.RefID != ".GPS." {
		t.Fatalf("reference %+v, want b:123", tr.Reference)
	}
	near := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9 {
			t.Errorf("%s = %.9g, want %.9g", name, got, want)
		}
	}
	near("correction", tr.CorrectionS, 0.24)
	near("offset", *tr.OffsetS, 0.25)
	near("estimate error", *tr.EstimateErrorS, 0.003)
	near("error bound", *tr.ErrorBoundS, 0.2430004)
	// Our delay to the reference and its own; our dispersion and jitter
	// and its own.
	near("root delay", *tr.RootDelayS, 0.012)
	near("root dispersion", *tr.RootDispersionS, 0.00055)
	near("poll", *tr.PollS, 64)
	near("age", *tr.LastUpdateAgeS, 1)
	if !tr.LastUpdate.Equal(t0.Add(-time.Second)) {
		t.Errorf("last update %v", tr.LastUpdate)
	}
	// 240 ms at 100500 ppm: 2.388 s.
	near("slew left", tr.SlewLeftS, discipline.SlewTime(240*time.Millisecond, 100500).Seconds())
	if !tr.SlewEnd.Equal(t0.Add(discipline.SlewTime(240*time.Millisecond, 100500))) {
		t.Errorf("slew end %v", tr.SlewEnd)
	}
	// The kernel holds whole microseconds, rounded up.
	if !tr.Kernel.Told || tr.Kernel.Synchronized || *tr.Kernel.MaxErrorS != 0.243001 || *tr.Kernel.EstErrorS != 0.24002 {
		t.Errorf("kernel %+v (maxerror %v)", tr.Kernel, *tr.Kernel.MaxErrorS)
	}
	if m := tr.Systemd.MarkedSynchronized; m == nil || !m.Equal(t0.Add(-time.Hour)) {
		t.Errorf("systemd marked %v", m)
	}
	if tr.Stratum != 2 || tr.Sources != 3 || tr.Leap != "none" || tr.Daemon.Version != "v-test" || tr.Foreign != nil {
		t.Errorf("tracking %+v", tr)
	}

	// A dry run tells neither the kernel nor systemd.
	s := snapshot()
	s.DryRun = true
	tr = view(s).Tracking()
	if tr.Kernel.Told || tr.Systemd.MarkedSynchronized != nil || !tr.Daemon.DryRun {
		t.Errorf("dry run: kernel %+v, systemd %+v", tr.Kernel, tr.Systemd)
	}

	// Before the first estimate: nothing to say but that.
	tr = view(discipline.Snapshot{Started: true}).Tracking()
	if tr.Reference != nil || tr.OffsetS != nil || tr.ErrorBoundS != nil || tr.Kernel.Told || tr.Leap != "unsynchronized" || tr.SlewEnd != nil {
		t.Errorf("no estimate: %+v", tr)
	}

	// The foreign tally, when the daemon keeps one.
	v := view(snapshot())
	v.Foreign = func(discipline.Snapshot) *foreign.Tally { return &foreign.Tally{Steps: 2, Backward: 1} }
	if tr := v.Tracking(); tr.Foreign == nil || tr.Foreign.Steps != 2 {
		t.Errorf("foreign %+v", tr.Foreign)
	}
}

// fakeClient is the discipline's Estimator, counting PollNow.
type fakeClient struct{ polls int }

func (*fakeClient) Start()                                 {}
func (*fakeClient) Handle(any) (*ntpclient.Estimate, bool) { return nil, false }
func (*fakeClient) Tick() time.Duration                    { return time.Hour }
func (*fakeClient) Reports() []ntpclient.SourceReport      { return nil }
func (*fakeClient) SetPollLimit(time.Duration)             {}
func (c *fakeClient) PollNow()                             { c.polls++ }
func serveTest(t *testing.T, srv *Server) (socket string) {
	t.Helper()
	socket = filepath.Join(t.TempDir(), "run", "slewd.sock")
	ln, _, err := Listen(socket)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return socket
}

// A burst is root's only: it is posted into the loop, where Handler
// makes the discipline poll; anyone else is refused and nothing posted.
func TestBurstNeedsRoot(t *testing.T) {
	client := &fakeClient{}
	d := discipline.New(discipline.Config{}, discipline.Env{Client: client})
	posted := 0
	for _, tc := range []struct {
		uid    uint32
		denied bool
	}{{1000, true}, {0, false}} {
		srv := &Server{View: view(snapshot()), Post: func(ev any) {
			posted++
			// The loop's goroutine, as clock.Loop would run it.
			go func() {
				if ok, err := Handler.HandleEvent(d, ev); !ok || err != nil {
					t.Errorf("Handler: %v %v", ok, err)
				}
			}()
		}}
		srv.peerUID = func(*net.UnixConn) (uint32, error) { return tc.uid, nil }
		socket := serveTest(t, srv)
		resp, err := Ask(context.Background(), socket, CmdBurst)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Denied != tc.denied || (resp.Error != "") != tc.denied {
			t.Errorf("uid %d: %+v", tc.uid, resp)
		}
		// Reading is anyone's who may connect.
		if resp, err := Ask(context.Background(), socket, CmdSources); err != nil || resp.Error != "" || len(resp.Sources) != 7 {
			t.Errorf("uid %d: sources: %v %+v", tc.uid, err, resp)
		}
	}
	if posted != 1 || client.polls != 1 {
		t.Errorf("posted %d, polled %d times; want the root request only", posted, client.polls)
	}
	// The handler leaves other events to the next handler.
	if ok, _ := Handler.HandleEvent(d, "something else"); ok {
		t.Error("Handler took an event not its own")
	}
}

func TestProtocolErrors(t *testing.T) {
	srv := &Server{View: view(snapshot())}
	ctx := context.Background()
	for _, tc := range []struct {
		req  Request
		want string
	}{
		{Request{Version: 2, Command: CmdSources}, "version 2 is not spoken here: this slewd speaks version 1"},
		{Request{Version: 1, Command: "reload"}, `unknown command "reload"`},
		{Request{Version: 1, Command: CmdBurst}, "takes no requests that change state"},
	} {
		resp := srv.Answer(ctx, tc.req, 0)
		if !strings.Contains(resp.Error, tc.want) || resp.Version != Version {
			t.Errorf("%+v: %+v, want an error saying %q", tc.req, resp, tc.want)
		}
	}
	if resp := srv.Answer(ctx, Request{Version: 1, Command: CmdTracking}, 1000); resp.Error != "" || resp.Tracking == nil {
		t.Errorf("tracking: %+v", resp)
	}
}

// A request posted into a loop that never takes it times out instead of
// holding the connection.
func TestBurstLoopStuck(t *testing.T) {
	srv := &Server{View: view(snapshot()), Post: func(any) {}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if resp := srv.Answer(ctx, Request{Version: 1, Command: CmdBurst}, 0); !strings.Contains(resp.Error, "did not take") {
		t.Errorf("%+v", resp)
	}
}

// The kernel's word on who connected: this process.
func TestPeerUID(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "s.sock")
	ln, _, err := Listen(socket)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	looked := make(chan struct{})
	defer close(looked)
	go func() {
		if c, err := net.Dial("unix", socket); err == nil {
			defer c.Close()
			<-looked // held open while the server looks
		}
	}()
	c, err := ln.AcceptUnix()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	uid, err := PeerUID(c)
	if err != nil || uid != uint32(os.Getuid()) {
		t.Errorf("PeerUID = %d, %v; want %d", uid, err, os.Getuid())
	}
}

func TestListen(t *testing.T) {
	dir := t.TempDir()
	socket := filepath.Join(dir, "run", "slewd.sock")
	ln, mode, err := Listen(socket)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(socket)
	if err != nil {
		t.Fatal(err)
	}
	// 0660 for group slewd where it exists, else 0600: never more.
	perm := fi.Mode().Perm()
	if !(perm == 0o600 && strings.HasPrefix(mode, "0600")) && !(perm == 0o660 && strings.HasPrefix(mode, "0660")) {
		t.Errorf("socket mode %v, said %q", perm, mode)
	}
	if di, _ := os.Stat(filepath.Dir(socket)); di.Mode().Perm()&0o755 != 0o755 {
		t.Errorf("run dir mode %v", di.Mode().Perm())
	}
	// While it is served, a second daemon is refused.
	if _, _, err := Listen(socket); err == nil || !strings.Contains(err.Error(), "another slewd") {
		t.Errorf("second Listen: %v", err)
	}
	ln.Close()
	// Closing removes the socket: no daemon, exit 3 for the clients.
	if _, err := Ask(context.Background(), socket, CmdSources); !errors.Is(err, ErrNoDaemon) {
		t.Errorf("Ask after close: %v, want ErrNoDaemon", err)
	}
	// A stale socket left by a killed daemon is replaced.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: socket, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	ln, _, err = Listen(socket)
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	ln.Close()
	// Anything else at the path is left alone.
	os.WriteFile(socket, nil, 0o644)
	if _, _, err := Listen(socket); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("over a file: %v", err)
	}
}
