package simclock

import (
	"container/heap"
	"context"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"slewd/clock"
)

// DefaultEpoch is the true UTC time at which a world starts unless told otherwise.
var DefaultEpoch = time.Date(2026, 1, 5, 3, 0, 0, 0, time.UTC)

// Config describes a simulated machine.
type Config struct {
	// Epoch is the true UTC time at virtual time zero (DefaultEpoch if zero).
	Epoch  time.Time
	Seed   uint64
	Kernel KernelConfig
}

// World is a simulated machine in virtual time: a kernel clock, the
// processes that use it, and a scheduler.
//
// Virtual time advances only when every goroutine of every process is
// blocked in a simulated primitive (Process.Wait, a Blocker, a simulated
// socket), as clknetsim advances time only in select(). So slewd's own
// code runs unchanged, deterministically for a seed, and a day of
// virtual time takes seconds.
type World struct {
	mu     sync.Mutex
	cond   *sync.Cond
	active int // goroutines of the world that are running, not blocked

	k      *Kernel
	seed   uint64
	events eventHeap // callbacks at true times
	timers timerHeap // blocker deadlines on CLOCK_MONOTONIC
	seq    uint64
	obs    []Observer
	procs  []*Process
	setFDs []*timerFD // cancel-on-set timers (changes.go)
}

// New returns a world at virtual time zero.
func New(cfg Config) *World {
	if cfg.Epoch.IsZero() {
		cfg.Epoch = DefaultEpoch
	}
	w := &World{seed: cfg.Seed}
	w.cond = sync.NewCond(&w.mu)
	w.k = newKernel(cfg.Epoch, cfg.Kernel, w.Rand("oscillator"))
	w.k.observer = fanout{w}
	w.k.onSet = w.clockWasSetLocked
	return w
}

// Rand returns a random source for the named stream, fixed by the seed, so
// that adding draws to one stream does not change another.
func (w *World) Rand(stream string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(stream))
	return rand.New(rand.NewPCG(w.seed, h.Sum64()))
}

// Observe adds an observer of the REALTIME trajectory.
func (w *World) Observe(o Observer) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.obs = append(w.obs, o)
}

type fanout struct{ w *World }

func (f fanout) Segment(t0, t1, e0, e1, r float64) {
	for _, o := range f.w.obs {
		o.Segment(t0, t1, e0, e1, r)
	}
}
func (f fanout) Jump(t, d float64, why string) {
	for _, o := range f.w.obs {
		o.Jump(t, d, why)
	}
}
func (f fanout) RTCWrite(t, e float64) {
	for _, o := range f.w.obs {
		o.RTCWrite(t, e)
	}
}

// Now is the virtual true time since the world began.
func (w *World) Now() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return seconds(w.k.t)
}

// TrueTime is the true UTC time now.
func (w *World) TrueTime() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.trueTimeLocked()
}

func (w *World) trueTimeLocked() time.Time {
	return w.k.epoch.Add(seconds(w.k.t))
}

// ClockError is CLOCK_REALTIME minus true time now.
func (w *World) ClockError() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return seconds(w.k.errorNow())
}

// ClockErrorSeconds is ClockError as float seconds (keeps sub-ns precision).
func (w *World) ClockErrorSeconds() float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.k.errorNow()
}

// FrequencyError is the oscillator's current fractional frequency error
// (CLOCK_MONOTONIC_RAW against true time).
func (w *World) FrequencyError() float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.k.drift
}

// BootID changes at every Reboot, like /proc/sys/kernel/random/boot_id.
func (w *World) BootID() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.k.bootID
}

// Adjtimex calls adjtimex as root from outside any process (test set-up).
func (w *World) Adjtimex(tx *clock.Timex) (clock.State, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	st, err := w.k.adjtimex(tx, true)
	if err != nil {
		return st, &clock.AdjtimexError{Modes: tx.Modes, Err: err}
	}
	return st, nil
}

