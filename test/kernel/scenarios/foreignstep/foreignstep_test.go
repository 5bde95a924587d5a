// Package foreignstep runs the real slewd binary on the real kernel clock
// of a throwaway qemu guest while another program moves that clock: a
// step back of 5 s while synchronized (twenty times, for the
// distribution), a guest that starts 30 s behind (a resumed VM), and an
// agent that steps the clock to its own time every few seconds when they
// differ by more than its threshold. The NTP server runs in the guest and
// serves true time derived from CLOCK_MONOTONIC_RAW.
package foreignstep

import (
	"math"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"slewd/clock"
	"slewd/foreign"
	"slewd/test/kernel/guest"
)

func TestMain(m *testing.M) { guest.Main(m) }

// undo is one foreign step back and what followed it.
type undo struct {
	StepS     float64 `json:"step_s"`
	WindowUS  float64 `json:"window_us"`  // REALTIME below its pre-step high, from just before the step
	DetectMS  float64 `json:"detect_ms"`  // until slewd's WARN line appeared in its log
	ErrorUS   float64 `json:"error_us"`   // |REALTIME − truth| 2 s later
	Culprit   string  `json:"culprit"`    // what the WARN line said
	LatencyUS float64 `json:"latency_us"` // slewd's own figure: notice to undo
	Line      string  `json:"line"`       // the WARN line
}

// behind is the guest that starts 30 s behind.
type behind struct {
	WithinMS float64 `json:"within_1ms_after_s"`
	Line     string  `json:"line"`
}

// fight is the periodic agent's fight with slewd.
type fight struct {
	AgentSteps int       `json:"agent_steps"`
	LastStepS  float64   `json:"last_step_s"` // after the agent started
	WindowsUS  []float64 `json:"windows_us"`
	ErrorUS    float64   `json:"error_us"` // at the end
	Line       string    `json:"line"`     // the last foreign-step line
}

// highReal reads REALTIME (the highest a program could have seen just now).
func highReal(c clock.Clock) time.Time { return clock.Read(c, 2).Real }

// stepBack steps the clock back by d as another program would, and
// returns how long REALTIME stayed below what it read just before: from
// RAW just before the step to RAW right after slewd's undo returned
// (RAW is the same in every process; slewd puts it in its status file),
// an upper bound of the window. Polling REALTIME meanwhile would take the
// guest's one CPU from slewd and lengthen what it measures. It also checks
// that REALTIME is past its old high 50 ms later; -1 if not undone.
func stepBack(t *testing.T, c clock.Clock, d *guest.Slewd, by time.Duration) time.Duration {
	t.Helper()
	high := highReal(c)
	start := c.Raw()
	if _, err := clock.NewDriver(c).Step(-by); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if c.Now().Before(high) {
		return -1
	}
	for try := 0; try < 200; try++ {
		if st, ok := d.Status(); ok && st.Foreign != nil && st.Foreign.Last != nil && st.Foreign.Last.UndoneRaw > start {
			return st.Foreign.Last.UndoneRaw - start
		}
		time.Sleep(10 * time.Millisecond)
	}
	return -1
}

func converge(t *testing.T, w *guest.Truth, c clock.Clock) {
	t.Helper()
	if conv, _ := guest.WaitConverged(w, c, c.Raw(), 15*time.Second, 2*time.Minute); conv < 0 {
		t.Fatal("slewd never synchronized the guest")
	}
}

// A foreign 5 s backward step while synchronized is logged within 1 s and
// undone within 1 ms, and the clock is then within 1 ms of truth.
func TestForeignStepUndone(t *testing.T) {
	c := guest.Clock(t)
	w := guest.NewTruth(t, c, 1)
	d := guest.StartSlewd(t, "", w.Addrs[0])
	defer d.Stop(t, syscall.SIGTERM)
	converge(t, w, c)
	var windows []float64
	for i := range 20 {
		from := len(d.Log())
		stepped := highReal(c)
		win := stepBack(t, c, d, 5*time.Second)
		line, _, ok := d.WaitLog("set the clock back by", from, 2*time.Second)
		// When slewd logged it, by its own stamp (REALTIME, ms): the clock
		// is continuous again after the undo.
		detect := time.Duration(-1)
		if f := strings.Fields(line); len(f) > 0 {
			if at, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(f[0], "time=")); err == nil {
				detect = at.Sub(stepped)
			}
		}
		time.Sleep(2 * time.Second)
		e := w.ClockError()
		u := undo{StepS: -5, WindowUS: us(win), DetectMS: float64(detect) / 1e6, ErrorUS: us(e.Abs()), Line: line}
		if st, ok := d.Status(); ok && st.Foreign != nil && st.Foreign.Last != nil {
			u.Culprit, u.LatencyUS = st.Foreign.Last.Culprit, us(st.Foreign.Last.Latency)
		}
		guest.Emit(t, "undo", u)
		windows = append(windows, u.WindowUS)
		switch {
		case !ok:
			t.Errorf("step %d: no log line within 2 s", i)
		case detect < 0 || detect > time.Second:
			t.Errorf("step %d: logged after %v", i, detect)
		}
		if win < 0 || win > time.Millisecond {
			t.Errorf("step %d: REALTIME stayed below its high for %v", i, win)
		}
		if e.Abs() > time.Millisecond {
			t.Errorf("step %d: 2 s later the clock is %v off", i, e)
		}
		time.Sleep(time.Second)
	}
	if st, ok := d.Status(); !ok || st.Foreign == nil || st.Foreign.Undone < 20 {
		t.Errorf("status file: %+v", st.Foreign)
	}
	sort.Float64s(windows)
	t.Logf("windows (µs): min %.0f median %.0f max %.0f", windows[0], windows[len(windows)/2], windows[len(windows)-1])
}

