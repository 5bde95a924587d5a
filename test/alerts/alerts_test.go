// Package alerts checks the example alerting rules (dist/prometheus) and
// slewd's /metrics with promtool, from Debian's prometheus package
// unpacked by fetch-promtool.sh (never installed: installing it would
// start a Prometheus server on a normal machine).
//
// Without promtool the tests skip, unless SLEWD_REQUIRE_PROMTOOL is set
// (make test-alerts sets it); the exposition format itself is also
// checked by a parser in package metrics, which needs nothing.
package alerts

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"slewd/control"
	"slewd/discipline"
	"slewd/foreign"
	"slewd/metrics"
	"slewd/ntpclient"
)

// promtool is $SLEWD_PROMTOOL, the one fetch-promtool.sh unpacked, or
// one on PATH.
func promtool(t *testing.T) string {
	t.Helper()
	cache := os.Getenv("SLEWD_PROMTOOL_CACHE")
	if cache == "" {
		cache = ".cache"
	}
	for _, p := range []string{os.Getenv("SLEWD_PROMTOOL"), filepath.Join(cache, "prometheus", "usr", "bin", "promtool")} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				abs, err := filepath.Abs(p)
				if err != nil {
					t.Fatal(err)
				}
				return abs
			}
		}
	}
	if p, err := exec.LookPath("promtool"); err == nil {
		return p
	}
	if os.Getenv("SLEWD_REQUIRE_PROMTOOL") != "" {
		t.Fatal("no promtool: run test/alerts/fetch-promtool.sh (apt-get download prometheus + dpkg-deb -x), or set SLEWD_PROMTOOL")
	}
	t.Skip("no promtool (test/alerts/fetch-promtool.sh fetches it)")
	return ""
}

func run(t *testing.T, stdin []byte, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = filepath.Join("..", "..", "dist", "prometheus")
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestAlertRules(t *testing.T) {
	p := promtool(t)
	out := run(t, nil, p, "check", "rules", "slewd-alerts.yml")
	if !strings.Contains(out, "4 rules found") {
		t.Errorf("promtool check rules: %s", out)
	}
	run(t, nil, p, "test", "rules", "slewd-alerts.test.yml")
}

type fixedClock struct{}

func (fixedClock) Now() time.Time     { return time.Unix(1796168500, 0) }
func (fixedClock) Raw() time.Duration { return 100 * time.Second }

// promtool check metrics lints an exposition as Prometheus' own
// conventions have it (units, counter names, HELP).
func TestMetricsLint(t *testing.T) {
	p := promtool(t)
	snap := discipline.Snapshot{
		Started: true, Remaining: 3 * time.Second, Slewing: true, SlewRatePPM: 100500, FreqPPM: 7, FreqSigmaPPM: 0.1,
		KernelMaxError: 3 * time.Second, Sources: 1,
		Estimate: &ntpclient.Estimate{Raw: 99 * time.Second, Offset: 3 * time.Second, Error: time.Millisecond, Sources: 1, Stratum: 2},
		Reports: []ntpclient.SourceReport{
			{Source: "ntp1:123", Addr: "192.0.2.1:123", Stratum: 1, Reach: 0o377, Poll: 64 * time.Second, Samples: 8,
				Offset: 3 * time.Second, Delay: time.Millisecond, LastSample: 90 * time.Second, Selected: true, Candidate: true},
			{Source: "ntp2:123", Reason: "unreachable: no answer"},
		},
	}
	v := control.View{Snapshot: func() discipline.Snapshot { return snap }, Clock: fixedClock{}, Version: "test",
		Foreign: func(discipline.Snapshot) *foreign.Tally { return &foreign.Tally{Steps: 1} }}
	var b bytes.Buffer
	tr, srcs := v.Both()
	if err := metrics.Write(&b, v.Version, tr, srcs); err != nil {
		t.Fatal(err)
	}
	if out := run(t, b.Bytes(), p, "check", "metrics"); strings.TrimSpace(out) != "" {
		t.Errorf("promtool check metrics:\n%s", out)
	}
}