// Reboot kills every process and boots the machine again: the kernel's NTP
// state takes its defaults, RAW and MONOTONIC restart at uptime, and
// REALTIME comes back off true time by clockError (what the RTC said).
func (w *World) Reboot(uptime, clockError time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range w.procs {
		p.killLocked()
	}
	w.timers = nil
	w.setFDs = nil
	before := w.k.errorNow()
	w.k.boot(w.k.t, uptime, clockError)
	for _, o := range w.obs {
		o.Jump(w.k.t, w.k.errorNow()-before, "reboot")
	}
}

func seconds(s float64) time.Duration { return time.Duration(math.Round(s * 1e9)) }

// At runs f at virtual true time t (now, if t has passed). f runs on the
// scheduler's goroutine while every process is blocked; it may wake at most
// one blocked goroutine, as its last action, to keep runs deterministic.
func (w *World) At(t time.Duration, f func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.atLocked(t.Seconds(), f)
}

// After runs f after d of virtual true time.
func (w *World) After(d time.Duration, f func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.atLocked(w.k.t+d.Seconds(), f)
}

func (w *World) atLocked(t float64, f func()) {
	w.seq++
	heap.Push(&w.events, &event{at: max(t, w.k.t), seq: w.seq, f: f})
}

// Run runs the world until virtual true time until. Processes that are
// still blocked then stay blocked; Run may be called again to go on.
func (w *World) Run(until time.Duration) {
	end := until.Seconds()
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		for w.active > 0 {
			w.cond.Wait()
		}
		evAt := math.Inf(1)
		if len(w.events) > 0 {
			evAt = w.events[0].at
		}
		monoAt := math.Inf(1)
		if len(w.timers) > 0 {
			monoAt = w.timers[0].mono
		}
		if w.k.advance(min(evAt, end), monoAt) {
			tm := heap.Pop(&w.timers).(*timer)
			if tm.b != nil && tm.b.timer == tm {
				tm.b.timer = nil
				w.k.wake()
				w.wakeLocked(tm.b, true)
			}
			continue
		}
		if w.k.t < min(evAt, end) {
			continue // interrupted: the kernel scheduled something now
		}
		if evAt > end {
			return
		}
		w.k.wake()
		ev := heap.Pop(&w.events).(*event)
		w.mu.Unlock()
		ev.f()
		w.mu.Lock()
	}
}

// Spawn starts a simulated process running main. Its ctx is cancelled by
// Terminate (SIGTERM); Kill (SIGKILL) stops it without running anything.
func (w *World) Spawn(name string, capSysTime bool, main func(ctx context.Context, p *Process) error) *Process {
	ctx, cancel := context.WithCancel(context.Background())
	p := &Process{w: w, Name: name, capSysTime: capSysTime, ctx: ctx, cancel: cancel}
	p.waitB = p.NewBlocker()
	w.mu.Lock()
	w.procs = append(w.procs, p)
	before := w.active
	w.active++
	w.mu.Unlock()
	go func() {
		err := main(ctx, p)
		w.mu.Lock()
		p.exited, p.err = true, err
		w.active--
		w.cond.Broadcast()
		w.mu.Unlock()
	}()
	// Like Go: the new process runs until it first blocks before anything
	// else does, so that processes spawned together start in order.
	w.mu.Lock()
	for w.active > before {
		w.cond.Wait()
	}
	w.mu.Unlock()
	return p
}

// Process is a simulated process: a clock.Clock whose system calls go to
// the simulated kernel with the process's privileges, and a clock.Loop in
// virtual time.
type Process struct {
	w          *World
	Name       string
	capSysTime bool
	ctx        context.Context
	cancel     context.CancelFunc
	dead       bool // killed: never runs again
	exited     bool
	err        error
	inbox      []any
	waitB      *Blocker
	syscalls   int
}

var _ clock.Clock = (*Process)(nil)
var _ clock.Loop = (*Process)(nil)

