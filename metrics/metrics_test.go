package metrics

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"slewd/control"
	"slewd/discipline"
	"slewd/foreign"
	"slewd/ntpclient"
)

type fixedClock struct {
	now time.Time
	raw time.Duration
}

func (c fixedClock) Now() time.Time     { return c.now }
func (c fixedClock) Raw() time.Duration { return c.raw }

func testView(s discipline.Snapshot, tally *foreign.Tally) control.View {
	return control.View{
		Snapshot: func() discipline.Snapshot { return s },
		Clock:    fixedClock{time.Unix(1796168500, 0), 100 * time.Second},
		Version:  "v1.2.3",
		Foreign:  func(discipline.Snapshot) *foreign.Tally { return tally },
	}
}

func testSnapshot() discipline.Snapshot {
	return discipline.Snapshot{
		Started: true, Remaining: -40 * time.Millisecond, Slewing: true, SlewRatePPM: 100500, Synced: false,
		FreqPPM: -3.5, FreqSigmaPPM: 0.5, Sources: 1, KernelMaxError: 41 * time.Millisecond,
		Estimate: &ntpclient.Estimate{Raw: 99 * time.Second, Offset: -42 * time.Millisecond, Error: time.Millisecond, Sources: 1, Stratum: 3},
		Reports: []ntpclient.SourceReport{
			{Source: "ntp1:123", Addr: "192.0.2.1:123", Stratum: 2, Reach: 0o17, Poll: 64 * time.Second, Samples: 4,
				Offset: -42 * time.Millisecond, Delay: 3 * time.Millisecond, RootDistance: time.Millisecond,
				LastSample: 90 * time.Second, Selected: true, Candidate: true, Queries: 5, Replies: 4},
			// A name that needs escaping, unreachable, with a kiss.
			{Source: `we"ird\name` + "\n", Reach: 0, Poll: 128 * time.Second, Queries: 9, Kisses: 2, Reason: "unreachable"},
		},
	}
}

// series is one parsed sample: its name and labels, as written.
type exposition struct {
	types   map[string]string
	samples map[string]float64 // `name{l="v",...}` → value
}

