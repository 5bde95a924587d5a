package discipline

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"slewd/adjtime"
	"slewd/clock/simclock"
	"slewd/ntpclient"
)

func rep(src, reason string, selected bool) ntpclient.SourceReport {
	return ntpclient.SourceReport{Source: src, Reason: reason, Selected: selected, Reach: 1, Samples: 1}
}

// A source is reported when it starts failing (whatever the unusable
// packets were: silence, short, spoofed, LI=3, KoD) and when it recovers,
// at most every MinInterval; pending sources and healthy ones are silence.
func TestSourceHealthTransitions(t *testing.T) {
	const m = time.Minute
	type step struct {
		at      time.Duration
		reports []ntpclient.SourceReport
		want    []SourceTransition
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"healthy from the start: nothing", []step{
			{0, []ntpclient.SourceReport{rep("a", "no reply yet", false)}, nil},
			{m, []ntpclient.SourceReport{rep("a", "", true)}, nil},
			{2 * m, []ntpclient.SourceReport{rep("a", "falseticker", false)}, nil},
		}},
		{"never answers: once, then recovery", []step{
			{0, []ntpclient.SourceReport{rep("a", "not resolved yet", false)}, nil},
			{m, []ntpclient.SourceReport{rep("a", "unreachable: no reply within 2s", false)},
				[]SourceTransition{{Source: "a", Failing: true, Reason: "unreachable: no reply within 2s"}}},
			{2 * m, []ntpclient.SourceReport{rep("a", "unreachable: no reply within 2s", false)}, nil},
			{30 * m, []ntpclient.SourceReport{rep("a", "", true)}, []SourceTransition{{Source: "a"}}},
		}},
		{"each kind of unusable reply", []step{
			{0, []ntpclient.SourceReport{
				rep("short", "no usable reply: malformed reply: short packet", false),
				rep("spoof", "no usable reply: reply does not match the request (wrong origin timestamp): stale or spoofed", false),
				rep("li3", "unsynchronized (LI=3)", false),
				rep("s16", "unsynchronized (stratum 16)", false),
				rep("kod", "kiss-of-death DENY: the server refuses to serve us; queries to it stopped", false),
				rep("dns", "DNS lookup of x failed: no such host (retrying in 4s)", false),
			}, []SourceTransition{
				{Source: "short", Failing: true, Reason: "no usable reply: malformed reply: short packet"},
				{Source: "spoof", Failing: true, Reason: "no usable reply: reply does not match the request (wrong origin timestamp): stale or spoofed"},
				{Source: "li3", Failing: true, Reason: "unsynchronized (LI=3)"},
				{Source: "s16", Failing: true, Reason: "unsynchronized (stratum 16)"},
				{Source: "kod", Failing: true, Reason: "kiss-of-death DENY: the server refuses to serve us; queries to it stopped"},
				{Source: "dns", Failing: true, Reason: "DNS lookup of x failed: no such host (retrying in 4s)"},
			}},
		}},
		{"flapping is rate-limited", []step{
			{0, []ntpclient.SourceReport{rep("a", "", true)}, nil},
			{m, []ntpclient.SourceReport{rep("a", "unreachable: x", false)}, []SourceTransition{{Source: "a", Failing: true, Reason: "unreachable: x"}}},
			{2 * m, []ntpclient.SourceReport{rep("a", "", true)}, nil},
			{3 * m, []ntpclient.SourceReport{rep("a", "unreachable: y", false)}, nil},
			{4 * m, []ntpclient.SourceReport{rep("a", "", true)}, nil},
			// 15 min after the last report: the current state, with the
			// changes held back in between.
			{16 * m, []ntpclient.SourceReport{rep("a", "", true)}, []SourceTransition{{Source: "a", Flaps: 2}}},
			{17 * m, []ntpclient.SourceReport{rep("a", "", true)}, nil},
		}},
		{"back to the reported state: nothing", []step{
			{0, []ntpclient.SourceReport{rep("a", "unreachable: x", false)}, []SourceTransition{{Source: "a", Failing: true, Reason: "unreachable: x"}}},
			{m, []ntpclient.SourceReport{rep("a", "", true)}, nil},
			{2 * m, []ntpclient.SourceReport{rep("a", "unreachable: x", false)}, nil},
			{20 * m, []ntpclient.SourceReport{rep("a", "unreachable: x", false)}, nil},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h SourceHealth
			for _, st := range tc.steps {
				got := h.Update(st.at, st.reports)
				if len(got) != len(st.want) {
					t.Fatalf("at %v: %+v, want %+v", st.at, got, st.want)
				}
				for i := range got {
					if got[i] != st.want[i] {
						t.Errorf("at %v: %+v, want %+v", st.at, got[i], st.want[i])
					}
				}
			}
		})
	}
}

// silentClient never gives an estimate; its one source never answers.
type silentClient struct{ reason string }

func (silentClient) Start()                                 {}
func (silentClient) Handle(any) (*ntpclient.Estimate, bool) { return nil, false }
func (silentClient) Tick() time.Duration                    { return time.Hour }
func (c silentClient) Reports() []ntpclient.SourceReport {
	return []ntpclient.SourceReport{{Source: "192.0.2.1:123", Reason: c.reason}}
}
func (silentClient) SetPollLimit(time.Duration) {}
func (silentClient) PollNow()                   {}

// The daemon says at WARN, without any estimate, that its source does not
// answer, and why.
func TestDaemonWarnsOfAFailingSource(t *testing.T) {
	w := simclock.New(simclock.Config{})
	var logs bytes.Buffer
	w.Spawn("slewd", true, func(ctx context.Context, p *simclock.Process) error {
		d := New(Config{}, Env{Clock: p, Loop: p, Client: silentClient{"unreachable: no reply within 2s"}, State: &adjtime.MemStore{},
			Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
		return d.Run(ctx)
	})
	w.Run(2 * time.Minute)
	if n := strings.Count(logs.String(), `level=WARN msg="NTP source not usable" source=192.0.2.1:123 why="unreachable: no reply within 2s"`); n != 1 {
		t.Errorf("%d WARN lines for the source, want 1:\n%s", n, logs.String())
	}
}