// World is the world the process runs in.
func (p *Process) World() *World { return p.w }

// Now reads the simulated CLOCK_REALTIME.
func (p *Process) Now() time.Time {
	p.w.mu.Lock()
	defer p.w.mu.Unlock()
	return p.w.k.realtime()
}

// Raw reads the simulated CLOCK_MONOTONIC_RAW.
func (p *Process) Raw() time.Duration {
	p.w.mu.Lock()
	defer p.w.mu.Unlock()
	return seconds(p.w.k.raw)
}

// Mono reads the simulated CLOCK_MONOTONIC.
func (p *Process) Mono() time.Duration {
	p.w.mu.Lock()
	defer p.w.mu.Unlock()
	return seconds(p.w.k.mono)
}

// Adjtimex is the simulated clock_adjtime(CLOCK_REALTIME). Without
// CAP_SYS_TIME it fails with EPERM as the kernel does.
func (p *Process) Adjtimex(tx *clock.Timex) (clock.State, error) {
	p.w.mu.Lock()
	defer p.w.mu.Unlock()
	if p.dead {
		p.parkLocked()
	}
	p.syscalls++
	st, err := p.w.k.adjtimex(tx, p.capSysTime)
	if err != nil {
		return st, &clock.AdjtimexError{Modes: tx.Modes, Err: err}
	}
	return st, nil
}

// Syscalls counts the adjtimex calls the process made.
func (p *Process) Syscalls() int {
	p.w.mu.Lock()
	defer p.w.mu.Unlock()
	return p.syscalls
}

// Go runs f in a new goroutine of the process and returns once f has
// blocked or finished, so that what f does first happens at a fixed point
// of virtual time. f must not call Go itself.
func (p *Process) Go(f func()) {
	w := p.w
	w.mu.Lock()
	if p.dead {
		p.parkLocked()
	}
	w.active++
	w.mu.Unlock()
	go func() {
		f()
		w.mu.Lock()
		w.active--
		w.cond.Broadcast()
		w.mu.Unlock()
	}()
	w.mu.Lock()
	for w.active > 1 {
		w.cond.Wait()
	}
	w.mu.Unlock()
}

// Post queues ev for Wait and wakes it.
func (p *Process) Post(ev any) {
	p.w.mu.Lock()
	defer p.w.mu.Unlock()
	if p.dead {
		return
	}
	p.inbox = append(p.inbox, ev)
	p.w.wakeLocked(p.waitB, false)
}

// Wait returns the oldest posted event, or waits up to d of simulated
// CLOCK_MONOTONIC for one, like a Go timer on a real kernel (which
// slewing makes run fast or slow against true time). Only the context
// the process was given is cancelled in virtual time (by Terminate); the
// cancel of a context derived from it is seen at once but not at a
// reproducible virtual time.
func (p *Process) Wait(ctx context.Context, d time.Duration) (any, error) {
	w := p.w
	w.mu.Lock()
	deadline := w.k.mono + d.Seconds()
	w.mu.Unlock()
	if ctx.Done() != nil && ctx != p.ctx {
		stop := context.AfterFunc(ctx, func() { p.waitB.Wake() })
		defer stop()
	}
	for {
		w.mu.Lock()
		if p.dead {
			p.parkLocked()
		}
		if len(p.inbox) > 0 {
			ev := p.inbox[0]
			p.inbox[0] = nil
			p.inbox = p.inbox[1:]
			w.mu.Unlock()
			return ev, nil
		}
		if err := ctx.Err(); err != nil {
			w.mu.Unlock()
			return nil, err
		}
		if d <= 0 || w.k.mono >= deadline {
			w.mu.Unlock()
			return nil, nil
		}
		p.waitB.blockLocked(deadline)
	}
}

// Terminate delivers SIGTERM: the context given to the process is cancelled
// and its Wait returns, so it can shut down cleanly.
func (p *Process) Terminate() {
	p.cancel()
	p.waitB.Wake()
}