var (
	nameRe   = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	sampleRe = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$`)
	labelRe  = regexp.MustCompile(`^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)`)
)

// parse checks text against the exposition format (0.0.4) and
// Prometheus' naming rules, and returns its samples.
func parse(t *testing.T, text string) exposition {
	t.Helper()
	e := exposition{types: map[string]string{}, samples: map[string]float64{}}
	if !strings.HasSuffix(text, "\n") {
		t.Fatal("the exposition does not end in a newline")
	}
	helped := map[string]bool{}
	done := map[string]bool{} // families whose samples have ended
	current := ""
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		bad := func(f string, a ...any) { t.Fatalf("line %d %q: %s", i+1, line, fmt.Sprintf(f, a...)) }
		if rest, ok := strings.CutPrefix(line, "# HELP "); ok {
			name, help, _ := strings.Cut(rest, " ")
			if !nameRe.MatchString(name) || helped[name] || help == "" {
				bad("bad or repeated HELP")
			}
			helped[name] = true
			continue
		}
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, _ := strings.Cut(rest, " ")
			if _, dup := e.types[name]; dup || !helped[name] {
				bad("TYPE repeated or without HELP")
			}
			switch typ {
			case "counter":
				if !strings.HasSuffix(name, "_total") {
					bad("a counter not named _total")
				}
			case "gauge":
				if strings.HasSuffix(name, "_total") {
					bad("a gauge named _total")
				}
			default:
				bad("type %q", typ)
			}
			if current != "" {
				done[current] = true
			}
			e.types[name], current = typ, name
			continue
		}
		m := sampleRe.FindStringSubmatch(line)
		if m == nil {
			bad("not a sample")
		}
		if m[1] != current || done[m[1]] {
			bad("a sample outside its family's block (family %q)", current)
		}
		for rest := m[3]; rest != ""; {
			lm := labelRe.FindStringSubmatch(rest)
			if lm == nil {
				bad("bad labels at %q", rest)
			}
			rest = rest[len(lm[0]):]
		}
		v, err := strconv.ParseFloat(m[4], 64)
		if err != nil {
			bad("value: %v", err)
		}
		key := m[1] + m[2]
		if _, dup := e.samples[key]; dup {
			bad("a repeated series")
		}
		e.samples[key] = v
	}
	return e
}

func write(t *testing.T, v control.View) string {
	t.Helper()
	var b bytes.Buffer
	tr, srcs := v.Both()
	if err := Write(&b, v.Version, tr, srcs); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestWrite(t *testing.T) {
	text := write(t, testView(testSnapshot(), &foreign.Tally{Steps: 3, Backward: 2, Undone: 1}))
	e := parse(t, text)
	ntp1 := `{source="ntp1:123",address="192.0.2.1:123"}`
	weird := `{source="we\"ird\\name\n",address=""}`
	for key, want := range map[string]float64{
		`slewd_build_info{version="v1.2.3",goversion="` + goVersion() + `",goarch="` + goArch() + `"}`: 1,
		"slewd_synchronized":                  0,
		"slewd_offset_seconds":                -0.042,
		"slewd_correction_remaining_seconds":  -0.04,
		"slewd_error_bound_seconds":           0.041,
		"slewd_slew_rate_ratio":               0.1005,
		"slewd_frequency_ratio":               -3.5e-6,
		"slewd_sources_agreeing":              1,
		"slewd_last_update_timestamp_seconds": 1796168499,
		`slewd_source_state{source="ntp1:123",address="192.0.2.1:123",state="selected"}`:  1,
		`slewd_source_state{source="ntp1:123",address="192.0.2.1:123",state="candidate"}`: 0,
		`slewd_source_state{source="we\"ird\\name\n",address="",state="unreachable"}`:     1,
		"slewd_source_offset_seconds" + ntp1:                                              -0.042,
		"slewd_source_delay_seconds" + ntp1:                                               0.003,
		"slewd_source_reach_ratio" + ntp1:                                                 0.5,
		"slewd_source_reach_ratio" + weird:                                                0,
		"slewd_source_last_sample_age_seconds" + ntp1:                                     10,
		"slewd_source_poll_seconds" + weird:                                               128,
		"slewd_source_polls_total" + ntp1:                                                 5,
		"slewd_source_kiss_of_death_total" + weird:                                        2,
		"slewd_foreign_steps_total":                                                       3,
		"slewd_foreign_backward_steps_total":                                              2,
		"slewd_foreign_steps_undone_total":                                                1,
	} {
		got, ok := e.samples[key]
		if !ok {
			t.Errorf("no series %s", key)
		} else if math.Abs(got-want) > 1e-12*math.Max(1, math.Abs(want)) {
			t.Errorf("%s = %v, want %v", key, got, want)
		}
	}
	// No offset for a source without a sample: absent, not zero.
	if _, ok := e.samples["slewd_source_offset_seconds"+weird]; ok {
		t.Error("an offset for a source with no sample")
	}
	// Six states per source, one of them 1.
	for _, src := range []string{`source="ntp1:123"`, `source="we\"ird\\name\n"`} {
		n, sum := 0, 0.0
		for k, v := range e.samples {
			if strings.HasPrefix(k, "slewd_source_state{"+src) {
				n, sum = n+1, sum+v
			}
		}
		if n != len(control.States) || sum != 1 {
			t.Errorf("%s: %d state series summing to %v", src, n, sum)
		}
	}
	// node_exporter's timex collector has the kernel's view: not repeated.
	for _, dup := range []string{"maxerror", "esterror", "tick", "status", "tai"} {
		if strings.Contains(text, "slewd_"+dup) || strings.Contains(text, "_"+dup+"_") {
			t.Errorf("a kernel timex value (%s) is exported", dup)
		}
	}
}

// Before the first estimate the series that need one are absent, and
// without a foreign tally there are no foreign counters.
func TestWriteNoEstimate(t *testing.T) {
	e := parse(t, write(t, testView(discipline.Snapshot{Started: true}, nil)))
	for _, name := range []string{"slewd_offset_seconds", "slewd_error_bound_seconds", "slewd_last_update_timestamp_seconds",
		"slewd_root_delay_seconds", "slewd_foreign_steps_total", "slewd_source_offset_seconds"} {
		if _, ok := e.types[name]; ok {
			t.Errorf("%s is there before the first estimate", name)
		}
	}
	if e.samples["slewd_synchronized"] != 0 {
		t.Error("synchronized before the first estimate")
	}
}

// serve runs Serve on a loopback port for the test.
func serve(t *testing.T, v control.View) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- Serve(ctx, ln, v) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// Go's HTTP client, as strict as Prometheus' (which is Go's), scrapes it.
func TestServe(t *testing.T) {
	addr := serve(t, testView(testSnapshot(), nil))
	resp, err := http.Get("http://" + addr + "/metrics?x=1")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ContentType || resp.ContentLength != int64(b.Len()) {
		t.Fatalf("GET /metrics: %s, %q, length %d for %d bytes", resp.Status, resp.Header.Get("Content-Type"), resp.ContentLength, b.Len())
	}
	parse(t, b.String())
	for path, want := range map[string]int{"/": 200, "/other": 404} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %s, want %d", path, resp.Status, want)
		}
	}
	resp, err = http.Head("http://" + addr + "/metrics")
	if err != nil || resp.StatusCode != 200 || resp.ContentLength <= 0 {
		t.Errorf("HEAD /metrics: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	resp, err = http.Post("http://"+addr+"/metrics", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed && resp.StatusCode != http.StatusBadRequest {
		t.Errorf("POST /metrics: %s", resp.Status)
	}
	// Not HTTP, or a head that never ends: refused, the connection closed.
	for _, req := range []string{"hello\r\n\r\n", "GET /metrics HTTP/1.1\r\n" + strings.Repeat("X-A: b\r\n", 2000)} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte(req))
		out, _ := io.ReadAll(c)
		c.Close()
		if !strings.HasPrefix(string(out), "HTTP/1.1 400 ") {
			t.Errorf("%.20q: %.40q, want a 400", req, out)
		}
	}
}

func goVersion() string { return runtime.Version() }
func goArch() string    { return runtime.GOARCH }
