// Package ntptest provides NTP servers for tests, as net/http/httptest
// provides HTTP servers: a pure reply builder (Respond), a UDP server on
// loopback (NewServer), and a simulated network in virtual time on a
// simclock.World (NewNetwork).
//
// Every server takes its time from a truth source, never from the clock
// under test, and can be told to misbehave: an offset (a falseticker is
// just a large one), a kiss-of-death, silence, an unsynchronized or
// malformed answer, symmetric-key authentication, a leap second.
package ntptest

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"slewd/ntpclient"
)

// ServerConfig describes how a test server answers.
type ServerConfig struct {
	// Offset is the served time minus true time. A falseticker is a
	// server with a large Offset.
	Offset time.Duration
	// Stratum is served as is; 0 means 2. Kiss and Unsynchronized
	// override it.
	Stratum uint8
	Leap    ntpclient.Leap
	// RefID is the reference id; 0 means 127.127.1.1 (chrony's "local").
	RefID          uint32
	RootDelay      time.Duration
	RootDispersion time.Duration
	// Precision is log2 seconds; 0 means -20 (about 1 µs).
	Precision int8
	// ReferenceAge is how long ago the server's clock was last set; 0
	// means 16 s.
	ReferenceAge time.Duration

	// LeapAt, if set, is the UTC midnight (true time) that ends a day
	// with a leap second. For LeapAnnounce before it (0: the last 24 h)
	// the server sets LI=1 (insert) or LI=2 (LeapDelete), as servers
	// announce it during the day; from the leap on it serves UTC: true
	// time − 1 s for an insertion (the simulated world's true time has no
	// leaps, so 23:59:59 comes twice), true time + 1 s for a deletion
	// from 23:59:59 on (which never comes). A server without LeapAt
	// neither announces nor leaps; Leap still sets LI as is.
	LeapAt       time.Time
	LeapDelete   bool
	LeapAnnounce time.Duration

	// Kiss, if set, makes every answer a kiss-of-death with this code
	// (RFC 5905 §7.4): LI=3, stratum 0, reference id = the code, and the
	// origin, receive and transmit timestamps all echo the request's
	// transmit timestamp (as ntpsec does), so a client that ignores the
	// kiss computes a garbage offset. "RATE", "DENY", "RSTR".
	Kiss string
	// KissPoll is the poll exponent put in a kiss (the interval the
	// server asks for); 0 means the request's poll plus 2.
	KissPoll int8
	// Unsynchronized answers like a server that never synchronized
	// (chrony without a reference): LI=3, stratum 0, reference id 0,
	// reference time 0, root delay and dispersion 1 s.
	Unsynchronized bool
	// Drop discards every request silently: how chrony and ntpd deny.
	Drop bool
	// WrongOrigin puts a wrong origin timestamp in the reply (a spoofed
	// or stale answer); ZeroTransmit sends a zero transmit timestamp.
	WrongOrigin  bool
	ZeroTransmit bool

	// Keys are the symmetric keys the server knows. A request with a MAC
	// is answered only if its key is known and the MAC verifies (chrony
	// drops it silently otherwise), and the answer carries a MAC with the
	// same key. RequireAuth drops unauthenticated requests too.
	Keys        []ntpclient.Key
	RequireAuth bool
	// BadReplyMAC signs answers with a MAC that does not verify (a
	// forged or corrupted reply).
	BadReplyMAC bool

	// The link to the server. In the simulated network these are the
	// network's properties; the UDP server emulates them by waiting.
	//
	// Delay is the fixed one-way delay, each way. Jitter is the mean of an
	// exponentially distributed extra delay, drawn independently for each
	// packet and direction. Asymmetry is a fixed extra delay on the way
	// back (it biases the measured offset by −Asymmetry/2). Loss is the
	// probability that a datagram, request or reply, is lost.
	Delay     time.Duration
	Jitter    time.Duration
	Asymmetry time.Duration
	Loss      float64

	// KernelRx makes the UDP server take a request's receive time from
	// the kernel's receive stamp (SO_TIMESTAMPNS, carried back from
	// REALTIME to the truth over the µs since), as chrony and ntpd do,
	// instead of after its own wake-up: the request's path then no longer
	// looks longer than the reply's by the server's wake-up latency. The
	// simulated network stamps exactly anyway.
	KernelRx bool
}

