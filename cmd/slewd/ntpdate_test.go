package main

import (
	"bytes"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"slewd/ntpclient"
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
		{args: []string{"-4", "-a", "7", "-k", "/etc/chrony.keys", "a"}, want: ntpdateOptions{ipv4: true, keyID: 7, keyFile: "/etc/chrony.keys", keyFileSet: true, servers: []string{"a"}}},
		{args: []string{"-6", "-e", "0.01", "-o", "3", "a"}, want: ntpdateOptions{ipv6: true, servers: []string{"a"}}},
		{args: []string{"-b", "--servers-from=/etc/ntp.conf", "--servers-from", "/etc/chrony.conf"},
			want: ntpdateOptions{step: true, serversFrom: []string{"/etc/ntp.conf", "/etc/chrony.conf"}}},
		{args: []string{"-b", "--allow-backward-step", "a"}, err: "--allow-backward-step is gone: slewd's ntpdate never steps the clock back; " +
			"to step a clock that is ahead back once, run `slewd boot` (without --forward-only) before services start"},
		{args: []string{"-t", "NaN", "a"}, err: "timeout NaN is undecodeable"},
		{args: []string{"-t", "Inf", "a"}, err: "timeout Inf is undecodeable"},
		{args: []string{"-t", "-1", "a"}, err: "timeout -1 is undecodeable"},
		{args: []string{"-t", "0", "a"}, err: "timeout 0 is undecodeable"},
		{args: []string{"-a", "99999999999", "a"}, err: `key number "99999999999" is invalid`},
		{args: []string{"-a", "0", "a"}, err: `key number "0" is invalid`},
		{args: []string{"-p", "NaN", "a"}, err: "number of samples (NaN) is invalid"},
		{args: []string{"-e", "NaN", "a"}, err: "encryption delay NaN is unlikely"},
		{args: []string{"-e", "5", "a"}, err: "encryption delay 5 is unlikely"},
		{args: []string{"-o", "9", "a"}, err: "NTP version 9 is invalid"},
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
	// Errors (ntpdate's LOG_ERR) go to standard error.
	var e bytes.Buffer
	b.Reset()
	s.errW = &e
	s.Err("no server suitable for synchronization found")
	if want := " 3 Nov 09:04:05 ntpdate[1234]: no server suitable for synchronization found\n"; b.Len() != 0 || e.String() != want {
		t.Errorf("stdout %q, stderr %q; want stderr %q", b.String(), e.String(), want)
	}
}

var (
	ntpdateServerLine = regexp.MustCompile(`^server (192\.0\.2\.\d|127\.0\.0\.1), stratum (\d+), offset (-?\d+\.\d{6}), delay (\d+\.\d{5})$`)
	ntpdateDeadLine   = regexp.MustCompile(`^server (192\.0\.2\.\d|127\.0\.0\.1), stratum 0, offset 0\.000000, delay 0\.00000$`)
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
	if len(lines) != 4 {
		t.Fatalf("want 3 server lines (the unsynchronized server answered nothing usable: ntpdate prints it with stratum 0 and zeros) and the final line:\n%s", res.stdout)
	}
	for _, l := range lines[:2] {
		mm := ntpdateServerLine.FindStringSubmatch(l)
		if mm == nil || mm[2] != "3" || math.Abs(atof(t, mm[3])-0.4219) > 1e-4 || !strings.HasPrefix(mm[4], "0.0004") {
			t.Errorf("server line %q", l)
		}
	}
	if want := "server 192.0.2.3, stratum 0, offset 0.000000, delay 0.00000"; lines[2] != want {
		t.Errorf("unsynchronized server's line %q, want %q", lines[2], want)
	}
	if mm := ntpdateFinalLine.FindStringSubmatch(lines[3]); mm == nil || mm[1] != "adjust" || math.Abs(atof(t, mm[3])-0.4219) > 1e-4 {
		t.Errorf("final line %q", lines[3])
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
		{"-d changes nothing", 2 * time.Second, []string{"-d", "-b"}, "step", false, "", 0},
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
			if n, _ := m.rec.Backward(); n != 0 {
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
			// Errors go to standard error, as ntpdate's LOG_ERR lines do.
			if res.code != tc.code || !strings.Contains(res.stderr, tc.out) || strings.Contains(res.stdout, tc.out) {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d and %q on stderr", res.code, res.stdout, res.stderr, tc.code, tc.out)
			}
			if strings.Contains(res.stderr, "slewd: \n") {
				t.Errorf("empty error line on stderr: %q", res.stderr)
			}
		})
	}
}