// A guest that starts 30 s behind (a resumed VM) is within 1 ms after at
// most 6 s: stepped forward at the first estimate, the rest slewed.
func TestBehindSteppedForward(t *testing.T) {
	c := guest.Clock(t)
	w := guest.NewTruth(t, c, 1)
	if _, err := clock.NewDriver(c).Step(-30 * time.Second); err != nil {
		t.Fatal(err)
	}
	start := c.Raw()
	d := guest.StartSlewd(t, "", w.Addrs[0])
	defer d.Stop(t, syscall.SIGTERM)
	within := -1.0
	for c.Raw()-start < 20*time.Second {
		if w.ClockError().Abs() <= time.Millisecond {
			within = (c.Raw() - start).Seconds()
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	line, _, _ := d.WaitLog("stepped it forward", 0, time.Second)
	guest.Emit(t, "behind", behind{WithinMS: within, Line: line})
	if within < 0 || within > 6 {
		t.Errorf("30 s behind: within 1 ms after %.2f s, want at most 6 s", within)
	}
	if conv, _ := guest.WaitConverged(w, c, start, 10*time.Second, 30*time.Second); conv < 0 {
		t.Error("did not stay within 1 ms")
	}
}

// An agent steps the clock to its own time (true time here) every 2 s
// whenever they differ by more than 0.5 s, after the guest came back 5 s
// ahead. Each of its steps back is undone at once, slewd slews toward the
// truth both agree on, and the agent stops crossing its threshold: the
// fight ends by itself, every backward window under 1 ms; REALTIME never
// goes back otherwise (a sampler reads it all along).
func TestPeriodicAgentFight(t *testing.T) {
	c := guest.Clock(t)
	w := guest.NewTruth(t, c, 1)
	d := guest.StartSlewd(t, "", w.Addrs[0])
	defer d.Stop(t, syscall.SIGTERM)
	converge(t, w, c)
	smp := startSampler(c)
	if _, err := clock.NewDriver(c).Step(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	start := c.Raw()
	var f fight
	for c.Raw()-start < 120*time.Second {
		time.Sleep(2 * time.Second)
		if e := w.ClockError(); e.Abs() > 500*time.Millisecond {
			win := stepBack(t, c, d, e)
			f.AgentSteps++
			f.LastStepS = (c.Raw() - start).Seconds()
			f.WindowsUS = append(f.WindowsUS, us(win))
			if win < 0 || win > time.Millisecond {
				t.Errorf("agent step %d: REALTIME below its high for %v", f.AgentSteps, win)
			}
		}
	}
	smp.stop()
	f.ErrorUS = us(w.ClockError().Abs())
	f.Line, _, _ = d.WaitLog("something keeps moving the clock", 0, time.Second)
	guest.Emit(t, "fight", f)
	if f.AgentSteps == 0 || f.LastStepS > 90 {
		t.Errorf("the agent stepped %d times, the last %.1f s after the start: the fight did not end", f.AgentSteps, f.LastStepS)
	}
	if f.ErrorUS > 1000 {
		t.Errorf("after the fight the clock is %.0f µs off", f.ErrorUS)
	}
	// The sampler sees no backward window but the agent's (it may miss
	// some: it reads 200 µs in every 20 ms). Their length is the agent's
	// to measure: between two bursts the sampler cannot tell when one
	// ended. None may still be open.
	if open, _ := smp.w.Open(); smp.w.Count > f.AgentSteps || open {
		t.Errorf("the sampler saw %d backward windows (open now: %v) for %d agent steps", smp.w.Count, open, f.AgentSteps)
	}
}

// sampler reads REALTIME against RAW in bursts (200 µs of reads every
// 20 ms: under icount a busy loop leaves no idle time to skip, and the
// guest has one CPU to share with slewd) into a backward-window tracker.
type sampler struct {
	mu   sync.Mutex
	w    foreign.Window
	quit chan struct{}
	done sync.WaitGroup
}

func startSampler(c clock.Clock) *sampler {
	s := &sampler{quit: make(chan struct{})}
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		for {
			for end := c.Raw() + 200*time.Microsecond; c.Raw() < end; {
				raw, real := c.Raw(), c.Now()
				s.mu.Lock()
				s.w.Observe(float64(raw)/1e9, float64(real.UnixNano())/1e9)
				s.mu.Unlock()
			}
			select {
			case <-s.quit:
				return
			case <-time.After(19 * time.Millisecond):
			}
		}
	}()
	return s
}

func (s *sampler) stop() { close(s.quit); s.done.Wait() }

func us(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Microsecond)*10) / 10 }
