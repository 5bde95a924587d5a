package ntpclient

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"slewd/clock"
)

// Defaults (see docs/ntpclient.md for why).
const (
	DefaultPoolSize      = 4
	DefaultMinPoll       = 64 * time.Second
	DefaultMaxPoll       = 1024 * time.Second
	DefaultBurst         = 6 // packets in a source's initial burst (the daemon)
	DefaultMeasureBurst  = 4 // samples per source for Measure
	DefaultBurstInterval = 2 * time.Second
	DefaultTimeout       = 2 * time.Second
	// DefaultPHCPoll is how often a PTP hardware clock is read: a read
	// costs microseconds and no server's goodwill, and the clock's error
	// since the last one grows with the poll.
	DefaultPHCPoll = time.Second
	// PollNowBurst is how many queries PollNow makes to each source,
	// BurstInterval apart: enough for the filter to see past one
	// queueing spike right after the clock was stepped.
	PollNowBurst = 3
	// MinPollFloor is the shortest poll interval outside the initial
	// burst: servers rate-limit faster clients (RFC 4330 §10 asks for at
	// least 15 s).
	MinPollFloor = 16 * time.Second
	// maxRatePoll caps how far kiss-of-death RATE lengthens a poll
	// (MAXPOLL 17, RFC 5905 §7.2: about 36 h).
	maxRatePoll = (1 << 17) * time.Second
	// jiggleLimit is RFC 5905's LIMIT for the poll-adjust counter (A.5.5.7).
	jiggleLimit = 30
	// A dead source's name is looked up again after these many queries
	// without an answer; DNS failures retry from dnsRetryMin doubling to
	// dnsRetryMax.
	deadAfter   = 8
	dnsRetryMin = 2 * time.Second
	dnsRetryMax = 10 * time.Minute
	dnsTimeout  = 10 * time.Second
	// idleWait is what Tick returns when nothing is scheduled.
	idleWait = time.Hour
)

// Config says which servers to use and how.
type Config struct {
	// Servers and Pools are specs as ParseSource accepts them. A pool
	// name resolves to several addresses, PoolSize of which are used.
	Servers  []string
	Pools    []string
	PoolSize int // 0: DefaultPoolSize

	// MinPoll and MaxPoll bound the adaptive poll interval (0: 64 s and
	// 1024 s); FixedPoll, if set, replaces it. None may be below 16 s.
	MinPoll, MaxPoll, FixedPoll time.Duration
	// Burst is the number of packets in each source's initial burst, sent
	// BurstInterval apart (0: DefaultBurst, or DefaultMeasureBurst for
	// Measure, which takes exactly Burst samples per source).
	Burst         int
	BurstInterval time.Duration
	// MinSources is the quorum: how many sources must agree for an
	// estimate. 0: 1 if a single server is configured, else a majority
	// of the configured sources (a pool counts PoolSize until it resolves,
	// then its members).
	MinSources int
	// Timeout is how long a query waits for its answer (0: 2 s).
	Timeout time.Duration
	// MaxDistance is the largest root distance a source may have to be
	// selected (0: 1.5 s).
	MaxDistance time.Duration
	// Auth, if set, authenticates every query with this symmetric key
	// (but an NTS source's, which NTS authenticates).
	Auth *Key
	// NTSRoots are the CAs an NTS-KE server's certificate must chain to
	// (nil: the system's roots).
	NTSRoots *x509.CertPool

	// PHCs are PTP hardware clocks (/dev/ptpN) used as reference sources
	// beside or instead of servers: a hypervisor's (ptp_kvm, ptp_hyperv)
	// is the host's clock. Each is read every PHCPoll (0:
	// DefaultPHCPoll), which MinPoll's floor does not bound.
	PHCs    []string
	PHCPoll time.Duration
}

// Env is what the client runs on: real time and UDP, or a simulation.
type Env struct {
	Clock    clock.Clock
	Loop     clock.Loop
	Dialer   Dialer   // nil: UDP
	Resolver Resolver // nil: net.DefaultResolver
	Logger   *slog.Logger
	Rand     *rand.Rand // nil: seeded from crypto/rand
	// OpenPHC opens a PHC named in Config.PHCs (nil: clock.OpenPHC).
	OpenPHC func(path string) (clock.PHC, error)
	// SimulatedTime makes queries timestamp with Clock.Now (beevik's
	// GetSystemTime) instead of the kernel's receive timestamps.
	SimulatedTime bool
}

