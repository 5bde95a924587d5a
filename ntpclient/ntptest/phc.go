package ntptest

import (
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"slewd/clock"
	"slewd/clock/simclock"
)

// PHCConfig is a simulated PTP hardware clock.
type PHCConfig struct {
	// ClockName is what sysfs would say (clock_name): "ptp_kvm".
	ClockName string
	// Offset is the PHC's time minus true time (a NIC's PHC on TAI is
	// +37 s; a hypervisor's follows the host's clock, off by the host's
	// own error).
	Offset time.Duration
	// Noise is the standard deviation of each reading's error, drawn
	// normal and kept within ±Width/2 when Width is set (the reading's
	// bracket bounds it, as on real hardware).
	Noise time.Duration
	// Width is the bracket each reading reports (0: a cross-timestamp).
	Width time.Duration
}

// SimPHC is a PHC in a simulated world, read by a process: the PHC's time
// is true time plus Offset and noise, against the process's REALTIME and
// RAW at the same virtual instant. It implements clock.PHC.
type SimPHC struct {
	p    *simclock.Process
	name string

	mu    sync.Mutex
	cfg   PHCConfig
	rng   *rand.Rand
	reads int
	fail  error
}

// NewPHC is a PHC at device dev ("/dev/ptp0") that p reads; its noise is
// drawn from the world's stream "phc/"+dev.
func NewPHC(p *simclock.Process, dev string, cfg PHCConfig) *SimPHC {
	return &SimPHC{p: p, name: clock.PHCName(dev, cfg.ClockName), cfg: cfg, rng: p.World().Rand("phc/" + dev)}
}

// Name is "PHC0 (ptp_kvm)".
func (s *SimPHC) Name() string { return s.name }

// SetConfig changes the PHC from now on.
func (s *SimPHC) SetConfig(cfg PHCConfig) {
	s.mu.Lock()
	s.cfg = cfg
	s.mu.Unlock()
}

// Fail makes every read fail with err (nil: reads work again).
func (s *SimPHC) Fail(err error) {
	s.mu.Lock()
	s.fail = err
	s.mu.Unlock()
}

// Reads is how many readings were taken.
func (s *SimPHC) Reads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

// ErrPHC is what a failed simulated read wraps.
var ErrPHC = errors.New("simulated PHC read failure")

// Read takes one reading.
func (s *SimPHC) Read() (clock.PHCReading, error) {
	s.mu.Lock()
	cfg, fail := s.cfg, s.fail
	s.reads++
	noise := time.Duration(s.rng.NormFloat64() * float64(cfg.Noise))
	s.mu.Unlock()
	if fail != nil {
		return clock.PHCReading{}, errors.Join(ErrPHC, fail)
	}
	if cfg.Width > 0 {
		noise = max(-cfg.Width/2, min(cfg.Width/2, noise))
	}
	raw, real := s.p.Raw(), s.p.Now()
	truth := s.p.World().TrueTime()
	return clock.PHCReading{
		PHC:    truth.Add(cfg.Offset + noise),
		Real:   real,
		Raw:    raw,
		Width:  cfg.Width,
		Method: "simulated",
	}, nil
}
