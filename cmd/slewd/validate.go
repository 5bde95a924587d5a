package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"slewd/adjtime"
	"slewd/clock"
	"slewd/ntpclient"
)

// One validation layer for every flag and environment variable: each
// flag's value is checked against its row in flagRules (floats finite and
// in range, durations positive where 0 or less means nothing, integers
// range-checked instead of truncated), then the command's combinations
// (comboRules), before any command runs. A refusal names the flag (or the
// variable that set it), the value and what is allowed, and exits 2.
//
// A new flag needs a row here: TestFlagValidationTable walks every flag of
// every command and fails for one without.

// rule checks one flag. allowed says what the flag takes; bad are values
// the table test expects refused besides those it derives from the limits.
type rule struct {
	check   func(c *cli.Context, name string) error
	allowed string
	// Limits, for the table test's generated cases.
	kind             string // "duration", "float", "int", "uint", "string", "none"
	min, max         float64
	maxExclusive     bool
	zeroOK           bool // 0 has a meaning of its own (default, for ever)
	bad              []string
	good             []string // values that must pass (besides the default)
	why              string   // for kind "none": why nothing is checked
	envSeparatorHint string
}

// flagRules are keyed by flag name, or "command.flag" where a command's
// flag means something else than the shared one.
var flagRules = map[string]rule{
	// clientFlags.
	"server":       serverRule("SLEWD_SERVERS"),
	"pool":         serverRule("SLEWD_POOLS"),
	"pool-size":    intIn(1, 64),
	"min-sources":  intIn(0, 1000).zero("0 (automatic: 1 with one server, else a majority)"),
	"minpoll":      durationIn(ntpclient.MinPollFloor, 36*time.Hour),
	"maxpoll":      durationIn(ntpclient.MinPollFloor, 36*time.Hour),
	"poll":         durationIn(ntpclient.MinPollFloor, 36*time.Hour).zero("0 (adaptive)"),
	"timeout":      durationIn(time.Millisecond, 10*time.Minute),
	"keyfile":      notEmpty(),
	"key":          uintIn(1, math.MaxUint32),
	"servers-from": notEmpty(),

	// Flags other branches add (configuration file, metrics, control
	// socket): a path or address given as "" is refused; their own
	// checks (a parse, a listen) say the rest.
	"nts-ca":         notEmpty(),
	"phc":            notEmpty(),
	"phc-poll":       durationIn(10*time.Millisecond, time.Hour),
	"monitor-only":   noCheck("its own parse takes yes, no or auto and refuses the rest"),
	"config":         noCheck(`a path; "" reads no configuration file`),
	"metrics-listen": notEmpty(),
	"control-socket": notEmpty(),

	// run.
	"max-offset":     durationIn(time.Millisecond, 365*24*time.Hour),
	"max-slew-rate":  slewRateRule(),
	"slew-method":    oneOf("pll", "tick"),
	"sync-threshold": durationIn(time.Microsecond, clock.MaxErrorLimit*time.Microsecond),
	"user":           noCheck("a user name or UID[:GID], looked up at start; \"\" stays root"),
	"state-dir":      notEmpty(),
	"run-dir":        notEmpty(),
	"log-level":      oneOf("debug", "info", "warn", "error"),
	"log-format":     oneOf("text", "json"),
	// Foreign steps (docs/guests.md): the step threshold is a correction,
	// so the daemon's bounds.
	"step-forward-over": durationIn(time.Millisecond, 365*24*time.Hour).zero("0 (never step)"),

	// boot.
	"step-threshold": durationIn(time.Microsecond, 365*24*time.Hour),
	"deadline":       durationIn(time.Millisecond, 24*time.Hour).zero("0 (enough for all the samples)"),
	"boot.deadline":  durationIn(time.Millisecond, 24*time.Hour),

	// sync, query.
	"samples":        intIn(1, 32),
	"sync.samples":   intIn(1, 8),
	"interval":       durationIn(10*time.Millisecond, time.Hour),
	"wait.timeout":   durationIn(time.Millisecond, 365*24*time.Hour).zero("0 (wait for ever)"),
	"max-error":      durationIn(0, clock.MaxErrorLimit*time.Microsecond).zero(""),
	"max-correction": durationIn(0, 365*24*time.Hour).zero(""),
	"max-behind":     durationIn(0, 365*24*time.Hour).zero(""),
	"max-ahead":      durationIn(0, 365*24*time.Hour).zero(""),
	"status-max-age": durationIn(time.Second, 7*24*time.Hour),

	// simulate.
	"clock-error":            signedDurationRule(),
	"drift":                  floatIn(-100000, 100000, "ppm"),
	"wander":                 floatIn(0, 1e-3, "s/s per √s"),
	"servers":                intIn(1, 100),
	"falsetickers":           intIn(0, 99),
	"delay":                  durationIn(0, 10*time.Second).zero(""),
	"jitter":                 durationIn(0, 10*time.Second).zero(""),
	"asymmetry":              durationIn(0, 10*time.Second).zero(""),
	"loss":                   floatIn(0, 1, "").exclusive(),
	"simulate.poll":          durationIn(16*time.Second, 36*time.Hour).zero("0 (adaptive)"),
	"duration":               durationIn(time.Second, 30*24*time.Hour),
	"seed":                   noCheck("any 64-bit number is a seed"),
	"kill-at":                killAtRule(),
	"restart-after":          durationIn(0, 24*time.Hour).zero("0 (never)"),
	"step-by":                signedDurationRule(),
	"step-at":                durationIn(0, 30*24*time.Hour).zero(""),
	"plot":                   notEmpty(),
	"agent-period":           durationIn(time.Second, 24*time.Hour).zero("0 (no agent)"),
	"agent-start":            durationIn(0, 30*24*time.Hour).zero(""),
	"agent-threshold":        durationIn(time.Microsecond, 24*time.Hour),
	"agent-offset":           signedDurationRule(),
	"suspend-for":            durationIn(time.Second, 30*24*time.Hour).zero("0 (no suspend)"),
	"suspend-at":             durationIn(0, 30*24*time.Hour).zero(""),
	"suspend-error":          signedDurationRule(),
	"leap-second":            oneOf("insert", "delete"),
	"leap-at":                durationIn(time.Second, 30*24*time.Hour),
	"leap-ignorers":          intIn(0, 99),
	"simulate.max-slew-rate": slewRateRule(),
	"outage-for":             durationIn(time.Second, 30*24*time.Hour).zero("0 (no outage)"),
	"outage-at":              durationIn(0, 30*24*time.Hour).zero(""),
	"kiss":                   oneOf("rate", "deny", "rstr"),
	"kiss-at":                durationIn(0, 30*24*time.Hour).zero(""),
	"kiss-for":               durationIn(time.Second, 30*24*time.Hour).zero("0 (to the end)"),
	"dns-fail-for":           durationIn(time.Second, 30*24*time.Hour).zero("0 (DNS never fails)"),
	"dns-fail-at":            durationIn(0, 30*24*time.Hour).zero(""),
	"converge-within":        durationIn(time.Microsecond, time.Hour),
}