// ntpdate needs one server: with several, it uses those that answered
// and agree (a dead one gets a line of zeros), and the intersection
// algorithm still rejects a falseticker among them.
func TestNtpdateQuorumOfOne(t *testing.T) {
	good := ntptest.ServerConfig{Stratum: 2}
	dead := ntptest.ServerConfig{Drop: true}
	for _, tc := range []struct {
		name    string
		servers []ntptest.ServerConfig
		args    []string
		code    int
		lines   []string // per server: "ok", "dead", "any"
		chosen  []string // the final line names one of these
		errLine string   // expected on stderr (and not on stdout)
	}{
		{"-q A B, B dead", []ntptest.ServerConfig{good, dead}, []string{"-q"}, 0, []string{"ok", "dead"}, []string{"192.0.2.1"}, ""},
		{"-q A B, A dead", []ntptest.ServerConfig{dead, good}, []string{"-q"}, 0, []string{"dead", "ok"}, []string{"192.0.2.2"}, ""},
		{"-q, falseticker and dead among four",
			[]ntptest.ServerConfig{good, {Stratum: 1, Offset: 3 * time.Second}, dead, good}, []string{"-q"}, 0,
			[]string{"ok", "any", "dead", "ok"}, []string{"192.0.2.1", "192.0.2.4"}, ""},
		{"-q, all dead", []ntptest.ServerConfig{dead, dead}, []string{"-q"}, 1, []string{"dead", "dead"}, nil, "no server suitable for synchronization found"},
		// ntpdate -q reports every server and the best one, and exits 0.
		{"-q, two that disagree", []ntptest.ServerConfig{good, {Stratum: 3, Offset: 3 * time.Second}}, []string{"-q"}, 0, []string{"ok", "any"}, []string{"192.0.2.1"}, ""},
		{"slews with A B, B dead", []ntptest.ServerConfig{good, dead}, []string{"-p", "1"}, 0, nil, []string{"192.0.2.1"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newSimMachine(t, -250*time.Millisecond, tc.servers...)
			res := m.runCmd(t, time.Minute, true, append(append([]string{"ntpdate"}, tc.args...), m.servers...)...)
			if res.code != tc.code {
				t.Fatalf("exit %d, want %d: stdout %q, stderr %q", res.code, tc.code, res.stdout, res.stderr)
			}
			lines := strings.Split(strings.TrimRight(res.stdout, "\n"), "\n")
			if res.stdout == "" {
				lines = nil
			}
			want := len(tc.lines)
			if tc.code == 0 {
				want++
			}
			if len(lines) != want {
				t.Fatalf("want %d lines:\n%s", want, res.stdout)
			}
			for i, kind := range tc.lines {
				mm := ntpdateServerLine.FindStringSubmatch(lines[i])
				switch {
				case mm == nil || mm[1] != fmt.Sprintf("192.0.2.%d", i+1):
					t.Errorf("server line %q", lines[i])
				case kind == "dead" && !ntpdateDeadLine.MatchString(lines[i]):
					t.Errorf("dead server's line %q", lines[i])
				case kind == "ok" && (mm[2] != "2" || math.Abs(atof(t, mm[3])-0.25) > 1e-4):
					t.Errorf("server line %q", lines[i])
				}
			}
			if tc.code == 0 {
				mm := ntpdateFinalLine.FindStringSubmatch(lines[len(lines)-1])
				if mm == nil || mm[1] != "adjust" || !slices.Contains(tc.chosen, mm[2]) || math.Abs(atof(t, mm[3])-0.25) > 1e-3 {
					t.Errorf("final line %q", lines[len(lines)-1])
				}
			}
			if tc.errLine != "" && (!strings.Contains(res.stderr, tc.errLine) || strings.Contains(res.stdout, tc.errLine)) {
				t.Errorf("want %q on stderr only: stdout %q, stderr %q", tc.errLine, res.stdout, res.stderr)
			}
			if slices.Contains(tc.args, "-q") && len(m.rec.Jumps) != 0 {
				t.Error("ntpdate -q changed the clock")
			}
		})
	}
}

