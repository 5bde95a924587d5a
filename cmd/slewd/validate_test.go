package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"slewd/boot"
)

// stubApp is the CLI with every command's action replaced: validation
// runs as it does for real, but nothing measures or touches the clock
// even if a bad value got through. reached says which actions ran.
func stubApp(reached map[string]bool) *cli.App {
	app := newApp()
	for _, c := range app.Commands {
		name := c.Name
		if name == "help" {
			continue
		}
		c.Action = func(*cli.Context) error { reached[name] = true; return nil }
	}
	return app
}

func runStub(args ...string) (reached bool, stderr string, code int) {
	r := map[string]bool{}
	app := stubApp(r)
	var out, errOut bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errOut
	if err := app.Run(append([]string{"slewd"}, args...)); err != nil {
		errOut.WriteString(err.Error())
		code = 1
		if ec, ok := err.(cli.ExitCoder); ok {
			code = ec.ExitCode()
		}
	}
	return r[args[0]], errOut.String(), code
}

// badValues are the values a rule must refuse: NaN, ±Inf, negative,
// zero, below and above its range, huge, and the rule's own.
func badValues(r rule) []string {
	var v []string
	switch r.kind {
	case "duration":
		lo, hi := time.Duration(r.min), time.Duration(r.max)
		v = append(v, "-1s", "-1ns", "2562047h", (hi + time.Second).String(), "NaN")
		if !r.zeroOK {
			v = append(v, "0s")
		}
		if lo > time.Nanosecond {
			v = append(v, (lo - 1).String())
		}
	case "float":
		v = append(v, "NaN", "+Inf", "-Inf", "1e309", strconv.FormatFloat(r.min-1, 'g', -1, 64))
		if r.maxExclusive {
			v = append(v, strconv.FormatFloat(r.max, 'g', -1, 64))
		} else {
			v = append(v, strconv.FormatFloat(r.max+1, 'g', -1, 64))
		}
	case "int":
		v = append(v, strconv.FormatInt(int64(r.min)-1, 10), strconv.FormatInt(int64(r.max)+1, 10), "99999999999999999999", "NaN")
	case "uint":
		v = append(v, "-1", strconv.FormatUint(uint64(r.max)+1, 10), "99999999999999999999", "NaN")
		if r.min > 0 {
			v = append(v, "0")
		}
	}
	return append(v, r.bad...)
}

// shown is how a refusal prints value v.
func shown(kind, v string) string {
	switch kind {
	case "duration":
		if d, err := time.ParseDuration(v); err == nil {
			return d.String()
		}
	case "float":
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			return strconv.FormatFloat(f, 'g', -1, 64)
		}
	}
	return v
}

// Every flag of every command has a rule, refuses NaN, ±Inf, negative,
// zero, out-of-range and huge values where they apply (exit 2, naming the
// flag, the value and the range), through its environment variable too,
// and takes its default and the rule's good values.
func TestFlagValidationTable(t *testing.T) {
	checked := 0
	for _, cmd := range newApp().Commands {
		if cmd.Name == "help" {
			continue
		}
		if reached, stderr, code := runStub(cmd.Name); !reached || code != 0 {
			t.Errorf("slewd %s with the defaults: exit %d, %q: a default fails its own validation", cmd.Name, code, stderr)
		}
		for _, f := range cmd.Flags {
			if _, ok := f.(*cli.BoolFlag); ok {
				continue
			}
			name := f.Names()[0]
			r, ok := ruleFor(cmd.Name, name)
			if !ok {
				t.Errorf("slewd %s --%s has no validation rule: add a row %q (or %q, if it means the same in every command) "+
					"to flagRules in cmd/slewd/validate.go: durationIn(lo, hi), floatIn(lo, hi, unit), intIn(lo, hi), uintIn(lo, hi), "+
					"oneOf(...), notEmpty(), .zero(meaning) if 0 means something, or noCheck(\"why\") for free text",
					cmd.Name, name, name, cmd.Name+"."+name)
				continue
			}
			if r.kind == "none" {
				if r.why == "" {
					t.Errorf("slewd %s --%s: noCheck needs a reason", cmd.Name, name)
				}
				continue
			}
			bad := badValues(r)
			if len(bad) == 0 {
				t.Errorf("slewd %s --%s: its rule gives the test no bad values: set rule.bad", cmd.Name, name)
			}
			for _, v := range bad {
				checked++
				reached, stderr, code := runStub(cmd.Name, "--"+name+"="+v)
				if reached || code != 2 {
					t.Errorf("slewd %s --%s=%s: exit %d, action reached %v; want 2 before the action (%q)", cmd.Name, name, v, code, reached, stderr)
					continue
				}
				if !strings.Contains(stderr, name) || !strings.Contains(stderr, shown(r.kind, v)) {
					t.Errorf("slewd %s --%s=%s: %q does not name the flag and the value", cmd.Name, name, v, stderr)
				}
				// A value that parses is refused by the rule, which says
				// what is allowed.
				if strings.Contains(stderr, ": give ") && !strings.Contains(stderr, r.allowed) {
					t.Errorf("slewd %s --%s=%s: %q lacks the allowed range %q", cmd.Name, name, v, stderr, r.allowed)
				}
			}
			for _, v := range r.good {
				if reached, stderr, code := runStub(cmd.Name, "--"+name+"="+v); !reached {
					t.Errorf("slewd %s --%s=%s refused (exit %d): %q", cmd.Name, name, v, code, stderr)
				}
			}
			ev, _ := f.(interface{ GetEnvVars() []string })
			if ev == nil || len(ev.GetEnvVars()) == 0 {
				continue
			}
			for _, v := range bad {
				if v == "" {
					continue
				}
				env := ev.GetEnvVars()[0]
				t.Run(fmt.Sprintf("%s/%s=%s", cmd.Name, env, v), func(t *testing.T) {
					t.Setenv(env, v)
					reached, stderr, code := runStub(cmd.Name)
					if reached || code != 2 || !strings.Contains(stderr, env) {
						t.Errorf("%s=%q slewd %s: exit %d, reached %v, %q; want 2 naming %s", env, v, cmd.Name, code, reached, stderr, env)
					}
				})
				break
			}
		}
	}
	if checked < 100 {
		t.Errorf("only %d bad values tried", checked)
	}
}