// comboRules refuse contradictory combinations, per command.
// (Every command with --minpoll also gets pollCombo; simulate's are in
// validateSim.)
var comboRules = map[string][]func(c *cli.Context) error{}

// pollCombo: --minpoll at most --maxpoll, and a fixed --poll within them
// when they are given.
func pollCombo(c *cli.Context) error {
	if !hasFlag(c, "minpoll") {
		return nil
	}
	lo, hi := c.Duration("minpoll"), c.Duration("maxpoll")
	if lo > hi {
		return fmt.Errorf("--minpoll %v is longer than --maxpoll %v: give minpoll ≤ maxpoll", lo, hi)
	}
	if p := c.Duration("poll"); p != 0 {
		if c.IsSet("minpoll") && p < lo {
			return fmt.Errorf("--poll %v is shorter than --minpoll %v: give one or the other", p, lo)
		}
		if c.IsSet("maxpoll") && p > hi {
			return fmt.Errorf("--poll %v is longer than --maxpoll %v: give one or the other", p, hi)
		}
	}
	return nil
}

// quorumCombo: --min-sources no more than the sources given (servers as
// flags and arguments, pools times --pool-size), which could never agree.
// Sources from --servers-from are counted when the file is read.
func quorumCombo(c *cli.Context) error {
	n := c.Int("min-sources")
	if n == 0 || len(c.StringSlice("servers-from")) > 0 {
		return nil
	}
	servers := len(nonEmpty(slices.Concat(c.StringSlice("server"), c.Args().Slice())))
	pools := len(nonEmpty(slices.Clone(c.StringSlice("pool"))))
	have := servers + pools*c.Int("pool-size")
	if have > 0 && n > have {
		return fmt.Errorf("--min-sources %d but only %d source(s) given (%d server(s), %d pool(s) of --pool-size %d): they could never agree",
			n, have, servers, pools, c.Int("pool-size"))
	}
	return nil
}

