package ntpclient

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/beevik/ntp"

	"slewd/clock"
)

// replyKind classifies the outcome of one query.
type replyKind int

const (
	replySample  replyKind = iota // a usable sample
	replyKiss                     // kiss-of-death with a code
	replyUnsync                   // the server says it is not synchronized
	replyTimeout                  // no answer
	replyBad                      // an answer we must not use (malformed, spoofed, failed MAC)
	replyNTSNak                   // NTS: the session is no use (NAK, cookies used up): new key exchange
)

// reply is the outcome of one query.
type reply struct {
	kind   replyKind
	sample Sample        // the sample, or the header fields of an unusable reply
	kiss   string        // kiss code
	poll   time.Duration // the poll interval the server put in its reply
	detail string        // why the reply is unusable
}

// queryParams is what a query helper needs; it is copied so the helper
// shares nothing with the client's loop.
type queryParams struct {
	source, addr string
	timeout      time.Duration
	auth         *Key
	dialer       Dialer
	clock        clock.Clock
	simulated    bool
	rx           *rxStamps   // nil: beevik's defaults
	nts          *ntsSession // an NTS source's session; auth is then nil
	ntsSource    bool        // the source is NTS: never query without nts
}

// query makes one NTP exchange through beevik/ntp and classifies it. On a
// real clock beevik takes t4 from the kernel's receive timestamp (rx.go); the
// exchange is bracketed with clock.Read so that the sample can be placed
// in the RAW frame, whatever slewing does meanwhile.
func query(p queryParams) reply {
	opt := ntp.QueryOptions{Timeout: p.timeout, Dialer: p.dialer}
	var x *exchange
	switch {
	case p.simulated:
		opt.GetSystemTime = p.clock.Now
	case p.rx != nil && p.rx.disabled:
		opt.GetSystemTime = p.clock.Now // the reply is stamped when read
	case p.rx != nil && p.dialer == nil:
		x = p.rx.exchange()
		defer x.Close()
		opt.Dialer = x.dial
	}
	if p.auth != nil && !p.ntsSource {
		opt.Auth = authOptions(*p.auth)
	}
	if p.ntsSource && p.nts == nil {
		return reply{kind: replyNTSNak, detail: "NTS: no session"} // never unauthenticated
	}
	before := clock.Read(p.clock, 3)
	resp, err := safeQuery(p.addr, opt, p.nts)
	after := clock.Read(p.clock, 3)
	if err == nil && x != nil {
		x.apply(resp) // t1 from the kernel
	}
	return classify(p, resp, err, before, after)
}

// errLibraryPanic is a reply that made beevik/ntp panic.
var errLibraryPanic = errors.New("malformed reply")

// safeQuery is ntp.QueryWithOptions, turning a panic into an error:
// beevik/ntp v1.6.0 panics with a negative shift on a reply whose poll or
// precision field is -128 (found by FuzzReply), and a remote server must
// not be able to crash the daemon.
//
// With an NTS session the query goes through it (beevik/nts panics on a
// reply shorter than an NTP header, too) to the NTP server its key
// exchange named.
func safeQuery(addr string, opt ntp.QueryOptions, n *ntsSession) (resp *ntp.Response, err error) {
	defer func() {
		if v := recover(); v != nil {
			resp, err = nil, fmt.Errorf("%w: it crashed the NTP library (%v)", errLibraryPanic, v)
		}
	}()
	if n != nil {
		return n.query(opt)
	}
	return ntp.QueryWithOptions(addr, opt)
}

func authOptions(k Key) ntp.AuthOptions {
	t := map[string]ntp.AuthType{"MD5": ntp.AuthMD5, "SHA1": ntp.AuthSHA1, "SHA256": ntp.AuthSHA256,
		"SHA512": ntp.AuthSHA512, "AES128": ntp.AuthAES128, "AES256": ntp.AuthAES256}[k.Type]
	return ntp.AuthOptions{Type: t, KeyID: k.ID, Key: "HEX:" + hex.EncodeToString(k.Secret)}
}

