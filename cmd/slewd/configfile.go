package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"slewd/adjtime"
	"slewd/config"
	"slewd/ntpclient"
)

// configFlag is --config, part of clientFlags: the file's sources serve
// every measuring command, its other directives `slewd run`.
func configFlag() cli.Flag {
	return &cli.StringFlag{Name: "config", Value: config.DefaultPath, EnvVars: []string{"SLEWD_CONFIG_FILE"},
		Usage: `configuration file (see CONFIGURATION FILE in slewd(8)); "" for none. Flags and SLEWD_ variables override it`}
}

// notDirectives are flags of `slewd run` that are not settings of the
// file: the sources have lines of their own, and the file does not name
// itself.
var notDirectives = map[string]bool{"server": true, "pool": true, "config": true, "help": true}

// directiveChecks refuse in the file, with its file:line, what the flags'
// own checks would refuse later without one.
var directiveChecks = map[string]func(string) error{
	"slew-method": func(v string) error { _, err := adjtime.ParseMethod(v); return err },
	"max-slew-rate": func(v string) error {
		f, _ := strconv.ParseFloat(v, 64)
		return checkMaxSlewRate(f)
	},
	"log-level": func(v string) error {
		var l slog.Level
		if l.UnmarshalText([]byte(v)) != nil {
			return errors.New("use debug, info, warn or error")
		}
		return nil
	},
	"log-format": func(v string) error {
		if v != "text" && v != "json" {
			return errors.New("use text or json")
		}
		return nil
	},
	"minpoll": pollFloor, "maxpoll": pollFloor, "poll": pollFloor,
	"pool-size": func(v string) error {
		if n, _ := strconv.Atoi(v); n < 1 {
			return errors.New("use at least 1")
		}
		return nil
	},
	"min-sources": func(v string) error {
		if n, _ := strconv.Atoi(v); n < 0 {
			return errors.New("use 0 (automatic) or more")
		}
		return nil
	},
	"state-dir": absolutePath, "run-dir": absolutePath, "keyfile": absolutePath, "servers-from": absolutePath,
}

func pollFloor(v string) error {
	if d, _ := time.ParseDuration(v); d != 0 && d < ntpclient.MinPollFloor {
		return fmt.Errorf("never poll more often than every %v (RFC 4330)", ntpclient.MinPollFloor)
	}
	return nil
}

func absolutePath(v string) error {
	if !filepath.IsAbs(v) {
		return errors.New("give an absolute path")
	}
	return nil
}

// directivesOf is the file's vocabulary: every long flag of flags (those
// of `slewd run`), by the flag's type. A flag of a type it does not know
// is an error, so that a new flag cannot silently lack its directive
// (TestEveryRunFlagIsADirective).
func directivesOf(flags []cli.Flag) (config.Directives, error) {
	d := config.Directives{}
	for _, f := range flags {
		name := f.Names()[0]
		if notDirectives[name] {
			continue
		}
		var kind config.Kind
		switch f.(type) {
		case *cli.StringFlag:
			kind = config.String
		case *cli.BoolFlag:
			kind = config.Bool
		case *cli.DurationFlag:
			kind = config.Duration
		case *cli.IntFlag:
			kind = config.Int
		case *cli.UintFlag:
			kind = config.Uint
		case *cli.Float64Flag:
			kind = config.Float
		case *cli.StringSliceFlag:
			kind = config.List
		default:
			return nil, fmt.Errorf("flag --%s is a %T, which the configuration file cannot hold: teach directivesOf", name, f)
		}
		d[name] = config.Directive{Name: name, Kind: kind, Check: directiveChecks[name]}
	}
	return d, nil
}

// runFlags are the flags of `slewd run`, the daemon: the file's vocabulary.
func runFlags() []cli.Flag { return flagsOf("run") }

// loadedConfig is the configuration file as applied to one command's
// flags: what came from where.
type loadedConfig struct {
	file    *config.File // nil: no file
	origins map[string]string
	// userSources: servers or pools were given as arguments, flags or
	// SLEWD_SERVERS/SLEWD_POOLS, which replace the file's sources.
	userSources bool
}

const loadedKey = "slewd/config"

