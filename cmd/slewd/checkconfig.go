package main

import (
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"slewd/adjtime"
	"slewd/clock"
	"slewd/ntpclient"
)

func init() {
	register(12, &cli.Command{
		Name:  "check-config",
		Usage: "check the configuration file and print the configuration slewd run would use",
		Description: "Reads the configuration file (--config, /etc/slewd/slewd.conf) with its\n" +
			"include, confdir and sourcedir files, applies the environment and the\n" +
			"flags (the same as slewd run's) over it, checks everything slewd run\n" +
			"checks before it starts, and prints the result in the file's syntax,\n" +
			"each line saying where its value came from. Starts nothing.\n" +
			"Exit status: 0 valid, 2 not (the message names the file and line).",
		ArgsUsage: "[SERVER...]",
		Action:    checkConfigAction,
	})
	flagsLike["check-config"] = "run"
}

// flagsLike gives a command the flags of another (check-config takes
// run's, so that it checks what run would run with).
var flagsLike = map[string]string{}

func checkConfigAction(c *cli.Context) error {
	cfg, err := clientConfig(c)
	if err != nil {
		return err
	}
	lc, err := applyConfig(c)
	if err != nil {
		return err
	}
	if _, err := adjtime.ParseMethod(c.String("slew-method")); err != nil {
		return cli.Exit("--slew-method: "+err.Error(), 2)
	}
	if err := checkMaxSlewRate(c.Float64("max-slew-rate")); err != nil {
		return cli.Exit(err.Error(), 2)
	}
	if _, err := newLogger(io.Discard, c.String("log-level"), c.String("log-format")); err != nil {
		return err
	}
	// The client checks the rest (quorum against the sources, poll bounds).
	if _, err := ntpclient.NewClient(cfg, ntpclient.Env{Clock: clock.System{}, Loop: clock.NewSystemLoop(1)}); err != nil {
		return cli.Exit(err.Error(), 2)
	}
	printEffective(c.App.Writer, c, lc, cfg)
	return nil
}

// printEffective writes the configuration in force as slewd.conf lines,
// each with where it came from.
func printEffective(w io.Writer, c *cli.Context, lc *loadedConfig, cfg ntpclient.Config) {
	fmt.Fprintln(w, "# slewd check-config: the configuration slewd run would use")
	if lc.file != nil {
		fmt.Fprintf(w, "# files read: %s\n", strings.Join(lc.file.Files, ", "))
		for _, d := range lc.file.SourceDirs {
			fmt.Fprintf(w, "# sourcedir %s (re-read on reload: systemctl reload slewd, or SIGHUP)\n", d)
		}
	} else {
		fmt.Fprintln(w, "# no configuration file")
	}
	line := func(text, origin string) { fmt.Fprintf(w, "%-40s # %s\n", text, origin) }
	where := map[string]string{}
	if lc.file != nil && !lc.userSources {
		for _, s := range lc.file.Sources {
			o := s.Pos.String()
			if s.FromSourceDir {
				o += " (sourcedir)"
			}
			where[s.Spec] = o
		}
	}
	src := func(kind string, specs []string) {
		for _, s := range specs {
			sp, err := ntpclient.ParseSource(s)
			if err != nil {
				continue
			}
			o := where[sp.String()]
			if o == "" {
				o = "command line, environment or servers-from"
				if lc.userSources {
					o = "command line or environment (replaces the file's sources)"
				}
			}
			text := kind + " " + sp.Host
			if strings.Contains(sp.Host, ":") {
				text = kind + " [" + sp.Host + "]"
			}
			if sp.Port != ntpclient.DefaultPort {
				text += " port " + strconv.Itoa(sp.Port)
			}
			line(text, o)
		}
	}
	src("server", cfg.Servers)
	src("pool", cfg.Pools)
	for _, f := range c.Command.Flags {
		name := f.Names()[0]
		if notDirectives[name] {
			continue
		}
		origin := lc.origins[name]
		if origin == "" {
			origin = "default"
		}
		var vals []string
		switch f.(type) {
		case *cli.StringSliceFlag:
			vals = c.StringSlice(name)
		case *cli.BoolFlag:
			vals = []string{strconv.FormatBool(c.Bool(name))}
		case *cli.DurationFlag:
			vals = []string{c.Duration(name).String()}
		case *cli.Float64Flag:
			vals = []string{strconv.FormatFloat(c.Float64(name), 'f', -1, 64)}
		case *cli.IntFlag:
			vals = []string{strconv.Itoa(c.Int(name))}
		case *cli.UintFlag:
			vals = []string{strconv.FormatUint(uint64(c.Uint(name)), 10)}
		default:
			vals = []string{c.String(name)}
		}
		if name == "control-socket" && c.String(name) == "" {
			// Empty means slewd.sock in the run directory: say which.
			vals = []string{controlSocketPath(c)}
			origin += " (RUN-DIR/slewd.sock)"
		}
		if len(vals) == 0 {
			vals = []string{""}
		}
		for _, v := range vals {
			if meaning := defaultMeaning(f); origin == "default" && meaning != "" && (v == "" || v == "0") {
				// A zero that stands for something else (min-sources 0 is a
				// majority): print what, not the zero.
				line("# "+name+" ("+meaning+")", origin)
				continue
			}
			if v == "" {
				line("# "+name+" (none)", origin)
				continue
			}
			line(name+" "+v, origin)
		}
	}
}

// defaultMeaning is a flag's DefaultText, what its zero value stands for
// (as its --help says), or "" if it has none.
func defaultMeaning(f cli.Flag) string {
	v := reflect.ValueOf(f)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return ""
	}
	dt := v.Elem().FieldByName("DefaultText")
	if !dt.IsValid() || dt.Kind() != reflect.String {
		return ""
	}
	return dt.String()
}