// ruleFor returns the rule of a command's flag.
func ruleFor(cmd, name string) (rule, bool) {
	if r, ok := flagRules[cmd+"."+name]; ok {
		return r, true
	}
	r, ok := flagRules[name]
	return r, ok
}

// validateFlags is every command's Before: each flag against its rule,
// then the command's combinations.
func validateFlags(c *cli.Context) error {
	for _, f := range c.Command.Flags {
		if _, ok := f.(*cli.BoolFlag); ok {
			continue
		}
		name := f.Names()[0]
		r, ok := ruleFor(c.Command.Name, name)
		if !ok || r.check == nil {
			// TestFlagValidationTable fails for a flag without a row;
			// at run time it is let through rather than break the command.
			continue
		}
		if err := r.check(c, name); err != nil {
			return cli.Exit(fmt.Sprintf("slewd %s: %s %v (see slewd %s --help)", c.Command.Name, source(c, f), err, c.Command.Name), 2)
		}
	}
	combos := comboRules[c.Command.Name]
	if hasFlag(c, "minpoll") {
		combos = append(combos, pollCombo)
	}
	if hasFlag(c, "min-sources") {
		combos = append(combos, quorumCombo)
	}
	for _, check := range combos {
		if err := check(c); err != nil {
			return cli.Exit(fmt.Sprintf("slewd %s: %v", c.Command.Name, err), 2)
		}
	}
	return nil
}

// argsKey is where newApp keeps the command line (app.Metadata), so that
// a refusal names the variable when the value came from the environment.
const argsKey = "slewd.args"

// source names where a flag's value came from: "--name VALUE", or
// "SLEWD_X=VALUE (--name)" when only the environment set it.
func source(c *cli.Context, f cli.Flag) string {
	name := f.Names()[0]
	val := flagValueString(c, f)
	if ev, ok := f.(interface{ GetEnvVars() []string }); ok && !onCommandLine(c, name) {
		for _, e := range ev.GetEnvVars() {
			if v, set := os.LookupEnv(e); set && v != "" {
				return fmt.Sprintf("%s=%q (--%s):", e, v, name)
			}
		}
	}
	return fmt.Sprintf("--%s %s:", name, val)
}

// onCommandLine says whether the command line gave the flag (not only
// its environment variable or its default).
func onCommandLine(c *cli.Context, name string) bool {
	var names []string
	for _, f := range c.Command.Flags {
		if slices.Contains(f.Names(), name) {
			names = f.Names()
		}
	}
	args, _ := c.App.Metadata[argsKey].([]string)
	return slices.ContainsFunc(args, func(a string) bool {
		if a == "--" {
			return false
		}
		return slices.ContainsFunc(names, func(n string) bool {
			for _, dash := range []string{"-" + n, "--" + n} {
				if a == dash || strings.HasPrefix(a, dash+"=") {
					return true
				}
			}
			return false
		})
	})
}

func flagValueString(c *cli.Context, f cli.Flag) string {
	name := f.Names()[0]
	switch f.(type) {
	case *cli.StringSliceFlag:
		return fmt.Sprintf("%q", c.StringSlice(name))
	case *cli.StringFlag:
		return fmt.Sprintf("%q", c.String(name))
	case *cli.DurationFlag:
		return c.Duration(name).String()
	case *cli.Float64Flag:
		return strconv.FormatFloat(c.Float64(name), 'g', -1, 64)
	}
	return fmt.Sprint(c.Value(name))
}

// Typed rule constructors.

func durationIn(lo, hi time.Duration) rule {
	r := rule{kind: "duration", min: float64(lo), max: float64(hi)}
	r.allowed = fmt.Sprintf("give %v to %v", fmtDur(lo), fmtDur(hi))
	if lo == 0 {
		r.allowed = fmt.Sprintf("give 0 to %v", fmtDur(hi))
	}
	r.check = func(c *cli.Context, name string) error {
		if d := c.Duration(name); float64(d) < r.min || float64(d) > r.max {
			return errors.New(r.allowed)
		}
		return nil
	}
	return r
}

// zero allows 0 with the meaning given ("" when 0 is simply in range).
func (r rule) zero(meaning string) rule {
	r.zeroOK = true
	if meaning != "" {
		r.allowed += ", or " + meaning
	}
	check := r.check
	r.check = func(c *cli.Context, name string) error {
		if c.Value(name) == reflectZero(c.Value(name)) {
			return nil
		}
		if err := check(c, name); err != nil {
			return errors.New(r.allowed)
		}
		return nil
	}
	return r
}

