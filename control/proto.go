// Package control is slewd's control socket: a small versioned JSON
// protocol on a Unix stream socket that `slewd run` serves and `slewd
// sources`, `tracking` and `status` ask, and the views of the daemon's
// state (Source, Tracking) that the socket and the metrics share.
//
// The server reads the daemon only through discipline.Snapshot, from its
// own goroutines; a request that changes state (burst) is posted into the
// discipline's loop and run there by Handler, and only root may send one
// (the peer's credentials, SO_PEERCRED).
//
// Protocol: one request per connection, one JSON object on one line
// ({"version":1,"command":"sources"}), answered by one JSON object on one
// line (Response), then the connection is closed. A request in another
// version is refused with the version the daemon speaks.
package control

import (
	"time"

	"slewd/foreign"
)

// Version is the protocol version this package speaks.
const Version = 1

// DefaultSocket is where `slewd run` serves the socket by default: in its
// run directory, which systemd creates (RuntimeDirectory=slewd, 0755).
const DefaultSocket = "/run/slewd/slewd.sock"

// Commands.
const (
	CmdSources  = "sources"  // read: every source's state
	CmdTracking = "tracking" // read: the clock's and the discipline's state
	CmdBurst    = "burst"    // root: ask every source again now
)

// Request is what a client sends.
type Request struct {
	Version int    `json:"version"`
	Command string `json:"command"`
}

// Response is the daemon's answer: Error, or the command's result.
type Response struct {
	Version  int       `json:"version"`
	Command  string    `json:"command"`
	Error    string    `json:"error,omitempty"`
	Denied   bool      `json:"denied,omitempty"` // the command needs root
	Sources  []Source  `json:"sources,omitempty"`
	Tracking *Tracking `json:"tracking,omitempty"`
}

// Source states, as `slewd sources` shows them. chrony's sources column S
// has the same ideas: * and + (selected), - (candidate), x (falseticker),
// ? (unreachable or unusable).
const (
	StateSelected    = "selected"      // combined into the estimate
	StateCandidate   = "candidate"     // offered to selection, not combined (Reason says why)
	StateFalseticker = "falseticker"   // outside the interval the majority agrees on
	StateUnreachable = "unreachable"   // no answer in the last eight polls (reach 0)
	StateKissOfDeath = "kiss-of-death" // the last answer was a kiss-of-death (KissCode)
	StateUnusable    = "unusable"      // answers, but not usable (unsynchronized, too far, no sample yet)
)

// States lists every state, for the metrics' one-series-per-state gauge.
var States = []string{StateSelected, StateCandidate, StateFalseticker, StateUnreachable, StateKissOfDeath, StateUnusable}

// Source is one source as `slewd sources` shows it. Times are seconds;
// offsets have the NTP sign (positive: the local clock is behind).
// Pointers are null when there is no sample to say it.
type Source struct {
	Name      string `json:"name"`    // as configured, with port (a pool's member: the pool)
	Address   string `json:"address"` // address queried ("" until resolved)
	State     string `json:"state"`
	Reference bool   `json:"reference"`        // the selected source the stratum and poll come from (chrony's *)
	Reason    string `json:"reason,omitempty"` // why it is not selected
	KissCode  string `json:"kiss_code,omitempty"`
	Stratum   uint8  `json:"stratum"`
	RefID     string `json:"refid"`
	Leap      string `json:"leap"`
	// Reach is the reachability register: one bit per poll, newest lowest
	// (chrony and ntpq show it in octal: 377 is eight answers in eight).
	Reach      uint8   `json:"reach"`
	ReachOctal string  `json:"reach_octal"`
	PollS      float64 `json:"poll_s"`
	// LastSampleAgeS is how long ago the newest sample in the filter was
	// taken (chrony's LastRx).
	LastSampleAgeS  *float64 `json:"last_sample_age_s"`
	OffsetS         *float64 `json:"offset_s"` // filtered
	ErrorS          *float64 `json:"error_s"`  // root distance: the bound on the offset's error
	DelayS          *float64 `json:"delay_s"`
	DispersionS     *float64 `json:"dispersion_s"`
	JitterS         *float64 `json:"jitter_s"`
	RootDelayS      *float64 `json:"root_delay_s"`      // the server's
	RootDispersionS *float64 `json:"root_dispersion_s"` // the server's
	Samples         int      `json:"samples"`           // in the clock filter
	Polls           int      `json:"polls"`             // queries sent
	Replies         int      `json:"replies"`
	Kisses          int      `json:"kisses"` // kiss-of-death answers
}