// A query changes nothing, so it refuses nothing: -q reports an offset
// too large to slew with the usual lines and exits 0, and -q -b does not
// say it would not step back.
func TestNtpdateQueryReportsAnyOffset(t *testing.T) {
	for _, tc := range []struct {
		name     string
		clockErr time.Duration // REALTIME − true
		args     []string
		verb     string
	}{
		// Worded as ntpdate words them: step from 0.5 s, or under -b;
		// adjust under -B or below.
		{"-q an hour ahead", time.Hour, []string{"-q"}, "step"},
		{"-q 5 s behind", -5 * time.Second, []string{"-q"}, "step"},
		{"-q 0.3 s ahead", 300 * time.Millisecond, []string{"-q"}, "adjust"},
		{"-q -B an hour ahead", time.Hour, []string{"-q", "-B"}, "adjust"},
		{"-q -b an hour ahead", time.Hour, []string{"-q", "-b"}, "step"},
		{"-q -b 2 s ahead", 2 * time.Second, []string{"-q", "-b"}, "step"},
		{"-q -b 2 s behind", -2 * time.Second, []string{"-q", "-b"}, "step"},
		{"-d an hour ahead", time.Hour, []string{"-d"}, "step"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newSimMachine(t, tc.clockErr, ntptest.ServerConfig{Stratum: 2})
			res := m.runCmd(t, time.Minute, true, append(append([]string{"ntpdate"}, tc.args...), m.servers...)...)
			if res.code != 0 {
				t.Fatalf("exit %d: stdout %q, stderr %q", res.code, res.stdout, res.stderr)
			}
			lines := strings.Split(strings.TrimRight(res.stdout, "\n"), "\n")
			if !slices.Contains(tc.args, "-d") {
				if len(lines) != 2 {
					t.Fatalf("want the server line and the final line:\n%s", res.stdout)
				}
				if mm := ntpdateServerLine.FindStringSubmatch(lines[0]); mm == nil || math.Abs(atof(t, mm[3])+tc.clockErr.Seconds()) > 1e-3 {
					t.Errorf("server line %q", lines[0])
				}
			}
			final := lines[len(lines)-1]
			if mm := ntpdateFinalLine.FindStringSubmatch(final); mm == nil || mm[1] != tc.verb || math.Abs(atof(t, mm[3])+tc.clockErr.Seconds()) > 1e-3 {
				t.Errorf("final line %q", final)
			}
			for _, bad := range []string{"too large", "not stepping", "slewing instead"} {
				if strings.Contains(res.stdout+res.stderr, bad) {
					t.Errorf("%q printed: stdout %q, stderr %q", bad, res.stdout, res.stderr)
				}
			}
			if len(m.rec.Jumps) != 0 {
				t.Error("a query changed the clock")
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

	// A server that does not answer: the one that does is enough, the
	// dead one gets ntpdate's line of zeros; with none, the error goes to
	// standard error.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := pc.LocalAddr().String()
	pc.Close()
	out, errOut, code, _ = unprivileged(t, "ntpdate", "-q", "-t", "1", addrs[0], dead)
	lines = strings.Split(strings.TrimRight(out, "\n"), "\n")
	if code != 0 || len(lines) != 3 || !ntpdateServerLine.MatchString(lines[0]) || !ntpdateDeadLine.MatchString(lines[1]) || !ntpdateFinalLine.MatchString(lines[2]) {
		t.Errorf("ntpdate -q live dead: exit %d, stdout:\n%s\nstderr: %s", code, out, errOut)
	}
	out, errOut, code, _ = unprivileged(t, "ntpdate", "-q", "-t", "1", dead)
	if code != 1 || !ntpdateDeadLine.MatchString(strings.TrimRight(out, "\n")) || !strings.Contains(errOut, "ntpdate[") ||
		!strings.Contains(errOut, "no server suitable for synchronization found") {
		t.Errorf("ntpdate -q dead: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// --servers-from, -a and -k authenticate exactly as query does: the
// configuration's key and key file (ntp.keys format for ntp.conf's keys),
// or -a with -k in ntp.keys format; a reply that does not verify is not
// used. An unresolvable host gets ntpdate's "Error resolving" line.
func TestNtpdateAuthenticatesAsQuery(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "ntp.keys")
	os.WriteFile(keys, []byte("1\tM\tsecret\n2 SHA1 0123456789abcdef0123456789abcdef01234567\n"), 0o600)
	k1, _ := ntpclient.ParseNTPKey("1 M secret")
	k2, _ := ntpclient.ParseNTPKey("2 SHA1 0123456789abcdef0123456789abcdef01234567")
	conf := filepath.Join(dir, "ntp.conf")
	os.WriteFile(conf, []byte("keys "+keys+"\nserver 192.0.2.1 key 1\n"), 0o600)
	for _, tc := range []struct {
		name   string
		server ntptest.ServerConfig
		args   []string
		code   int
	}{
		{"config key", ntptest.ServerConfig{Keys: []ntpclient.Key{k1}, RequireAuth: true}, []string{"--servers-from", conf}, 0},
		{"config key, forged reply", ntptest.ServerConfig{Keys: []ntpclient.Key{k1}, BadReplyMAC: true}, []string{"--servers-from", conf}, 1},
		{"-a -k ntp.keys", ntptest.ServerConfig{Keys: []ntpclient.Key{k2}, RequireAuth: true}, []string{"-a", "2", "-k", keys, "192.0.2.1:123"}, 0},
		{"-a -k, forged reply", ntptest.ServerConfig{Keys: []ntpclient.Key{k2}, BadReplyMAC: true}, []string{"-a", "2", "-k", keys, "192.0.2.1:123"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newSimMachine(t, 0, tc.server)
			res := m.runCmd(t, time.Minute, false, append([]string{"ntpdate", "-q", "-p", "1"}, tc.args...)...)
			if res.code != tc.code {
				t.Errorf("exit %d, want %d: stdout %q, stderr %q", res.code, tc.code, res.stdout, res.stderr)
			}
		})
	}
	m := newSimMachine(t, 0, ntptest.ServerConfig{})
	res := m.runCmd(t, time.Minute, false, "ntpdate", "-q", "-p", "1", "nosuch.example", m.servers[0])
	if res.code != 0 || !strings.Contains(res.stderr, "Error resolving nosuch.example: ") || strings.Contains(res.stderr, "retrying") {
		t.Errorf("unresolvable host: exit %d, stderr %q", res.code, res.stderr)
	}
}