// classify turns beevik's answer into a reply. A reply is a sample only if
// it passes Validate and is not a kiss: beevik returns no error, and a
// garbage offset, for a kiss-of-death.
func classify(p queryParams, resp *ntp.Response, err error, before, after clock.Reading) reply {
	if err != nil {
		if r, ok := ntsReply(err); ok {
			return r
		}
		var ne net.Error
		switch {
		case resp != nil && (errors.Is(err, ntp.ErrAuthFailed) || errors.Is(err, ntp.ErrAuthNAK)):
			// Checked before any kiss: an unauthenticated kiss could be spoofed.
			return reply{kind: replyBad, detail: fmt.Sprintf("authentication failed: the reply's MAC does not verify with %s (%v)", p.auth, err)}
		case errors.As(err, &ne) && ne.Timeout():
			d := fmt.Sprintf("no reply within %v", p.timeout)
			if p.auth != nil {
				d += fmt.Sprintf(" (authenticating with %s: servers drop requests with an unknown key id or a wrong key silently)", p.auth)
			}
			return reply{kind: replyTimeout, detail: d}
		case errors.Is(err, syscall.ECONNREFUSED):
			return reply{kind: replyTimeout, detail: "connection refused: nothing listens on that port"}
		case errors.Is(err, ntp.ErrServerResponseMismatch):
			return reply{kind: replyBad, detail: "reply does not match the request (wrong origin timestamp): stale or spoofed"}
		case errors.Is(err, ntp.ErrInvalidTransmitTime):
			return reply{kind: replyBad, detail: "malformed reply: zero transmit timestamp"}
		case errors.Is(err, errLibraryPanic):
			return reply{kind: replyBad, detail: err.Error()}
		case errors.Is(err, ntp.ErrServerTickedBackwards), errors.Is(err, ntp.ErrInvalidMode), errors.Is(err, ntp.ErrInvalidTime):
			return reply{kind: replyBad, detail: "malformed reply: " + err.Error()}
		}
		return reply{kind: replyTimeout, detail: err.Error()}
	}
	s := Sample{
		Source:         p.source,
		Addr:           p.addr,
		Offset:         resp.ClockOffset,
		Delay:          resp.RTT,
		Stratum:        resp.Stratum,
		Leap:           Leap(resp.Leap),
		RefID:          resp.ReferenceID,
		RootDelay:      resp.RootDelay,
		RootDispersion: resp.RootDispersion,
		Precision:      resp.Precision,
	}
	r := reply{sample: s, poll: resp.Poll}
	if resp.Version != 3 && resp.Version != 4 {
		// beevik checks leap and stratum only for the version it believes
		// it got; we asked in version 4.
		r.kind, r.detail = replyBad, fmt.Sprintf("malformed reply: version %d to a version 4 request", resp.Version)
		return r
	}
	if resp.IsKissOfDeath() {
		if resp.KissCode == "" {
			r.kind, r.detail = replyUnsync, fmt.Sprintf("unsynchronized (stratum 0, LI=%d)", resp.Leap)
			return r
		}
		r.kind, r.kiss, r.detail = replyKiss, resp.KissCode, "kiss-of-death "+resp.KissCode
		return r
	}
	if err := resp.Validate(); err != nil {
		switch {
		case errors.Is(err, ntp.ErrInvalidStratum):
			r.kind, r.detail = replyUnsync, fmt.Sprintf("unsynchronized (stratum %d)", resp.Stratum)
		case errors.Is(err, ntp.ErrInvalidLeapSecond):
			r.kind, r.detail = replyUnsync, "unsynchronized (LI=3)"
		default:
			r.kind, r.detail = replyBad, "unusable reply: "+err.Error()
		}
		return r
	}
	if steppedDuring(before, after) || !stampsWithin(resp.Timestamps.ClientXmit, resp.Timestamps.ClientRecv, before, after) {
		// Another program (or slewd) stepped the clock between the
		// readings, or stepped it and back while the request was out:
		// t1 and t4 are on different scales.
		r.kind, r.detail = replyBad, "the clock was stepped during the exchange: sample discarded"
		return r
	}
	// Place the sample in the RAW frame: the midpoint of t1 and t4 in
	// REALTIME, and REALTIME − RAW interpolated there between the two
	// bracketing readings (slewing changes it at up to 10 %).
	t1, t4 := resp.Timestamps.ClientXmit, resp.Timestamps.ClientRecv
	mid := t1.Add(t4.Sub(t1) / 2)
	r.sample.RealMinusRaw = interpolate(before, after, mid)
	r.sample.Raw = time.Duration(mid.UnixNano()) - r.sample.RealMinusRaw
	// The round trip on RAW: while slewing, REALTIME runs up to 10 % fast
	// or slow, which would shrink or stretch the delay measured on it, and
	// with it the minimum delay the filters measure every sample against.
	if span := after.Real.Sub(before.Real); span > 0 {
		k := float64(after.RealMinusRaw()-before.RealMinusRaw()) / float64(span)
		local := float64(t4.Sub(t1)) * (1 - k)
		server := resp.Timestamps.ServerXmit.Sub(resp.Timestamps.ServerRecv)
		r.sample.Delay = max(time.Duration(local)-server, 0)
	}
	if validSample(r.sample) != nil {
		r.kind, r.detail = replyBad, fmt.Sprintf("unusable reply: offset %v or delay %v out of range", resp.ClockOffset, resp.RTT)
		return r
	}
	r.kind = replySample
	return r
}

// interpolate is REALTIME − RAW at REALTIME t, linearly between two readings.
func interpolate(a, b clock.Reading, t time.Time) time.Duration {
	ra, rb := a.RealMinusRaw(), b.RealMinusRaw()
	span := b.Real.Sub(a.Real)
	if span <= 0 {
		return ra + (rb-ra)/2
	}
	f := float64(t.Sub(a.Real)) / float64(span)
	f = max(0, min(1, f))
	return ra + time.Duration(f*float64(rb-ra))
}

// steppedDuring says whether REALTIME − RAW changed between two readings
// by more than slewing can change it (the kernel's ±10.05 %, the PLL and
// singleshot chunks on top: 11 %), plus the readings' own widths: then
// the clock was stepped in between.
func steppedDuring(a, b clock.Reading) bool {
	span := b.Raw - a.Raw
	if span < 0 {
		return true
	}
	slack := time.Duration(0.11*float64(span)) + a.Width + b.Width + time.Microsecond
	return (b.RealMinusRaw() - a.RealMinusRaw()).Abs() > slack
}

// stampsWithin says whether the exchange's local stamps lie in order
// between the readings taken around it. A step and its undo both inside
// the exchange leave the readings agreeing, but put t1 or t4 outside
// them (or t4 before t1).
func stampsWithin(t1, t4 time.Time, a, b clock.Reading) bool {
	slack := a.Width + b.Width + time.Microsecond
	return !t4.Before(t1) && !t1.Before(a.Real.Add(-slack)) && !t4.After(b.Real.Add(slack))
}