// Tracking is the clock's and the discipline's state, as `slewd
// tracking` shows it (chronyc tracking's fields, and what slewd adds).
// Seconds, NTP sign; pointers are null before the first estimate.
type Tracking struct {
	Daemon Daemon `json:"daemon"`
	// Synchronized: the correction left plus the error bound is below
	// --sync-threshold; the kernel and systemd are told so.
	Synchronized bool       `json:"synchronized"`
	Reference    *Reference `json:"reference"` // null: no estimate
	Stratum      uint8      `json:"stratum"`   // one more than the reference's; 0 without one
	Leap         string     `json:"leap"`
	Sources      int        `json:"sources"` // agreeing, behind the estimate
	// OffsetS is what the sources said at the last update (chrony's Last
	// offset, with the NTP sign: positive, the clock was behind).
	OffsetS *float64 `json:"offset_s"`
	// EstimateErrorS bounds OffsetS: the root distance of the combination.
	EstimateErrorS *float64 `json:"estimate_error_s"`
	JitterS        *float64 `json:"jitter_s"`
	// CorrectionS is the offset now: the correction still to slew
	// (chrony's System time; positive, the clock is behind and runs fast).
	CorrectionS float64 `json:"correction_s"`
	Slewing     bool    `json:"slewing"`
	SlewRatePPM float64 `json:"slew_rate_ppm"` // 0 when not slewing
	// SlewEnd is when the slew is done at that rate (REALTIME); SlewLeftS
	// the time until then.
	SlewEnd   *time.Time `json:"slew_end"`
	SlewLeftS float64    `json:"slew_left_s"`
	// OutOfBounds: the last estimate was beyond --max-offset and is not
	// being slewed (`slewd boot` steps it once).
	OutOfBounds bool `json:"out_of_bounds"`
	// FrequencyPPM is the drift compensation: how fast the uncorrected
	// oscillator runs (positive: fast), with its 1σ uncertainty.
	FrequencyPPM      float64 `json:"frequency_ppm"`
	FrequencySigmaPPM float64 `json:"frequency_sigma_ppm"`
	// ErrorBoundS bounds |true time − the clock| at the last control step:
	// |correction| + the estimate's error + the servo's uncertainty. It is
	// the maxerror the kernel is given.
	ErrorBoundS *float64 `json:"error_bound_s"`
	// RootDelayS and RootDispersionS are the reference's, to the
	// primary server (ours to it plus its own), so that EstimateErrorS of
	// one source is RootDelayS/2 + RootDispersionS.
	RootDelayS      *float64   `json:"root_delay_s"`
	RootDispersionS *float64   `json:"root_dispersion_s"`
	PollS           *float64   `json:"poll_s"`      // the reference's poll interval
	LastUpdate      *time.Time `json:"last_update"` // REALTIME of the last estimate
	LastUpdateAgeS  *float64   `json:"last_update_age_s"`
	Kernel          Kernel     `json:"kernel"`
	Systemd         Systemd    `json:"systemd"`
	// Foreign counts changes of the clock made by others, when the
	// daemon watches for them.
	Foreign *foreign.Tally `json:"foreign,omitempty"`
}

// Daemon is who answers.
type Daemon struct {
	Version string `json:"version"`
	DryRun  bool   `json:"dry_run"` // measures and plans, never adjusts the clock
	Started bool   `json:"started"` // has taken the clock
	Stopped bool   `json:"stopped"` // has handed it back (shutting down)
}

// Reference is the source the stratum comes from.
type Reference struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	RefID   string `json:"refid"` // the reference's own reference
	Stratum uint8  `json:"stratum"`
}

// Kernel is what slewd told the kernel with adjtimex at its last control
// step (node_exporter's timex collector shows what the kernel holds now).
type Kernel struct {
	Told bool `json:"told"` // false in a dry run, or before the first estimate
	// Synchronized: STA_UNSYNC is clear (the kernel then writes the RTC
	// every 11 minutes).
	Synchronized bool     `json:"synchronized"`
	MaxErrorS    *float64 `json:"maxerror_s"` // grows 500 µs/s by itself after
	EstErrorS    *float64 `json:"esterror_s"`
}

// SystemdSyncedFile is what systemd-time-wait-sync watches: a
// slew-only client never "sets" the clock, so it must touch this.
const SystemdSyncedFile = "/run/systemd/timesync/synchronized"

// Systemd is what slewd told systemd.
type Systemd struct {
	// MarkedSynchronized is when /run/systemd/timesync/synchronized was
	// last touched (what systemd-time-wait-sync and time-sync.target wait
	// for); null: not since slewd started.
	MarkedSynchronized *time.Time `json:"marked_synchronized"`
}
