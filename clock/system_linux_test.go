//go:build linux

package clock

import (
	"math"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestSystemReads(t *testing.T) {
	var c Clock = System{}
	raw0, mono0, now0 := c.Raw(), c.Mono(), c.Now()
	time.Sleep(2 * time.Millisecond)
	raw1, mono1, now1 := c.Raw(), c.Mono(), c.Now()
	if raw1-raw0 < time.Millisecond || mono1-mono0 < time.Millisecond {
		t.Errorf("RAW advanced %v and MONOTONIC %v over a 2 ms sleep", raw1-raw0, mono1-mono0)
	}
	if now0.String() != now0.Round(0).String() {
		t.Error("System.Now carries Go's monotonic reading; differences would not be REALTIME differences")
	}
	if d := now1.Sub(now0); d < time.Millisecond || d > time.Minute {
		t.Errorf("REALTIME advanced %v over a 2 ms sleep", d)
	}

	// Read-only adjtimex (modes 0): allowed unprivileged, changes nothing.
	var tx Timex
	state, err := c.Adjtimex(&tx)
	if err != nil {
		t.Fatalf("read-only adjtimex: %v", err)
	}
	if tx.Tick < MinTick || tx.Tick > MaxTick || math.Abs(FreqToPPM(tx.Freq)) > MaxFreqPPM {
		t.Errorf("kernel state out of range: tick %d, freq %d", tx.Tick, tx.Freq)
	}
	// The kernel answers TIME_ERROR whenever STA_UNSYNC or STA_CLOCKERR is set.
	if tx.Status&(StaUnsync|StaClockErr) != 0 && state != TimeError {
		t.Errorf("state %v with status %v, want TIME_ERROR", state, StatusNames(tx.Status))
	}
	if sec := tx.Time.Sec; sec < now0.Unix()-1 || sec > time.Now().Unix()+1 {
		t.Errorf("adjtimex time %d s is not now (%d)", sec, now0.Unix())
	}
}

func TestTimexRoundTrip(t *testing.T) {
	in := Timex{
		Modes: AdjOffset | AdjStatus, Offset: -123456, Freq: PPMToFreq(-17.5),
		MaxError: 16000000, EstError: 42, Status: StaPLL | StaNano, Constant: 3,
		Time: Timeval{Sec: 1700000000, Usec: 999999999}, Tick: 10001, TAI: 37,
	}
	var out Timex
	out.Modes = in.Modes
	var u unix.Timex
	toUnix(&in, &u)
	fromUnix(&u, &out)
	if out != in {
		t.Errorf("round trip through unix.Timex:\n got %+v\nwant %+v", out, in)
	}
}