// withDefaults fills in cfg's zero fields and checks it.
func (cfg Config) withDefaults(oneShot bool) (Config, error) {
	if cfg.PoolSize == 0 {
		cfg.PoolSize = DefaultPoolSize
	}
	if cfg.PoolSize < 1 {
		return cfg, fmt.Errorf("pool size %d: use at least 1", cfg.PoolSize)
	}
	cfg.MinPoll = orDefault(cfg.MinPoll, DefaultMinPoll)
	cfg.MaxPoll = orDefault(cfg.MaxPoll, DefaultMaxPoll)
	cfg.BurstInterval = orDefault(cfg.BurstInterval, DefaultBurstInterval)
	cfg.Timeout = orDefault(cfg.Timeout, DefaultTimeout)
	cfg.MaxDistance = orDefault(cfg.MaxDistance, DefaultMaxDistance)
	cfg.PHCPoll = orDefault(cfg.PHCPoll, DefaultPHCPoll)
	if cfg.PHCPoll < time.Millisecond || cfg.PHCPoll > DefaultMaxPoll {
		return cfg, fmt.Errorf("PHC poll %v: give 1ms to %v", cfg.PHCPoll, DefaultMaxPoll)
	}
	if cfg.Burst == 0 {
		cfg.Burst = DefaultBurst
		if oneShot {
			cfg.Burst = DefaultMeasureBurst
		}
	}
	for _, p := range []struct {
		name string
		v    time.Duration
	}{{"min poll", cfg.MinPoll}, {"max poll", cfg.MaxPoll}, {"fixed poll", cfg.FixedPoll}} {
		if p.v != 0 && p.v < MinPollFloor {
			return cfg, fmt.Errorf("%s %v is below %v: servers rate-limit clients that poll faster; use at least %v", p.name, p.v, MinPollFloor, MinPollFloor)
		}
	}
	switch {
	case cfg.MaxPoll < cfg.MinPoll:
		return cfg, fmt.Errorf("max poll %v is below min poll %v", cfg.MaxPoll, cfg.MinPoll)
	case cfg.Burst < 1:
		return cfg, fmt.Errorf("burst %d: use at least 1 packet", cfg.Burst)
	case cfg.BurstInterval < 0 || cfg.Timeout < 0:
		return cfg, errors.New("burst interval and timeout must be positive")
	}
	if cfg.Auth != nil {
		if _, ok := KeyTypes[cfg.Auth.Type]; !ok {
			return cfg, fmt.Errorf("key %d: unknown type %q", cfg.Auth.ID, cfg.Auth.Type)
		}
	}
	if len(cfg.Servers)+len(cfg.Pools)+len(cfg.PHCs) == 0 {
		return cfg, errors.New("no NTP servers configured: give at least one server (HOST, HOST:PORT, [IPv6]:PORT), pool or PHC")
	}
	configured := len(cfg.Servers) + len(cfg.Pools)*cfg.PoolSize + len(cfg.PHCs)
	switch {
	case cfg.MinSources < 0:
		return cfg, fmt.Errorf("min sources %d: use 0 (automatic) or more", cfg.MinSources)
	case cfg.MinSources > configured:
		return cfg, fmt.Errorf("min sources %d exceeds the %d configured sources: lower it or add servers", cfg.MinSources, configured)
	}
	return cfg, nil
}

// specs parses the configured servers and pools, refusing duplicates.
func (cfg Config) specs() (servers, pools []Spec, err error) {
	seen := map[string]bool{}
	for _, text := range cfg.Servers {
		sp, err := ParseSource(text)
		if err != nil {
			return nil, nil, fmt.Errorf("server %w", err)
		}
		if seen[sp.String()] {
			return nil, nil, fmt.Errorf("server %s is configured twice", sp)
		}
		seen[sp.String()] = true
		servers = append(servers, sp)
	}
	for _, text := range cfg.Pools {
		sp, err := ParseSource(text)
		if err != nil {
			return nil, nil, fmt.Errorf("pool %w", err)
		}
		if sp.NTS {
			return nil, nil, fmt.Errorf("pool %s: NTS pools are not supported: give each NTS server as a server (nts://HOST)", sp)
		}
		if seen[sp.String()] {
			return nil, nil, fmt.Errorf("pool %s is configured twice", sp)
		}
		seen[sp.String()] = true
		pools = append(pools, sp)
	}
	for _, p := range cfg.PHCs {
		if p == "" || seen["phc "+p] {
			return nil, nil, fmt.Errorf("PHC %q is empty or configured twice", p)
		}
		seen["phc "+p] = true
	}
	return servers, pools, nil
}

func orDefault(v, d time.Duration) time.Duration {
	if v == 0 {
		return d
	}
	return v
}