func reflectZero(v any) any {
	switch v.(type) {
	case time.Duration:
		return time.Duration(0)
	case int:
		return 0
	case float64:
		return 0.0
	case uint:
		return uint(0)
	}
	return nil
}

func (r rule) exclusive() rule {
	r.maxExclusive = true
	r.allowed = strings.Replace(r.allowed, fmt.Sprintf("to %g", r.max), fmt.Sprintf("up to (not including) %g", r.max), 1)
	lo, hi, allowed := r.min, r.max, r.allowed
	r.check = func(c *cli.Context, name string) error {
		v := c.Float64(name)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return errors.New("not a finite number: " + allowed)
		}
		if v < lo || v >= hi {
			return errors.New(allowed)
		}
		return nil
	}
	return r
}

func floatIn(lo, hi float64, unit string) rule {
	r := rule{kind: "float", min: lo, max: hi}
	r.allowed = strings.TrimSpace(fmt.Sprintf("give a number from %g to %g %s", lo, hi, unit))
	r.check = func(c *cli.Context, name string) error {
		v := c.Float64(name)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return errors.New("not a finite number: " + r.allowed)
		}
		if v < lo || v > hi {
			return errors.New(r.allowed)
		}
		return nil
	}
	return r
}

// slewRateRule: from 500 ppm (ntpd's slew, and what the kernel's own
// adjtime and PLL tails run at) to the kernel's limit.
func slewRateRule() rule {
	r := floatIn(clock.SingleshotRate, adjtime.KernelMaxRatePPM, "ppm")
	r.allowed += fmt.Sprintf(" (%d is the kernel's limit: tick ±10 %% plus frequency ±500 ppm)", adjtime.KernelMaxRatePPM)
	lo, hi, allowed := r.min, r.max, r.allowed
	r.check = func(c *cli.Context, name string) error {
		v := c.Float64(name)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return errors.New("not a finite number: " + allowed)
		}
		if v < lo || v > hi {
			return errors.New(allowed)
		}
		return nil
	}
	return r
}

func intIn(lo, hi int64) rule {
	r := rule{kind: "int", min: float64(lo), max: float64(hi)}
	r.allowed = fmt.Sprintf("give a whole number from %d to %d", lo, hi)
	r.check = func(c *cli.Context, name string) error {
		v := int64(c.Int(name))
		if raw, ok := envValue(c, name); ok {
			// urfave/cli parses a variable as 64 bits and truncates it to
			// int (32 bits on arm): look at the value as written.
			n, err := strconv.ParseInt(raw, 0, 64)
			if err != nil || n != v {
				return errors.New(r.allowed)
			}
		}
		if v < lo || v > hi {
			return errors.New(r.allowed)
		}
		return nil
	}
	return r
}

// envValue is the raw value of the variable that set a flag, when the
// command line did not.
func envValue(c *cli.Context, name string) (string, bool) {
	if onCommandLine(c, name) {
		return "", false
	}
	for _, f := range c.Command.Flags {
		ev, ok := f.(interface{ GetEnvVars() []string })
		if !ok || !slices.Contains(f.Names(), name) {
			continue
		}
		for _, e := range ev.GetEnvVars() {
			if v, set := os.LookupEnv(e); set && strings.TrimSpace(v) != "" {
				return strings.TrimSpace(v), true
			}
		}
	}
	return "", false
}

func uintIn(lo, hi uint64) rule {
	r := rule{kind: "uint", min: float64(lo), max: float64(hi), zeroOK: true}
	r.allowed = fmt.Sprintf("give a whole number from %d to %d", lo, hi)
	r.check = func(c *cli.Context, name string) error {
		v := uint64(c.Uint(name))
		if v == 0 && !c.IsSet(name) {
			return nil // not given
		}
		if raw, ok := envValue(c, name); ok {
			if n, err := strconv.ParseUint(raw, 0, 64); err != nil || n != v {
				return errors.New(r.allowed) // truncated to 32 bits
			}
		}
		if v < lo || v > hi {
			return errors.New(r.allowed)
		}
		return nil
	}
	return r
}

func oneOf(values ...string) rule {
	r := rule{kind: "string", bad: []string{"", "bogus"}, good: values}
	r.allowed = "give " + strings.Join(values, ", ")
	r.check = func(c *cli.Context, name string) error {
		v := strings.ToLower(c.String(name))
		if v == "" && !onCommandLine(c, name) {
			return nil // not given, or an empty variable: the default or the file's
		}
		if !slices.Contains(values, v) {
			return errors.New(r.allowed)
		}
		return nil
	}
	return r
}