// Outcome is what the server did with a request.
type Outcome int

const (
	Answered    Outcome = iota
	DropInvalid         // not a well-formed client request
	DropVersion         // a version other than 3 or 4 (chrony ignores NTPv5)
	DropSilent          // ServerConfig.Drop
	DropAuth            // missing, unknown-key or wrong MAC
)

func (o Outcome) String() string {
	return [...]string{"answered", "dropped: invalid", "dropped: version", "dropped: silent", "dropped: authentication"}[o]
}

// Respond builds the reply to req from a server configured by cfg, with
// the true time at which the request arrived and the reply leaves. It is
// pure: a nil reply means the server stays silent, and the Outcome says
// why.
func Respond(cfg ServerConfig, req []byte, recvTrue, xmitTrue time.Time) ([]byte, Outcome) {
	q, err := ParseRequest(req)
	if err != nil || q.Mode != ModeClient {
		return nil, DropInvalid
	}
	if q.Version < 3 || q.Version > 4 {
		return nil, DropVersion
	}
	if cfg.Drop {
		return nil, DropSilent
	}
	var key *ntpclient.Key
	if q.HasMAC {
		for i := range cfg.Keys {
			if cfg.Keys[i].ID == q.KeyID {
				key = &cfg.Keys[i]
			}
		}
		if key == nil {
			return nil, DropAuth
		}
		want, err := MAC(*key, q.Version, q.Signed)
		if err != nil || !equal(want, q.Digest) {
			return nil, DropAuth
		}
	} else if cfg.RequireAuth {
		return nil, DropAuth
	}

	stratum, refID, leap := cfg.Stratum, cfg.RefID, cfg.Leap
	if stratum == 0 {
		stratum = 2
	}
	if refID == 0 {
		refID = 0x7F7F0101
	}
	precision := cfg.Precision
	if precision == 0 {
		precision = -20
	}
	age := cfg.ReferenceAge
	if age == 0 {
		age = 16 * time.Second
	}
	rootDelay, rootDisp := cfg.RootDelay, cfg.RootDispersion
	if l := cfg.leapIndicator(recvTrue); l != ntpclient.LeapNone {
		leap = l
	}
	recv := Timestamp(recvTrue.Add(cfg.Offset + cfg.LeapOffset(recvTrue)))
	xmit := Timestamp(xmitTrue.Add(cfg.Offset + cfg.LeapOffset(xmitTrue)))
	ref := Timestamp(xmitTrue.Add(cfg.Offset + cfg.LeapOffset(xmitTrue) - age))
	origin := q.Transmit
	poll := q.Poll

	switch {
	case cfg.Kiss != "":
		leap, stratum = ntpclient.LeapNotInSync, 0
		var code [4]byte
		copy(code[:], cfg.Kiss)
		refID = binary.BigEndian.Uint32(code[:])
		recv, xmit, ref = q.Transmit, q.Transmit, 0
		poll = cfg.KissPoll
		if poll == 0 {
			poll = q.Poll + 2
		}
	case cfg.Unsynchronized:
		leap, stratum, refID, ref = ntpclient.LeapNotInSync, 0, 0, 0
		rootDelay, rootDisp = time.Second, time.Second
	}
	if cfg.WrongOrigin {
		origin ^= 0x5a5a5a5a_00000001
	}
	if cfg.ZeroTransmit {
		xmit = 0
	}

	b := make([]byte, HeaderLen, HeaderLen+maxV4MAC)
	b[0] = byte(leap)<<6 | q.Version<<3 | ModeServer
	b[1] = stratum
	b[2] = byte(poll)
	b[3] = byte(precision)
	binary.BigEndian.PutUint32(b[4:], short(rootDelay))
	binary.BigEndian.PutUint32(b[8:], short(rootDisp))
	binary.BigEndian.PutUint32(b[12:], refID)
	binary.BigEndian.PutUint64(b[16:], ref)
	binary.BigEndian.PutUint64(b[24:], origin)
	binary.BigEndian.PutUint64(b[32:], recv)
	binary.BigEndian.PutUint64(b[40:], xmit)
	if key != nil {
		mac, _ := MAC(*key, q.Version, b) // the key verified the request, so it is valid
		if cfg.BadReplyMAC {
			mac[0] ^= 0xff
		}
		b = binary.BigEndian.AppendUint32(b, key.ID)
		b = append(b, mac...)
	}
	return b, Answered
}

