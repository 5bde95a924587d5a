package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// runApp runs the CLI in-process and returns its output and exit status.
func runApp(args ...string) (stdout, stderr string, code int) {
	var out, errOut bytes.Buffer
	app := newApp()
	app.Writer, app.ErrWriter = &out, &errOut
	if err := app.Run(append([]string{"slewd"}, args...)); err != nil {
		errOut.WriteString(err.Error())
		code = 1
		if ec, ok := err.(cli.ExitCoder); ok {
			code = ec.ExitCode()
		}
	}
	return out.String(), errOut.String(), code
}

// Bad arguments exit 2 (as every command's help says) with a message that
// names the problem and where to look, for every command.
func TestBadArguments(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"query", "--bogus"}, "slewd query: flag provided but not defined: -bogus (see slewd query --help)"},
		{[]string{"status", "--nope"}, "see slewd status --help"},
		{[]string{"wait", "--timeout", "soon"}, "slewd wait: invalid value \"soon\""},
		{[]string{"status", "foo"}, `slewd status takes no arguments, but got ["foo"] (flags go first`},
		{[]string{"simulate", "--duration=1m", "x"}, "slewd simulate takes no arguments"},
		{[]string{"wait", "now"}, "slewd wait takes no arguments"},
	} {
		out, stderr, code := runApp(tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("slewd %s: exit %d, stderr %q; want 2 and %q", strings.Join(tc.args, " "), code, stderr, tc.want)
		}
		if strings.Contains(out, "USAGE:") {
			t.Errorf("slewd %s printed the whole help page", strings.Join(tc.args, " "))
		}
	}
}

// Running one app must not change the next (urfave/cli adds help flags to
// the commands it runs).
func TestAppsIndependent(t *testing.T) {
	count := func() map[string]int {
		n := map[string]int{}
		for _, c := range newApp().Commands {
			n[c.Name] = len(c.Flags) + len(c.Subcommands)
		}
		return n
	}
	before := count()
	runApp("status", "--json")
	runApp("query", "--help")
	for name, n := range count() {
		if n != before[name] {
			t.Errorf("command %s: %d flags and subcommands after other runs, %d before", name, n, before[name])
		}
	}
}

// Server arguments: a flag after a server is named as such, and empty
// entries (SLEWD_POOLS="" in /etc/default/slewd) mean none.
func TestServerArguments(t *testing.T) {
	if _, stderr, code := runApp("query", "127.0.0.1:9", "--json"); code != 2 || !strings.Contains(stderr, `"--json" is not a server: flags go before the servers`) {
		t.Errorf("flag after a server: exit %d, %q", code, stderr)
	}
	if _, stderr, code := runApp("query", "bad[spec"); code != 2 || !strings.HasPrefix(stderr, `bad server: "bad[spec"`) {
		t.Errorf("bad server: exit %d, %q", code, stderr)
	}
	t.Setenv("SLEWD_POOLS", "")
	t.Setenv("SLEWD_SERVERS", "")
	if _, stderr, code := runApp("query"); code != 2 || !strings.Contains(stderr, "no NTP servers") {
		t.Errorf("empty SLEWD_POOLS and SLEWD_SERVERS: exit %d, %q; want the no-servers advice", code, stderr)
	}
}

// simulate refuses what it cannot mean; run shares --max-slew-rate's check
// (run itself is not started here: it would take this machine's clock).
func TestSimulateBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--max-slew-rate=100"}, "give a number from 500 to 100500 ppm"},
		{[]string{"--max-slew-rate=200000"}, "100500 is the kernel's limit"},
		{[]string{"--wander=-1"}, "--wander -1: give a number from 0"},
		{[]string{"--kill-at=2h", "--duration=1h"}, "--kill-at 2h0m0s is not before the end"},
		{[]string{"--step-by=-5s", "--step-at=2h", "--duration=1h"}, "--step-at 2h0m0s is not before the end"},
		{[]string{"--clock-error=garbage"}, "write it like +54s"},
		{[]string{"--falsetickers=3", "--servers=3"}, "--falsetickers must be between 0 and --servers - 1"},
	} {
		if _, stderr, code := runApp(append([]string{"simulate"}, tc.args...)...); code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("simulate %v: exit %d, %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
	for ppm, ok := range map[float64]bool{499: false, 500: true, 100500: true, 100501: false} {
		if err := checkMaxSlewRate(ppm); (err == nil) != ok {
			t.Errorf("checkMaxSlewRate(%g) = %v", ppm, err)
		}
	}
}

// `slewd --help` and `-h` show the commands and exit 0, as docs/deploy.md's
// exit-status table says; so do `slewd help` and a command's --help.
func TestHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {}, {"run", "--help"}, {"help", "run"}} {
		stdout, stderr, code := runApp(args...)
		if code != 0 || stderr != "" {
			t.Errorf("slewd %q: exit %d, stderr %q; want 0 and nothing", args, code, stderr)
		}
		want := "COMMANDS:"
		if len(args) > 0 && (args[0] == "run" || len(args) > 1) {
			want = "slewd run - "
		}
		if !strings.Contains(stdout, want) || (want == "COMMANDS:" && !strings.Contains(stdout, "check-config")) {
			t.Errorf("slewd %q printed %q; want the help (%q)", args, stdout, want)
		}
	}
}
