package ntptest

import (
	"encoding/binary"
	"testing"
	"time"

	"slewd/ntpclient"
)

// A leaping server announces the leap during the last day and serves UTC
// after it: 23:59:59 twice for an insertion, never for a deletion.
func TestRespondLeap(t *testing.T) {
	midnight := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	req := make([]byte, HeaderLen)
	req[0] = 4<<3 | ModeClient
	for _, tc := range []struct {
		name   string
		cfg    ServerConfig
		at     time.Time // true time
		leap   ntpclient.Leap
		served time.Time
	}{
		{"no leap configured", ServerConfig{}, midnight.Add(time.Second), ntpclient.LeapNone, midnight.Add(time.Second)},
		{"insert: two days before", ServerConfig{LeapAt: midnight}, midnight.Add(-48 * time.Hour), ntpclient.LeapNone, midnight.Add(-48 * time.Hour)},
		{"insert: announced the day before", ServerConfig{LeapAt: midnight}, midnight.Add(-23 * time.Hour), ntpclient.LeapInsert, midnight.Add(-23 * time.Hour)},
		{"insert: announced a month before", ServerConfig{LeapAt: midnight, LeapAnnounce: 31 * 24 * time.Hour}, midnight.Add(-30 * 24 * time.Hour), ntpclient.LeapInsert, midnight.Add(-30 * 24 * time.Hour)},
		{"insert: just before", ServerConfig{LeapAt: midnight}, midnight.Add(-time.Millisecond), ntpclient.LeapInsert, midnight.Add(-time.Millisecond)},
		{"insert: 23:59:60 is 23:59:59 again", ServerConfig{LeapAt: midnight}, midnight.Add(500 * time.Millisecond), ntpclient.LeapNone, midnight.Add(-500 * time.Millisecond)},
		{"insert: after", ServerConfig{LeapAt: midnight}, midnight.Add(time.Hour), ntpclient.LeapNone, midnight.Add(time.Hour - time.Second)},
		{"insert with an offset", ServerConfig{LeapAt: midnight, Offset: time.Millisecond}, midnight.Add(time.Hour), ntpclient.LeapNone, midnight.Add(time.Hour - time.Second + time.Millisecond)},
		{"delete: announced", ServerConfig{LeapAt: midnight, LeapDelete: true}, midnight.Add(-1001 * time.Millisecond), ntpclient.LeapDelete, midnight.Add(-1001 * time.Millisecond)},
		{"delete: 23:59:59 never comes", ServerConfig{LeapAt: midnight, LeapDelete: true}, midnight.Add(-time.Second), ntpclient.LeapNone, midnight},
		{"delete: after", ServerConfig{LeapAt: midnight, LeapDelete: true}, midnight.Add(time.Hour), ntpclient.LeapNone, midnight.Add(time.Hour + time.Second)},
		{"a kiss overrides the announcement", ServerConfig{LeapAt: midnight, Kiss: "RATE"}, midnight.Add(-time.Hour), ntpclient.LeapNotInSync, time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, out := Respond(tc.cfg, req, tc.at, tc.at)
			if out != Answered {
				t.Fatalf("outcome %v", out)
			}
			if got := ntpclient.Leap(b[0] >> 6); got != tc.leap {
				t.Errorf("LI = %v, want %v", got, tc.leap)
			}
			if tc.served.IsZero() {
				return
			}
			if got, want := binary.BigEndian.Uint64(b[40:]), Timestamp(tc.served); got != want {
				t.Errorf("transmit = %x, want %x (%v)", got, want, tc.served)
			}
		})
	}
}
