package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"math"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"slewd/boot"
	"slewd/ntpclient"
)

// ntpdate compatibility: `slewd ntpdate ...`, or slewd invoked as ntpdate
// through a symlink (main rewrites argv). It parses ntpdate's own flags
// (getopt "46a:bBde:k:o:p:qst:uv", options and servers in any order) and
// prints ntpdate's lines, so cron jobs and scripts that call ntpdate keep
// working, but the clock is slewed, never stepped back.

const ntpdateUsage = `usage: ntpdate [-46bBdqsuv] [-a key#] [-e delay] [-k file] [-p samples] [-o version#] [-t timeo] server ...

slewd's ntpdate: the clock is slewed by the kernel's adjtime (500 ppm), never stepped back.
  -q          query only: print the servers' offsets, change nothing
  -B          slew (the default here: ntpdate stepped offsets over 0.5 s)
  -b          step, but only forward; a clock that is ahead is slewed instead
              (never back: "slewd boot" steps a clock that is ahead back once, at boot)
  -u          accepted (slewd always uses an unprivileged source port)
  -s          log to syslog (facility daemon) instead of standard output
  -p samples  queries per server, 1 to 8 (default 4)
  -t timeout  seconds to wait for each answer (default 2; also the interval
              between queries to one server, at least 1 s)
  -v          print the version first        -d  debug: show everything, change nothing
  -4 / -6     IPv4 / IPv6 addresses only
  -a key -k file  authenticate with key number (file: ntp.keys format, default /etc/ntp.keys)
  -e, -o      accepted and ignored
  --servers-from FILE    take the servers of an ntp.conf or chrony.conf (and their key)
  --force                slew even when slewd run is keeping the clock
Servers may carry a port: HOST:PORT, [IPv6]:PORT.
Exit status: 0 done (or, with -q, measured), 1 no suitable server or the clock
could not be adjusted or (without -q) the offset is beyond 2145 s, 2 bad arguments.
`

// ntpdateOptions are ntpdate's flags.
type ntpdateOptions struct {
	query, debug, verbose, syslog bool // -q -d -v -s
	step, slew                    bool // -b -B (the last one given wins)
	samples                       int  // -p; 0: ntpdate's default
	timeout                       time.Duration
	ipv4, ipv6                    bool
	keyID                         uint32
	keyFile                       string
	keyFileSet                    bool // -k given
	force, help                   bool
	serversFrom                   []string
	servers                       []string
}

// parseNtpdateArgs parses ntpdate's command line as its getopt does, but
// also lets options follow the servers (GNU style) and takes slewd's long
// options. The error text is what ntpdate prints.
func parseNtpdateArgs(args []string) (ntpdateOptions, error) {
	o := ntpdateOptions{keyFile: "/etc/ntp.keys"}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			o.servers = append(o.servers, args[i+1:]...)
			return o, nil
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			switch name {
			case "allow-backward-step":
				return o, errors.New("--allow-backward-step is gone: slewd's ntpdate never steps the clock back; " +
					"to step a clock that is ahead back once, run `slewd boot` (without --forward-only) before services start")
			case "force":
				o.force = true
			case "help":
				o.help = true
			case "servers-from":
				if !hasVal {
					if i+1 >= len(args) {
						return o, errors.New("option --servers-from needs a file")
					}
					i++
					val = args[i]
				}
				o.serversFrom = append(o.serversFrom, val)
			default:
				return o, fmt.Errorf("unknown option %s", a)
			}
			continue
		case len(a) < 2 || a[0] != '-':
			o.servers = append(o.servers, a)
			continue
		}
		for j := 1; j < len(a); j++ {
			flag := a[j]
			if strings.IndexByte("aekopt", flag) >= 0 {
				val := a[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						return o, fmt.Errorf("option requires an argument -- '%c'", flag)
					}
					i++
					val = args[i]
				}
				if err := o.setValue(flag, val); err != nil {
					return o, err
				}
				break
			}
			switch flag {
			case '4':
				o.ipv4, o.ipv6 = true, false
			case '6':
				o.ipv6, o.ipv4 = true, false
			case 'b':
				o.step, o.slew = true, false
			case 'B':
				o.slew, o.step = true, false
			case 'd':
				o.debug = true
			case 'q':
				o.query = true
			case 's':
				o.syslog = true
			case 'u':
			case 'v':
				o.verbose = true
			case 'h', '?':
				o.help = true
			default:
				return o, fmt.Errorf("invalid option -- '%c'", flag)
			}
		}
	}
	return o, nil
}