// readConfig reads --config (nothing for "", and nothing when the
// default file does not exist). Errors exit 2 with the file:line.
func readConfig(c *cli.Context) (*config.File, error) {
	return loadFile(c.String("config"), explicitlySet(c, "config"))
}

// loadFile reads a configuration file with slewd run's directives;
// required: a missing file is an error (one named by --config), else
// it is no file at all (the default path, before one is written).
func loadFile(path string, required bool) (*config.File, error) {
	if path == "" {
		return nil, nil
	}
	dirs, err := directivesOf(runFlags())
	if err != nil {
		return nil, err
	}
	f, err := config.Load(path, dirs)
	if errors.Is(err, fs.ErrNotExist) && !required {
		return nil, nil
	}
	if err != nil {
		return nil, cli.Exit(fmt.Sprintf("configuration: %v", err), 2)
	}
	return f, nil
}

// applyConfig reads the file once per command and sets every flag that
// neither the command line nor the environment set. Commands other than
// run and check-config take only the client directives (sources, polls,
// keys): the others are the daemon's.
func applyConfig(c *cli.Context) (*loadedConfig, error) {
	if lc, ok := c.App.Metadata[loadedKey].(*loadedConfig); ok {
		return lc, nil
	}
	f, err := readConfig(c)
	if err != nil {
		return nil, err
	}
	lc := &loadedConfig{file: f, origins: map[string]string{}}
	daemon := c.Command.Name == "run" || c.Command.Name == "check-config"
	client := map[string]bool{}
	for _, fl := range clientFlags() {
		client[fl.Names()[0]] = true
	}
	for _, fl := range c.Command.Flags {
		name := fl.Names()[0]
		if origin := userOrigin(c, fl); origin != "" {
			lc.origins[name] = origin
		}
	}
	lc.userSources = len(nonEmpty(append(c.StringSlice("server"), c.Args().Slice()...))) > 0 || len(nonEmpty(c.StringSlice("pool"))) > 0 ||
		lc.origins["servers-from"] != "" // --servers-from or SLEWD_SERVERS_FROM: sources too
	if f != nil {
		for _, s := range f.Settings {
			if o := lc.origins[s.Name]; o != "" && !isFileOrigin(o) {
				continue // the command line or the environment wins
			}
			if !hasFlag(c, s.Name) || (!daemon && !client[s.Name]) {
				continue
			}
			if err := c.Set(s.Name, s.Value); err != nil {
				return nil, cli.Exit(fmt.Sprintf("configuration: %s: %s %s: %v", s.Pos, s.Name, s.Value, err), 2)
			}
			if o := lc.origins[s.Name]; o != "" && isList(c, s.Name) {
				lc.origins[s.Name] = o + ", " + s.Pos.String() // each line adds a value
			} else {
				lc.origins[s.Name] = s.Pos.String() // the last line wins
			}
		}
		for _, n := range f.Notes {
			fmt.Fprintln(c.App.ErrWriter, "slewd: note:", n)
		}
	}
	if c.App.Metadata == nil {
		c.App.Metadata = map[string]any{}
	}
	c.App.Metadata[loadedKey] = lc
	return lc, nil
}

func isList(c *cli.Context, name string) bool {
	for _, f := range c.Command.Flags {
		if _, ok := f.(*cli.StringSliceFlag); ok && f.Names()[0] == name {
			return true
		}
	}
	return false
}

// isFileOrigin: an origin that is a file:line, not the command line or
// the environment.
func isFileOrigin(o string) bool {
	return o != "command line" && !strings.HasPrefix(o, "environment ")
}

// userOrigin says whether the command line or the environment set a flag:
// "command line", "environment SLEWD_X", or "". An empty variable counts
// as unset (SLEWD_POOLS="" in /etc/default/slewd).
func userOrigin(c *cli.Context, fl cli.Flag) string {
	// As urfave/cli: the first variable present counts, even empty.
	env, value := "", ""
	if ev, ok := fl.(interface{ GetEnvVars() []string }); ok {
		for _, v := range ev.GetEnvVars() {
			if val, ok := os.LookupEnv(v); ok {
				env, value = v, val
				break
			}
		}
	}
	switch {
	case env != "" && !sameAsEnvironment(c, fl):
		return "command line"
	case env != "" && value != "":
		return "environment " + env
	case env != "":
		return "" // empty: unset, the file may set it
	case explicitlySet(c, fl.Names()[0]):
		return "command line"
	}
	return ""
}