// LeapOffset is what the server's leap second adds to true time at
// trueTime: 0 before it, −1 s after an insertion, +1 s after a deletion.
func (cfg ServerConfig) LeapOffset(trueTime time.Time) time.Duration {
	switch {
	case cfg.LeapAt.IsZero():
		return 0
	case cfg.LeapDelete && !trueTime.Before(cfg.LeapAt.Add(-time.Second)):
		return time.Second
	case !cfg.LeapDelete && !trueTime.Before(cfg.LeapAt):
		return -time.Second
	}
	return 0
}

// leapIndicator is the LI a leaping server sends at trueTime: the
// announcement during the LeapAnnounce before the leap, else none.
func (cfg ServerConfig) leapIndicator(trueTime time.Time) ntpclient.Leap {
	announce := cfg.LeapAnnounce
	if announce <= 0 {
		announce = 24 * time.Hour
	}
	end := cfg.LeapAt
	if cfg.LeapDelete {
		end = end.Add(-time.Second)
	}
	switch {
	case cfg.LeapAt.IsZero() || !trueTime.Before(end) || trueTime.Before(cfg.LeapAt.Add(-announce)):
		return ntpclient.LeapNone
	case cfg.LeapDelete:
		return ntpclient.LeapDelete
	}
	return ntpclient.LeapInsert
}

func equal(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	var d byte
	for i := range a {
		d |= a[i] ^ b[i]
	}
	return d == 0
}

// Counters count what a server saw.
type Counters struct {
	Received int64 // requests that reached the server
	Answered int64
	Dropped  int64 // requests the server chose not to answer (any Outcome but Answered)
	AuthFail int64 // of Dropped: authentication failures
	Lost     int64 // datagrams lost on the link, either way (simulated network only)
}

// state is what both kinds of server share: a configuration that tests
// may change while the server runs, and counters.
type state struct {
	mu  sync.Mutex
	cfg ServerConfig

	received, answered, dropped, authFail, lost atomic.Int64
}

// Config returns the server's configuration.
func (s *state) Config() ServerConfig {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// SetConfig changes how the server answers from now on.
func (s *state) SetConfig(cfg ServerConfig) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg = cfg
}

// Counters returns what the server has seen so far.
func (s *state) Counters() Counters {
	return Counters{
		Received: s.received.Load(),
		Answered: s.answered.Load(),
		Dropped:  s.dropped.Load(),
		AuthFail: s.authFail.Load(),
		Lost:     s.lost.Load(),
	}
}

// respond answers one request and counts it.
func (s *state) respond(req []byte, recvTrue, xmitTrue time.Time) []byte {
	s.received.Add(1)
	reply, out := Respond(s.Config(), req, recvTrue, xmitTrue)
	switch out {
	case Answered:
		s.answered.Add(1)
	case DropAuth:
		s.authFail.Add(1)
		s.dropped.Add(1)
	default:
		s.dropped.Add(1)
	}
	return reply
}
