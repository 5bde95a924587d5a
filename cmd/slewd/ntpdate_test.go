package main

import (
	"bytes"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"slewd/ntpclient/ntptest"
)

func TestParseNtpdateArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want ntpdateOptions
		err  string
	}{
		{args: []string{"ntp.nict.jp"}, want: ntpdateOptions{servers: []string{"ntp.nict.jp"}}},
		{args: []string{"-q", "-u", "a", "b:123"}, want: ntpdateOptions{query: true, servers: []string{"a", "b:123"}}},
		{args: []string{"-bu", "-p4", "-t", "0.5", "a"}, want: ntpdateOptions{step: true, samples: 4, timeout: 500 * time.Millisecond, servers: []string{"a"}}},
		{args: []string{"-b", "-B", "a"}, want: ntpdateOptions{slew: true, servers: []string{"a"}}},
		{args: []string{"-B", "-b", "a"}, want: ntpdateOptions{step: true, servers: []string{"a"}}},
		{args: []string{"-sv", "-d", "a"}, want: ntpdateOptions{syslog: true, verbose: true, debug: true, servers: []string{"a"}}},
		{args: []string{"a", "-q", "-p", "2"}, want: ntpdateOptions{query: true, samples: 2, servers: []string{"a"}}}, // options after servers
		{args: []string{"-4", "-a", "7", "-k", "/etc/chrony.keys", "a"}, want: ntpdateOptions{ipv4: true, keyID: 7, keyFile: "/etc/chrony.keys", servers: []string{"a"}}},
		{args: []string{"-6", "-e", "0.01", "-o", "3", "a"}, want: ntpdateOptions{ipv6: true, servers: []string{"a"}}},
		{args: []string{"-b", "--allow-backward-step", "--servers-from=/etc/ntp.conf", "--servers-from", "/etc/chrony.conf"},
			want: ntpdateOptions{step: true, allowBackward: true, serversFrom: []string{"/etc/ntp.conf", "/etc/chrony.conf"}}},
		{args: []string{"-q", "--", "-weird-host"}, want: ntpdateOptions{query: true, servers: []string{"-weird-host"}}},
		{args: []string{"-h"}, want: ntpdateOptions{help: true}},
		{args: []string{"-p", "9", "a"}, err: "number of samples (9) is invalid"},
		{args: []string{"-p0", "a"}, err: "number of samples (0) is invalid"},
		{args: []string{"-t", "soon", "a"}, err: "timeout soon is undecodeable"},
		{args: []string{"-x", "a"}, err: "invalid option -- 'x'"},
		{args: []string{"a", "-p"}, err: "option requires an argument -- 'p'"},
		{args: []string{"--frobnicate", "a"}, err: "unknown option --frobnicate"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			got, err := parseNtpdateArgs(tc.args)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.want.keyFile == "" {
				tc.want.keyFile = "/etc/ntp.keys"
			}
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// ntpdate's timestamp prefix: "%2d %s %02d:%02d:%02d progname[pid]: ".
func TestNtpdateLineFormat(t *testing.T) {
	var b bytes.Buffer
	s := stdoutSink{w: &b, pid: 1234, now: func() time.Time { return time.Date(2026, 11, 3, 9, 4, 5, 0, time.Local) }}
	s.Notice("adjust time server 127.0.0.1 offset 0.421900 sec")
	if want := " 3 Nov 09:04:05 ntpdate[1234]: adjust time server 127.0.0.1 offset 0.421900 sec\n"; b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

var (
	ntpdateServerLine = regexp.MustCompile(`^server (192\.0\.2\.\d|127\.0\.0\.1), stratum (\d+), offset (-?\d+\.\d{6}), delay (\d+\.\d{5})$`)
	ntpdateFinalLine  = regexp.MustCompile(`^[ 123]\d [A-Z][a-z]{2} \d\d:\d\d:\d\d ntpdate\[\d+\]: (adjust|step) time server (192\.0\.2\.\d|127\.0\.0\.1) offset (-?\d+\.\d{6}) sec$`)
)

func TestNtpdateQuery(t *testing.T) {
	// The clock is 0.4219 s behind the servers.
	m := newSimMachine(t, -421900*time.Microsecond, ntptest.ServerConfig{Stratum: 3}, ntptest.ServerConfig{Stratum: 3}, ntptest.ServerConfig{Stratum: 2, Unsynchronized: true})
	res := m.runCmd(t, time.Minute, false, append([]string{"ntpdate", "-q"}, m.servers...)...)
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	lines := strings.Split(strings.TrimRight(res.stdout, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 2 server lines (the unsynchronized server answered nothing usable, ntpdate prints it with stratum 0: skipped) and the final line:\n%s", res.stdout)
	}
	for _, l := range lines[:2] {
		mm := ntpdateServerLine.FindStringSubmatch(l)
		if mm == nil || mm[2] != "3" || !strings.HasPrefix(mm[3], "0.4219") || !strings.HasPrefix(mm[4], "0.0004") {
			t.Errorf("server line %q", l)
		}
	}
	if mm := ntpdateFinalLine.FindStringSubmatch(lines[2]); mm == nil || mm[1] != "adjust" || !strings.HasPrefix(mm[3], "0.4219") {
		t.Errorf("final line %q", lines[2])
	}
	if len(m.rec.Jumps) != 0 {
		t.Error("ntpdate -q changed the clock")
	}
}

// ntpdate without -q slews; -b steps forward, never back (without the
// opt-in), and says so; -s goes to syslog.
func TestNtpdateAdjust(t *testing.T) {
	for _, tc := range []struct {
		name      string
		clockErr  time.Duration // REALTIME − true
		args      []string
		verb      string
		stepped   bool
		notice    string
		remaining time.Duration // clock error once the command is done (stepped) or pending singleshot
	}{
		{"default slews", 300 * time.Millisecond, nil, "adjust", false, "", 0},
		{"-B slews", -2 * time.Second, []string{"-B"}, "adjust", false, "", 0},
		{"-b behind steps", -2 * time.Second, []string{"-b"}, "step", true, "", 0},
		{"-b ahead slews and says so", 2 * time.Second, []string{"-b"}, "adjust", false, "not stepping the clock back 2.0", 0},
		{"-b ahead, allowed", 2 * time.Second, []string{"-b", "--allow-backward-step"}, "step", true, "", 0},
		{"-d changes nothing", 2 * time.Second, []string{"-d", "-b", "--allow-backward-step"}, "step", false, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newSimMachine(t, tc.clockErr, ntptest.ServerConfig{}, ntptest.ServerConfig{})
			res := m.runCmd(t, time.Minute, true, append(append([]string{"ntpdate", "-p", "2"}, tc.args...), m.servers...)...)
			if res.code != 0 {
				t.Fatalf("exit %d: %s %s", res.code, res.stdout, res.stderr)
			}
			lines := strings.Split(strings.TrimRight(res.stdout, "\n"), "\n")
			final := lines[len(lines)-1]
			mm := ntpdateFinalLine.FindStringSubmatch(final)
			if mm == nil || mm[1] != tc.verb || math.Abs(atof(t, mm[3])+tc.clockErr.Seconds()) > 1e-3 {
				t.Errorf("final line %q", final)
			}
			if tc.notice != "" && !strings.Contains(res.stdout, tc.notice) {
				t.Errorf("no notice %q in %q", tc.notice, res.stdout)
			}
			if got := len(m.rec.Jumps) == 1; got != tc.stepped {
				t.Errorf("jumps %+v", m.rec.Jumps)
			}
			if n, _ := m.rec.Backward(); n != 0 && !slices.Contains(tc.args, "--allow-backward-step") {
				t.Error("the clock went back")
			}
		})
	}
	// -s: the lines go to syslog.
	var got []string
	prev := openSyslog
	openSyslog = func() (ntpdateSink, error) { return recordSink{&got}, nil }
	defer func() { openSyslog = prev }()
	m := newSimMachine(t, time.Second, ntptest.ServerConfig{})
	res := m.runCmd(t, time.Minute, true, append([]string{"ntpdate", "-s", "-v"}, m.servers...)...)
	if res.code != 0 || res.stdout != "" || len(got) != 2 || !strings.HasPrefix(got[0], "slewd ") || !strings.HasPrefix(got[1], "adjust time server 192.0.2.1 offset -1.0") {
		t.Errorf("-s: exit %d, stdout %q, syslog %q", res.code, res.stdout, got)
	}
}

func atof(t *testing.T, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

type recordSink struct{ lines *[]string }

func (r recordSink) Notice(m string) error { *r.lines = append(*r.lines, m); return nil }
func (r recordSink) Err(m string) error    { return r.Notice(m) }

func TestNtpdateFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		server ntptest.ServerConfig
		args   []string
		priv   bool
		code   int
		out    string
	}{
		{"no answer", ntptest.ServerConfig{Drop: true}, []string{"-p", "1"}, true, 1, "no server suitable for synchronization found"},
		{"an hour ahead", ntptest.ServerConfig{Offset: -time.Hour}, []string{"-p", "1"}, true, 1, "sec is too large to slew (over 2145 s)"},
		{"no clock rights", ntptest.ServerConfig{}, []string{"-p", "1"}, false, 1, "Can't adjust the time of day"},
		{"usage", ntptest.ServerConfig{}, []string{"-p", "x"}, true, 2, "usage: ntpdate"},
		{"no servers", ntptest.ServerConfig{}, []string{"-q", "--"}, true, 1, "no servers can be used, exiting"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newSimMachine(t, 0, tc.server)
			args := append([]string{"ntpdate"}, tc.args...)
			if tc.name != "no servers" {
				args = append(args, m.servers...)
			}
			res := m.runCmd(t, time.Minute, tc.priv, args...)
			if res.code != tc.code || !strings.Contains(res.stdout+res.stderr, tc.out) {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d and %q", res.code, res.stdout, res.stderr, tc.code, tc.out)
			}
			if strings.Contains(res.stderr, "slewd: \n") {
				t.Errorf("empty error line on stderr: %q", res.stderr)
			}
		})
	}
}

// The real binary through an `ntpdate` symlink, without clock rights:
// -q prints ntpdate's lines for loopback servers with ports.
func TestNtpdateSymlinkBinary(t *testing.T) {
	addrs := loopbackServers(t, 2, ntptest.ServerConfig{Offset: 421900 * time.Microsecond, Stratum: 3})
	out, errOut, code, _ := unprivileged(t, "ntpdate", append([]string{"-q", "-u"}, addrs...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 3 || !ntpdateServerLine.MatchString(lines[0]) || !ntpdateServerLine.MatchString(lines[1]) || !ntpdateFinalLine.MatchString(lines[2]) {
		t.Errorf("ntpdate -q printed:\n%s", out)
	}
	if mm := ntpdateFinalLine.FindStringSubmatch(lines[len(lines)-1]); mm == nil || !strings.HasPrefix(mm[3], "0.42") {
		t.Errorf("final line %q", lines[len(lines)-1])
	}
	_, errOut, code, _ = unprivileged(t, "ntpdate", addrs...)
	if code != 1 {
		t.Errorf("without clock rights: exit %d: %s", code, errOut)
	}
}