// Kill delivers SIGKILL: the process never runs again. Its goroutines stay
// parked, its pending timers and packets are dropped, and nothing it would
// have done on the way out happens. Kernel state is untouched.
func (p *Process) Kill() {
	p.w.mu.Lock()
	defer p.w.mu.Unlock()
	p.killLocked()
}

func (p *Process) killLocked() {
	p.dead = true
}

// Alive reports whether the process has neither exited nor been killed.
func (p *Process) Alive() bool {
	p.w.mu.Lock()
	defer p.w.mu.Unlock()
	return !p.dead && !p.exited
}

// Exited reports whether main returned, and what it returned.
func (p *Process) Exited() (bool, error) {
	p.w.mu.Lock()
	defer p.w.mu.Unlock()
	return p.exited, p.err
}

// parkLocked stops the calling goroutine of a killed process for good.
func (p *Process) parkLocked() {
	p.w.active--
	p.w.cond.Broadcast()
	p.w.mu.Unlock()
	select {}
}

// Blocker blocks one goroutine of a process until it is woken or a
// deadline on CLOCK_MONOTONIC passes. Simulated devices (sockets) are
// built on it. A Wake with nobody blocked is remembered for the next Block.
type Blocker struct {
	p        *Process
	ch       chan bool // true: woken by the deadline
	waiting  bool
	pending  bool
	timer    *timer
	timedOut bool
}

// NewBlocker returns a Blocker for goroutines of p.
func (p *Process) NewBlocker() *Blocker {
	return &Blocker{p: p, ch: make(chan bool, 1)}
}

// Block waits until Wake (true) or until CLOCK_MONOTONIC reaches
// monoDeadline (false). Pass a negative deadline to wait without one.
func (b *Blocker) Block(monoDeadline time.Duration) bool {
	w := b.p.w
	w.mu.Lock()
	if b.p.dead {
		b.p.parkLocked()
	}
	dl := math.Inf(1)
	if monoDeadline >= 0 {
		dl = monoDeadline.Seconds()
	}
	return b.blockLocked(dl)
}

// blockLocked is Block with w.mu held on entry; it returns with it released.
func (b *Blocker) blockLocked(monoDeadline float64) bool {
	w := b.p.w
	if b.pending {
		b.pending = false
		w.mu.Unlock()
		return true
	}
	if w.k.mono >= monoDeadline {
		w.mu.Unlock()
		return false
	}
	if !math.IsInf(monoDeadline, 1) {
		w.seq++
		b.timer = &timer{mono: monoDeadline, seq: w.seq, b: b}
		heap.Push(&w.timers, b.timer)
	}
	b.waiting = true
	w.active--
	w.cond.Broadcast()
	w.mu.Unlock()
	timedOut := <-b.ch
	return !timedOut
}

// Wake wakes the goroutine blocked in b, or makes its next Block return at once.
func (b *Blocker) Wake() {
	w := b.p.w
	w.mu.Lock()
	defer w.mu.Unlock()
	w.wakeLocked(b, false)
}

func (w *World) wakeLocked(b *Blocker, timedOut bool) {
	if b.p.dead {
		return
	}
	if !b.waiting {
		if !timedOut {
			b.pending = true
		}
		return
	}
	b.waiting = false
	b.timer = nil // a pending timer entry is ignored once detached
	w.active++
	b.ch <- timedOut
}

type event struct {
	at  float64
	seq uint64
	f   func()
}

type eventHeap []*event

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(*event)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}

type timer struct {
	mono float64
	seq  uint64
	b    *Blocker
}

type timerHeap []*timer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if h[i].mono != h[j].mono {
		return h[i].mono < h[j].mono
	}
	return h[i].seq < h[j].seq
}
func (h timerHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)   { *h = append(*h, x.(*timer)) }
func (h *timerHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}