// sameAsEnvironment says whether a flag has the value its environment
// variable gives it, i.e. the command line did not change it (urfave/cli
// does not tell the two apart).
func sameAsEnvironment(c *cli.Context, fl cli.Flag) bool {
	fs := flag.NewFlagSet("env", flag.ContinueOnError)
	if err := cloneFlags([]cli.Flag{fl})[0].Apply(fs); err != nil {
		return false
	}
	g, ok := fs.Lookup(fl.Names()[0]).Value.(flag.Getter)
	return ok && fmt.Sprint(g.Get()) == fmt.Sprint(c.Value(fl.Names()[0]))
}

// explicitlySet: set on the command line, or by its environment variable
// (urfave/cli's LocalFlagNames has both; newApp gives each app fresh
// flags, so this is this run's).
func explicitlySet(c *cli.Context, name string) bool {
	return slices.Contains(c.LocalFlagNames(), name)
}

// fileSources are the sources the configuration gives when the command
// line and the environment give none: its server and pool lines and
// those of its sourcedirs.
func (lc *loadedConfig) fileSources() (servers, pools []string) {
	if lc.file == nil || lc.userSources {
		return nil, nil
	}
	// --servers-from adds to these (applyServersFrom).
	return lc.file.Servers(), lc.file.Pools()
}

// sourceReloader is what SIGHUP does to the sources: the file again,
// with its sourcedirs (a DHCP lease came or went), and the --servers-from
// files. Sources from the command line or the environment stay: the file
// gives none then.
type sourceReloader struct {
	path        string // "": no file
	required    bool
	user        bool         // sources from the command line or the environment
	started     *config.File // as slewd started, for saying what a reload does not apply
	serversFrom []string
}

func newSourceReloader(c *cli.Context, lc *loadedConfig) *sourceReloader {
	return &sourceReloader{path: c.String("config"), required: explicitlySet(c, "config"),
		user: lc.userSources, started: lc.file, serversFrom: c.StringSlice("servers-from")}
}

// sources returns the sources a reload sets, and notes for the log.
// errKeepSources: there is nothing to reload.
func (r *sourceReloader) sources() (servers, pools, notes []string, err error) {
	if r.user {
		return nil, nil, []string{"the sources come from the command line or the environment: a reload keeps them"}, errKeepSources
	}
	f, err := loadFile(r.path, r.required)
	if err != nil {
		return nil, nil, nil, err
	}
	if f != nil {
		servers, pools = f.Servers(), f.Pools()
		notes = append(notes, f.Notes...)
	}
	notes = append(notes, changedSettings(r.started, f)...)
	for _, path := range r.serversFrom {
		imp, err := ntpclient.ReadConfigFile(path)
		if err != nil {
			return nil, nil, notes, fmt.Errorf("--servers-from: %w", err)
		}
		servers = append(servers, imp.Servers...)
		pools = append(pools, imp.Pools...)
	}
	return dedupe(servers), dedupe(pools), notes, nil
}

// changedSettings notes the directives a reload does not apply.
func changedSettings(old, cur *config.File) []string {
	last := func(f *config.File) map[string]string {
		m := map[string]string{}
		if f != nil {
			for _, s := range f.Settings {
				m[s.Name] = s.Value
			}
		}
		return m
	}
	a, b := last(old), last(cur)
	var names []string
	for n := range a {
		names = append(names, n)
	}
	for n := range b {
		if _, ok := a[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	var out []string
	for _, n := range names {
		if a[n] != b[n] {
			out = append(out, fmt.Sprintf("%s changed in the configuration (%q → %q): a reload changes only the sources; restart slewd to apply it", n, a[n], b[n]))
		}
	}
	return out
}

func dedupe(list []string) []string {
	seen := map[string]bool{}
	return slices.DeleteFunc(list, func(s string) bool {
		sp, err := ntpclient.ParseSource(s)
		if err != nil {
			return false // SetSources says what is wrong
		}
		if seen[sp.String()] {
			return true
		}
		seen[sp.String()] = true
		return false
	})
}

// errKeepSources: a reload has no sources to set.
var errKeepSources = errors.New("sources kept")