func (o *ntpdateOptions) setValue(flag byte, val string) error {
	switch flag {
	case 'a':
		n, err := strconv.ParseUint(val, 10, 32)
		if err != nil || n == 0 {
			return fmt.Errorf("key number %q is invalid", val)
		}
		o.keyID = uint32(n)
	case 'k':
		o.keyFile, o.keyFileSet = val, true
	case 'p':
		n, err := strconv.Atoi(val)
		if err != nil || n <= 0 || n > 8 {
			return fmt.Errorf("number of samples (%s) is invalid", val)
		}
		o.samples = n
	case 't':
		f, err := strconv.ParseFloat(val, 64)
		if err != nil || math.IsNaN(f) || f <= 0 || f > 3600 {
			return fmt.Errorf("timeout %s is undecodeable", val)
		}
		o.timeout = time.Duration(f * float64(time.Second))
	case 'e': // authentication delay: checked as ntpdate does, then unused
		f, err := strconv.ParseFloat(val, 64)
		if err != nil || math.IsNaN(f) || f < 0 || f >= 1 {
			return fmt.Errorf("encryption delay %s is unlikely", val)
		}
	case 'o': // NTP version: checked, then beevik/ntp decides (4)
		if n, err := strconv.Atoi(val); err != nil || n < 1 || n > 4 {
			return fmt.Errorf("NTP version %s is invalid", val)
		}
	}
	return nil
}

// ntpdateSink is where ntpdate's messages go: standard output (errors:
// standard error) with ntpdate's timestamp prefix, or syslog (-s).
type ntpdateSink interface {
	Notice(msg string) error
	Err(msg string) error
}

// stdoutSink writes "23 Nov 19:40:12 ntpdate[1234]: msg" (ntp's msyslog
// format: %2d day, local time): notices to w, errors to errW as ntpdate
// writes its LOG_ERR messages to standard error (w if errW is nil).
type stdoutSink struct {
	w, errW io.Writer
	now     func() time.Time
	pid     int
}

func (s stdoutSink) Notice(msg string) error { return s.print(s.w, msg) }

func (s stdoutSink) Err(msg string) error {
	if s.errW == nil {
		return s.print(s.w, msg)
	}
	return s.print(s.errW, msg)
}

func (s stdoutSink) print(w io.Writer, msg string) error {
	_, err := fmt.Fprintf(w, "%s ntpdate[%d]: %s\n", s.now().Format("_2 Jan 15:04:05"), s.pid, msg)
	return err
}

// openSyslog is ntpdate -s (openlog("ntpdate", LOG_PID, LOG_DAEMON)). A
// variable so that tests capture it.
var openSyslog = func() (ntpdateSink, error) {
	return syslog.New(syslog.LOG_NOTICE|syslog.LOG_DAEMON, "ntpdate")
}

func init() {
	register(37, &cli.Command{
		Name:            "ntpdate",
		Usage:           "ntpdate-compatible front end of `slewd sync` (also when slewd is invoked as ntpdate)",
		ArgsUsage:       "[-46bBdqsuv] [-a key#] [-k file] [-p samples] [-t timeo] server ...",
		Description:     strings.TrimSpace(ntpdateUsage),
		SkipFlagParsing: true,
		HideHelp:        true,
		Action:          ntpdateAction,
	})
}

func ntpdateAction(c *cli.Context) error {
	o, err := parseNtpdateArgs(c.Args().Slice())
	if err != nil {
		fmt.Fprintf(c.App.ErrWriter, "ntpdate: %v\n", err)
		fmt.Fprint(c.App.ErrWriter, ntpdateUsage)
		return cli.Exit("", boot.ExitUsage)
	}
	if o.help {
		fmt.Fprint(c.App.Writer, ntpdateUsage)
		return nil
	}
	var sink ntpdateSink = stdoutSink{w: c.App.Writer, errW: c.App.ErrWriter, now: time.Now, pid: os.Getpid()}
	if o.syslog {
		s, err := openSyslog()
		if err != nil {
			fmt.Fprintf(c.App.ErrWriter, "ntpdate: no syslog (%v): logging to standard output\n", err)
		} else {
			sink = s
		}
	}
	if o.verbose || o.debug {
		sink.Notice(fmt.Sprintf("slewd %s (ntpdate compatible: slews, and steps only forward)", version))
	}

	cfg, err := ntpdateClientConfig(c, &o)
	if err != nil {
		sink.Err(err.Error())
		return cli.Exit("", 1)
	}
	level := slog.LevelError + 4 // quiet, as ntpdate is
	if o.debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: level}))
	env := newOneShotEnv(c, log)
	if o.ipv4 || o.ipv6 {
		env.Net.Resolver = familyResolver{r: env.Net.Resolver, ipv4: o.ipv4}
	}
	rep, err := boot.Sync(c.Context, boot.SyncConfig{
		Client: cfg, Query: o.query || o.debug, Step: o.step, Force: o.force,
	}, env)
	if err != nil {
		sink.Err(ntpdateError(err))
		return cli.Exit("", 1)
	}
	for _, d := range rep.Details {
		if d.Addr == "" && strings.HasPrefix(d.Reason, "DNS lookup") {
			sink.Err(fmt.Sprintf("Error resolving %s: %s", hostOnly(d.Source), boot.OneShotWords(d.Reason)))
		}
	}
	if o.query || o.debug {
		for _, d := range rep.Details {
			printNtpdateServer(c.App.Writer, d, o.debug)
		}
	}
	return ntpdateResult(sink, rep, o)
}

