package main

import (
	"encoding/json"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"slewd/ntpclient"
	"slewd/ntpclient/ntptest"
)

func runQuery(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runApp(append([]string{"query"}, args...)...)
}

func TestQueryJSON(t *testing.T) {
	var addrs []string
	for _, cfg := range []ntptest.ServerConfig{
		{Offset: 250 * time.Millisecond, Stratum: 3},
		{Offset: 250 * time.Millisecond, Stratum: 2},
		{Offset: 250*time.Millisecond + time.Hour},
		{Offset: 250 * time.Millisecond, Stratum: 2},
		{Unsynchronized: true},
	} {
		s := ntptest.NewServer(cfg)
		t.Cleanup(s.Close)
		addrs = append(addrs, s.Addr())
	}
	// Servers as arguments and through the flag.
	out, errOut, code := runQuery(t, append([]string{"--json", "--interval", "10ms", "--server", addrs[4]}, addrs[:4]...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got struct {
		Estimate *struct {
			OffsetS float64 `json:"offset_s"`
			ErrorS  float64 `json:"error_s"`
			Sources int     `json:"sources"`
		} `json:"estimate"`
		Sources []struct {
			Address  string   `json:"address"`
			OffsetS  *float64 `json:"offset_s"`
			DelayS   *float64 `json:"delay_s"`
			Stratum  int      `json:"stratum"`
			Selected bool     `json:"selected"`
			Reason   string   `json:"reason"`
		} `json:"sources"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	if got.Estimate == nil || got.Estimate.Sources < 2 || got.Estimate.Sources > 3 || got.Estimate.OffsetS < 0.249 || got.Estimate.OffsetS > 0.251 || got.Estimate.ErrorS <= 0 {
		t.Fatalf("estimate %+v", got.Estimate)
	}
	if len(got.Sources) != 5 {
		t.Fatalf("%d sources", len(got.Sources))
	}
	byAddr := map[string]int{}
	for i, s := range got.Sources {
		byAddr[s.Address] = i
	}
	for i, a := range addrs {
		s := got.Sources[byAddr[a]]
		good := i != 2 && i != 4
		// A good source is combined, or (when a loopback exchange was slow
		// on a loaded machine) agrees but is left out for its distance:
		// never a falseticker. The others are never selected.
		agrees := s.Selected && s.Reason == "" || !s.Selected && strings.HasPrefix(s.Reason, "agrees")
		if good && !agrees || !good && (s.Selected || s.Reason == "") {
			t.Errorf("%s: selected %v reason %q", a, s.Selected, s.Reason)
		}
		if i < 4 && (s.OffsetS == nil || s.DelayS == nil || *s.DelayS <= 0) {
			t.Errorf("%s: offset %v delay %v", a, s.OffsetS, s.DelayS)
		}
	}
	if s := got.Sources[byAddr[addrs[2]]]; !strings.HasPrefix(s.Reason, "falseticker") || *s.OffsetS < 3600 {
		t.Errorf("falseticker %+v", s)
	}
	if s := got.Sources[byAddr[addrs[4]]]; !strings.Contains(s.Reason, "unsynchronized") || s.OffsetS != nil {
		t.Errorf("unsynchronized %+v", s)
	}
}

func TestQueryText(t *testing.T) {
	s := ntptest.NewServer(ntptest.ServerConfig{Offset: -1500 * time.Millisecond, Stratum: 1, RefID: 0x47505300})
	defer s.Close()
	out, errOut, code := runQuery(t, "--samples", "2", "--interval", "10ms", s.Addr())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{s.Addr(), ".GPS.", "-1.4999", "from 1 source, best at stratum 1 (this clock: stratum 2)", "ST  REFID", "  1   .GPS.", "the local clock is 1.5s ahead"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// −1.5 s to within a few µs of loopback asymmetry, either side.
	if !regexp.MustCompile(`-1\.(4999|5000)\d\ds`).MatchString(out) {
		t.Errorf("output lacks an offset of -1.5s to 10 µs:\n%s", out)
	}
}

func TestQueryNoEstimate(t *testing.T) {
	silent := ntptest.NewServer(ntptest.ServerConfig{Drop: true})
	defer silent.Close()
	unsync := ntptest.NewServer(ntptest.ServerConfig{Unsynchronized: true})
	defer unsync.Close()
	out, errOut, code := runQuery(t, "--json", "--samples", "1", "--timeout", "200ms", silent.Addr(), unsync.Addr())
	if code != 1 {
		t.Fatalf("exit %d, want 1: %s", code, errOut)
	}
	if !strings.Contains(errOut, "no estimate") {
		t.Errorf("stderr %q", errOut)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if got["estimate"] != nil || !strings.Contains(got["error"].(string), "unreachable") {
		t.Errorf("json %v", got)
	}
	_, errOut, code = runQuery(t, "--samples", "1", "--timeout", "200ms", unsync.Addr())
	if code != 1 || !strings.Contains(errOut, "unsynchronized (stratum 0, LI=3)") {
		t.Errorf("exit %d: %s", code, errOut)
	}
}

func TestQueryUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "no NTP servers"},
		{[]string{"http://pool.ntp.org"}, "looks like a URL"},
		{[]string{"--samples", "0", "127.0.0.1"}, "--samples"},
		{[]string{"--samples", "1000", "127.0.0.1"}, "--samples 1000: give a whole number from 1 to 32"},
		{[]string{"--interval", "1ns", "127.0.0.1"}, "--interval 1ns: give 10ms to"},
		{[]string{"--key", "3", "127.0.0.1"}, "both --keyfile"},
	} {
		_, errOut, code := runQuery(t, tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}

// Keys come from a chrony key file.
func TestQueryKeyFile(t *testing.T) {
	k, err := ntpclient.ParseKey("5 AES128 HEX:000102030405060708090a0b0c0d0e0f")
	if err != nil {
		t.Fatal(err)
	}
	s := ntptest.NewServer(ntptest.ServerConfig{Keys: []ntpclient.Key{k}, RequireAuth: true})
	defer s.Close()
	file := t.TempDir() + "/chrony.keys"
	if err := os.WriteFile(file, []byte("# test keys\n4 SHA1 ASCII:other\n5 AES128 HEX:000102030405060708090a0b0c0d0e0f\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := runQuery(t, "--keyfile", file, "--key", "5", "--samples", "1", s.Addr()); code != 0 {
		t.Errorf("exit %d: %s", code, errOut)
	}
	_, errOut, code := runQuery(t, "--keyfile", file, "--key", "4", "--samples", "1", "--timeout", "200ms", s.Addr())
	if code != 1 || !strings.Contains(errOut, "key 4 (SHA1)") {
		t.Errorf("wrong key: exit %d: %s", code, errOut)
	}
}

// `slewd query` asks its servers in parallel: against four servers whose
// replies take 5, 10, 15 and 20 ms it returns about as fast as against
// the slowest alone. The ratio is the figure the issue asks for (at most 2).
func BenchmarkQueryFourServers(b *testing.B) {
	var addrs []string
	for _, rtt := range []time.Duration{5, 10, 15, 20} {
		s := ntptest.NewServer(ntptest.ServerConfig{Delay: rtt * time.Millisecond / 2})
		b.Cleanup(s.Close)
		addrs = append(addrs, s.Addr())
	}
	run := func(servers []string) time.Duration {
		app := newApp()
		app.Writer, app.ErrWriter = io.Discard, io.Discard
		start := time.Now()
		if err := app.Run(append([]string{"slewd", "query", "--samples", "1", "--min-sources", "1"}, servers...)); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	var four, slowest time.Duration
	for b.Loop() {
		four += run(addrs)
		slowest += run(addrs[3:])
	}
	n := time.Duration(b.N)
	b.ReportMetric(float64(four/n)/1e6, "ms/4-servers")
	b.ReportMetric(float64(slowest/n)/1e6, "ms/slowest-alone")
	b.ReportMetric(float64(four)/float64(slowest), "ratio")
}