// The instances, each refused with exit 2.
func TestFlagValidationInstances(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--max-slew-rate=NaN"}, "--max-slew-rate NaN: not a finite number"},
		{[]string{"simulate", "--drift=NaN"}, "--drift NaN"},
		{[]string{"simulate", "--loss=NaN"}, "--loss NaN"},
		{[]string{"run", "--max-offset=-1s"}, "--max-offset -1s"},
		{[]string{"run", "--sync-threshold=-1ms"}, "--sync-threshold -1ms"},
		{[]string{"query", "--timeout=0"}, "--timeout 0s"},
		{[]string{"query", "--deadline=-1s"}, "--deadline -1s"},
		{[]string{"sync", "--deadline=-1s"}, "--deadline -1s"},
		{[]string{"sync", "--interval=1ns"}, "--interval 1ns: give 10ms"},
		{[]string{"query", "--pool-size=0"}, "--pool-size 0"},
		{[]string{"query", "--key=99999999999"}, "--key 99999999999: give a whole number from 1 to 4294967295"},
		{[]string{"run", "--poll=64s", "--minpoll=1h", "--maxpoll=2h"}, "--poll 1m4s is shorter than --minpoll 1h0m0s"},
		{[]string{"run", "--minpoll=2h"}, "--minpoll 2h0m0s is longer than --maxpoll"},
		{[]string{"simulate", "--plot="}, `--plot "": give a non-empty value`},
		{[]string{"query", "--min-sources=3", "a.example", "b.example"}, "--min-sources 3 but only 2 source(s) given"},
		{[]string{"run", "--min-sources=9", "--pool=pool.ntp.org"}, "--min-sources 9 but only 4 source(s) given"},
	} {
		reached, stderr, code := runStub(tc.args...)
		if reached || code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("slewd %v: exit %d, reached %v, %q; want 2 and %q", tc.args, code, reached, stderr, tc.want)
		}
	}
}

// Usage errors exit 2 everywhere: an unknown command (urfave/cli's 3 is
// what slewd-boot.service accepts as success), an unknown global flag,
// help for a command that does not exist.
func TestUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{{"bogus"}, {"--bogus"}, {"help", "bogus"}, {"run", "--bogus"}, {"boot", "--deadline=soon"}} {
		_, stderr, code := runApp(args...)
		if code != 2 {
			t.Errorf("slewd %v: exit %d (%q), want 2", args, code, stderr)
		}
	}
	if _, stderr, _ := runApp("bogus"); !strings.Contains(stderr, `Did you mean "`) {
		t.Errorf("no suggestion: %q", stderr)
	}
	if out, _, code := runApp("help", "run"); code != 0 || !strings.Contains(out, "slewd run") {
		t.Errorf("slewd help run: exit %d, %q", code, out)
	}
}

// Servers: the variable is comma-separated, an IPv6 address with a port
// needs brackets.
func TestServerHints(t *testing.T) {
	t.Setenv("SLEWD_SERVERS", "a.example b.example")
	if _, stderr, code := runStub("query"); code != 2 || !strings.Contains(stderr, "separated by commas in SLEWD_SERVERS") {
		t.Errorf("SLEWD_SERVERS with a space: exit %d, %q", code, stderr)
	}
	if n := ipv6PortNote("::1:123"); !strings.Contains(n, "[::1]:123") {
		t.Errorf("ipv6PortNote(::1:123) = %q", n)
	}
	if n := ipv6PortNote("[::1]:123"); n != "" {
		t.Errorf("ipv6PortNote([::1]:123) = %q", n)
	}
	if n := ipv6PortNote("2001:db8::1"); n != "" {
		t.Errorf("ipv6PortNote(2001:db8::1) = %q", n)
	}
}

// The one exit-status table is in the man page and docs/deploy.md, and
// names every status the commands use.
func TestExitStatusTable(t *testing.T) {
	for _, code := range []int{boot.ExitOK, boot.ExitError, boot.ExitUsage, boot.ExitNoSync, boot.ExitNoSyncRequired, boot.ExitRefused, boot.ExitNoPerm} {
		if !strings.Contains(exitStatusTable, fmt.Sprintf("\n%4d  ", code)) {
			t.Errorf("exit status %d is not in the table", code)
		}
	}
	deploy, err := os.ReadFile(filepath.Join("..", "..", "docs", "deploy.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(deploy), "```\n"+exitStatusTable+"\n```") {
		t.Errorf("docs/deploy.md lacks the exit-status table exactly as cmd/slewd/exitcodes.go has it:\n%s", exitStatusTable)
	}
}