// ntpdateClientConfig turns ntpdate's options into the client's.
func ntpdateClientConfig(c *cli.Context, o *ntpdateOptions) (ntpclient.Config, error) {
	// ntpdate needs a single server: it uses whichever answered, and the
	// intersection algorithm still rejects falsetickers among several.
	cfg := ntpclient.Config{Servers: o.servers, MinSources: 1}
	// The key as query takes it: -a and -k (ntp.keys format), else the
	// key and key file of the --servers-from configuration.
	key := keyChoice{ID: o.keyID, File: o.keyFile, Format: ntpclient.KeyFormatNTP}
	isSet := func(name string) bool {
		return (name == "key" && o.keyID != 0) || (name == "keyfile" && o.keyFileSet)
	}
	note := func(n string) { fmt.Fprintln(c.App.ErrWriter, "ntpdate: note:", n) }
	if err := importServers(o.serversFrom, &cfg, &key, isSet, note); err != nil {
		return cfg, err
	}
	if o.ipv4 || o.ipv6 {
		kept := cfg.Servers[:0:0]
		for _, s := range cfg.Servers {
			sp, err := ntpclient.ParseSource(s)
			if err == nil && sp.IsIP() && netip.MustParseAddr(sp.Host).Is4() != o.ipv4 {
				fmt.Fprintf(c.App.ErrWriter, "Error resolving %s: wrong address family for -%s\n", s, map[bool]string{true: "4", false: "6"}[o.ipv4])
				continue
			}
			kept = append(kept, s)
		}
		cfg.Servers = kept
	}
	if len(cfg.Servers) == 0 && len(cfg.Pools) == 0 {
		return cfg, errors.New("no servers can be used, exiting")
	}
	for _, s := range cfg.Servers {
		if _, err := ntpclient.ParseSource(s); err != nil {
			return cfg, fmt.Errorf("Can't find host %s: %v", s, err)
		}
	}
	// ntpdate: four samples per server, -q too; the interval between
	// queries to a server is the timeout, at least 1 s (ntpd's rate limiting).
	cfg.Burst = o.samples
	if cfg.Burst == 0 {
		cfg.Burst = 4
	}
	cfg.Timeout = 2 * time.Second
	if o.timeout > 0 {
		cfg.Timeout = o.timeout
	}
	cfg.BurstInterval = max(cfg.Timeout, time.Second)
	if key.ID != 0 {
		k, err := key.load()
		if err != nil {
			return cfg, fmt.Errorf("authentication key %d: %v", key.ID, err)
		}
		cfg.Auth = k
	}
	return cfg, nil
}

// ntpdateResult prints ntpdate's last line and picks its exit status.
func ntpdateResult(sink ntpdateSink, rep boot.Report, o ntpdateOptions) error {
	query := o.query || o.debug
	if query {
		// A query changes nothing, so it refuses nothing: like ntpdate -q
		// it reports the best server that answered, even when the
		// servers do not agree on an estimate.
		offset, server, ok := rep.Offset, bestServer(rep.Details), rep.Estimate != nil
		if !ok {
			if d, found := bestAnswering(rep.Details); found {
				offset, server, ok = d.Offset, hostOnly(d.Addr), true
			}
		}
		if !ok {
			sink.Err("no server suitable for synchronization found")
			return cli.Exit("", 1)
		}
		sink.Notice(fmt.Sprintf("%s time server %s offset %.6f sec", ntpdateVerb(offset, o), server, offset.Seconds()))
		return nil
	}
	switch {
	case rep.Estimate == nil && rep.NoSync != nil:
		sink.Err("no server suitable for synchronization found")
		return cli.Exit("", 1)
	case rep.Estimate == nil:
		// slewd run is keeping the clock.
		sink.Err("slewd run is keeping the clock, exiting (--force to slew anyway)")
		return cli.Exit("", 1)
	case rep.Refused:
		sink.Err(fmt.Sprintf("offset %.6f sec is too large to slew (over %.0f s) and slewd's ntpdate never steps back: "+
			"step it once with `slewd boot` (before services start), or let `slewd run` slew it", rep.Offset.Seconds(), boot.MaxSingleshot.Seconds()))
		return cli.Exit("", 1)
	}
	if rep.BackwardRefused {
		sink.Notice(fmt.Sprintf("not stepping the clock back %.6f sec (slewd's ntpdate never does): slewing instead", -rep.Offset.Seconds()))
	}
	// What was done: a step, or the slew ntpdate calls "adjust".
	verb := "adjust"
	if rep.Action == boot.ActionStep {
		verb = "step"
	}
	sink.Notice(fmt.Sprintf("%s time server %s offset %.6f sec", verb, bestServer(rep.Details), rep.Offset.Seconds()))
	return nil
}