// notEmpty: a path or name flag given as "" on the command line (--plot=
// writes nothing and says nothing otherwise). An empty variable, as
// /etc/default/slewd may have, means not given.
func notEmpty() rule {
	r := rule{kind: "string", bad: []string{""}, allowed: "give a non-empty value"}
	r.check = func(c *cli.Context, name string) error {
		if !onCommandLine(c, name) {
			return nil
		}
		vals := []string{""}
		switch v := c.Value(name).(type) {
		case string:
			vals = []string{v}
		case cli.StringSlice:
			if s := c.StringSlice(name); len(s) > 0 {
				vals = s
			}
		}
		for _, s := range vals {
			if strings.TrimSpace(s) == "" {
				return errors.New(r.allowed)
			}
		}
		return nil
	}
	return r
}

func noCheck(why string) rule { return rule{kind: "none", why: why} }

// serverRule checks each server or pool given by a flag or its variable
// (comma-separated, as urfave/cli splits it).
func serverRule(envVar string) rule {
	r := rule{kind: "string", bad: []string{"a b", "bad[spec", "fe80::1::2:123"},
		good:    []string{"pool.ntp.org", "192.0.2.1:123", "[::1]:123"},
		allowed: "give HOST, HOST:PORT, IPv4 or [IPv6]:PORT"}
	r.check = func(c *cli.Context, name string) error {
		for _, s := range nonEmpty(slices.Clone(c.StringSlice(name))) {
			if _, err := ntpclient.ParseSource(s); err != nil {
				return errors.New(sourceHint(s, err, envVar))
			}
		}
		return nil
	}
	return r
}

// ipv6PortNote is said when a bare IPv6 address ends in what looks like a
// port: "::1:123" is the address ::1:123 on port 123, not ::1 port 123.
func ipv6PortNote(s string) string {
	if strings.Count(s, ":") < 2 || strings.ContainsAny(s, "[]") {
		return ""
	}
	last := s[strings.LastIndexByte(s, ':')+1:]
	if _, err := strconv.ParseUint(last, 10, 16); err != nil || len(last) < 2 {
		return ""
	}
	host := s[:strings.LastIndexByte(s, ':')]
	return fmt.Sprintf("%s is taken as the IPv6 address %s on port 123; for %s port %s write [%s]:%s", s, s, host, last, host, last)
}

// sourceHint words a bad server: brackets for an IPv6 address with a
// port, commas in the environment variable.
func sourceHint(s string, err error, envVar string) string {
	msg := err.Error()
	switch {
	case strings.Count(s, ":") >= 2 && !strings.Contains(s, "["):
		host, port := s[:strings.LastIndexByte(s, ':')], s[strings.LastIndexByte(s, ':')+1:]
		msg = fmt.Sprintf("%q: an IPv6 address with a port is written in brackets: [%s]:%s (a bare IPv6 address takes port 123)", s, host, port)
	case strings.ContainsAny(s, " \t") && envVar != "":
		msg = fmt.Sprintf("%q: servers are separated by commas in %s (e.g. %s=\"a.example,b.example\") and given one per argument on the command line",
			s, envVar, envVar)
	}
	return msg
}

func signedDurationRule() rule {
	r := rule{kind: "string", bad: []string{"garbage", "NaN"}, good: []string{"+54s", "-13s", "250ms"},
		allowed: "write it like +54s, -13s or 250ms"}
	r.check = func(c *cli.Context, name string) error {
		s := c.String(name)
		if s == "" && !c.IsSet(name) {
			return nil
		}
		if _, err := parseSignedDuration(s); err != nil {
			return errors.New(r.allowed)
		}
		return nil
	}
	return r
}

func killAtRule() rule {
	r := rule{kind: "string", bad: []string{"soon", "-5s", "0s"}, good: []string{"200s"},
		allowed: "give positive virtual times like 200s or 3m20s"}
	r.check = func(c *cli.Context, name string) error {
		for _, s := range c.StringSlice(name) {
			if d, err := time.ParseDuration(s); err != nil || d <= 0 {
				return errors.New(r.allowed)
			}
		}
		return nil
	}
	return r
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= 24*time.Hour && d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd (%v)", d/(24*time.Hour), d)
	}
	return d.String()
}