// ntpdateVerb is how ntpdate words what it would do with offset: step
// under -b, adjust under -B, else step from 0.5 s (its CLOCK_ADJ).
func ntpdateVerb(offset time.Duration, o ntpdateOptions) string {
	switch {
	case o.step:
		return "step"
	case o.slew:
		return "adjust"
	case offset.Abs() >= 500*time.Millisecond:
		return "step"
	}
	return "adjust"
}

// bestAnswering is the source with samples, the lowest stratum and then
// the smallest root distance (ntpdate's choice), for a query whose
// sources gave no estimate.
func bestAnswering(details []ntpclient.SourceReport) (ntpclient.SourceReport, bool) {
	best := -1
	for i, d := range details {
		if d.Samples == 0 || d.Addr == "" {
			continue
		}
		if best < 0 || d.Stratum < details[best].Stratum ||
			(d.Stratum == details[best].Stratum && d.RootDistance < details[best].RootDistance) {
			best = i
		}
	}
	if best < 0 {
		return ntpclient.SourceReport{}, false
	}
	return details[best], true
}

// ntpdateError words a failure as ntpdate would.
func ntpdateError(err error) string {
	if errors.Is(err, context.Canceled) {
		return "interrupted"
	}
	return "Can't adjust the time of day: " + err.Error()
}

// bestServer is the address (without port) of the selected source with
// the smallest root distance: the one ntpdate would name.
func bestServer(details []ntpclient.SourceReport) string {
	best := -1
	for i, d := range details {
		if d.Selected && (best < 0 || d.RootDistance < details[best].RootDistance) {
			best = i
		}
	}
	if best < 0 {
		return "(none)"
	}
	return hostOnly(details[best].Addr)
}

func hostOnly(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// printNtpdateServer is ntpdate's print_server: one line per server
// queried, or a block of details with -d. A server that gave no usable
// sample prints zeros, as in ntpdate ("stratum 0, offset 0.000000, delay
// 0.00000" for one that never answered); without -d, one whose name did
// not resolve (no address) is not printed.
func printNtpdateServer(w io.Writer, d ntpclient.SourceReport, debug bool) {
	if !debug {
		if d.Addr == "" {
			return
		}
		if d.Samples == 0 {
			d.Offset, d.Delay = 0, 0
		}
		fmt.Fprintf(w, "server %s, stratum %d, offset %.6f, delay %.5f\n", hostOnly(d.Addr), d.Stratum, d.Offset.Seconds(), d.Delay.Seconds())
		return
	}
	_, port, _ := net.SplitHostPort(d.Addr)
	fmt.Fprintf(w, "server %s, port %s\n", hostOnly(d.Addr), port)
	fmt.Fprintf(w, "stratum %d, leap %s, refid [%s], reach %03o, samples %d\n", d.Stratum, d.Leap, ntpclient.RefIDString(d.Stratum, d.RefID), d.Reach, d.Samples)
	fmt.Fprintf(w, "delay %.5f, dispersion %.5f, jitter %.6f, root distance %.6f, offset %.6f\n", d.Delay.Seconds(), d.Dispersion.Seconds(), d.Jitter.Seconds(), d.RootDistance.Seconds(), d.Offset.Seconds())
	if !d.Selected && d.Reason != "" {
		fmt.Fprintf(w, "not used: %s\n", d.Reason)
	}
	fmt.Fprintln(w)
}

// familyResolver keeps the addresses of one family (ntpdate -4 / -6).
type familyResolver struct {
	r    ntpclient.Resolver
	ipv4 bool
}

func (f familyResolver) LookupHost(ctx context.Context, host string) ([]string, error) {
	r := f.r
	if r == nil {
		r = net.DefaultResolver
	}
	addrs, err := r.LookupHost(ctx, host)
	if err != nil {
		return nil, err
	}
	var kept []string
	for _, a := range addrs {
		if ip, err := netip.ParseAddr(a); err == nil && ip.Unmap().Is4() == f.ipv4 {
			kept = append(kept, a)
		}
	}
	if len(kept) == 0 {
		return nil, &net.DNSError{Err: "no address of the requested family", Name: host, IsNotFound: true}
	}
	return kept, nil
}
