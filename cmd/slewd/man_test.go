package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"slewd/config"
)

// The man page's sections beyond urfave/cli's (manPage): a SYNOPSIS line
// per command, the configuration file, every SLEWD_ variable, every file.

func roffEscape(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

// manSynopsis is one line per command: its name, options, arguments.
func manSynopsis(app *cli.App) string {
	var b strings.Builder
	b.WriteString(".SH SYNOPSIS\n")
	for _, c := range app.Commands {
		if c.Hidden || c.Name == "help" {
			continue
		}
		args := c.ArgsUsage
		if c.Name == "ntpdate" {
			args = "[options] server ..."
		} else {
			opts := ""
			if len(c.VisibleFlags()) > 0 {
				opts = `[\fIoptions\fP]`
			}
			args = strings.TrimSpace(opts + " " + roffEscape(args))
		}
		fmt.Fprintf(&b, ".br\n\\fBslewd %s\\fP %s\n", c.Name, strings.ReplaceAll(args, "SERVER", `\fISERVER\fP`))
	}
	b.WriteString(".br\n\\fBntpdate\\fP [options] server ... (slewd invoked through a symlink named ntpdate)\n")
	return b.String()
}

// manConfigFile is the CONFIGURATION FILE section: the syntax, and every
// directive (the long flags of slewd run).
func manConfigFile() (string, error) {
	d, err := directivesOf(runFlags())
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("\n.SH CONFIGURATION FILE\n" +
		".PP\n\\fB" + config.DefaultPath + "\\fP (another with \\fB\\-\\-config\\fP or \\fBSLEWD_CONFIG_FILE\\fP; " +
		"\\fB\\-\\-config \"\"\\fP for none) holds one directive per line, in the manner of chrony.conf; " +
		"\\fB#\\fP starts a comment, directive names are case-insensitive. A missing default file is no error. " +
		"Command-line flags override the file, and so do the SLEWD_ variables (/etc/default/slewd, which the units read). " +
		"Servers or pools given as arguments, flags or variables (\\-\\-server, \\-\\-pool, \\-\\-servers\\-from) replace all the file's sources, sourcedir ones included. " +
		"\\fBslewd boot\\fP, \\fBsync\\fP and \\fBquery\\fP take the sources and the client directives " +
		"(pool\\-size to servers\\-from below); the others are \\fBslewd run\\fP's. " +
		"For all but servers\\-from (which adds a file each line) the last line wins. " +
		"A bad line stops the command with its file and line; \\fBslewd check\\-config\\fP checks the file and prints the result.\n" +
		".TP\n\\fBserver\\fP \\fIHOST\\fP [\\fBport\\fP \\fIN\\fP] [\\fBiburst\\fP]\n" +
		"an NTP server (HOST, HOST:PORT, an IPv4 address, [IPv6]:PORT); iburst is accepted for chrony's sake: slewd always starts with a burst\n" +
		".TP\n\\fBpool\\fP \\fINAME\\fP [\\fBport\\fP \\fIN\\fP] [\\fBiburst\\fP]\n" +
		"a name that resolves to several servers, pool\\-size of which are used\n" +
		".TP\n\\fBinclude\\fP \\fIGLOB\\fP\n" +
		"reads the matching files here, in name order; at least one must match. Relative paths are from the including file's directory\n" +
		".TP\n\\fBconfdir\\fP \\fIDIR\\fP\n" +
		"reads DIR/*.conf in name order (none is fine); put it last so that its files override\n" +
		".TP\n\\fBsourcedir\\fP \\fIDIR\\fP\n" +
		"reads DIR/*.sources, which hold server and pool lines only (as chrony's sourcedir): the DHCP hooks write " +
		"/run/slewd\\-dhcp/\\fIINTERFACE\\fP.sources. A bad line there is left out with a note, not an error\n")
	for _, f := range runFlags() {
		name := f.Names()[0]
		dir, ok := d[name]
		if !ok {
			continue
		}
		value := map[config.Kind]string{config.String: "WORD", config.Bool: "[yes|no]", config.Duration: "DURATION",
			config.Int: "N", config.Uint: "N", config.Float: "NUMBER", config.List: "FILE"}[dir.Kind]
		if directiveChecks[name] != nil && name != "servers-from" && strings.HasSuffix(name, "dir") || name == "keyfile" {
			value = "PATH"
		}
		usage := ""
		if df, ok := f.(cli.DocGenerationFlag); ok {
			usage = df.GetUsage()
			if def := strings.Trim(df.GetDefaultText(), `"`); !slices.Contains([]string{"", "false", "0", "0s", "[]"}, def) {
				usage += " (default " + def + ")"
			}
		}
		fmt.Fprintf(&b, ".TP\n\\fB%s\\fP \\fI%s\\fP\n%s\n", roffEscape(name), roffEscape(value), roffEscape(usage))
	}
	b.WriteString(".PP\nDurations take their unit (1000s, 10ms, 1h30m); booleans are yes/no, on/off, true/false or the name alone. " +
		"\\fBsystemctl reload slewd\\fP (SIGHUP) reads the file again and changes the sources: a source that stays keeps its samples, " +
		"and the frequency learnt and a slew under way go on. Other directives that changed are logged and wait for a restart; " +
		"a bad file is logged and the sources in use are kept.\n")
	return b.String(), nil
}

// manEnvironment lists every SLEWD_ variable: those of the flags, by
// command, and those of /etc/default/slewd.
func manEnvironment(app *cli.App) string {
	type use struct{ flag, cmds, usage string }
	vars := map[string]*use{}
	for _, c := range app.Commands {
		for _, f := range c.Flags {
			ev, ok := f.(interface{ GetEnvVars() []string })
			if !ok {
				continue
			}
			for _, v := range ev.GetEnvVars() {
				u := vars[v]
				if u == nil {
					u = &use{flag: "\\-\\-" + f.Names()[0]}
					if df, ok := f.(cli.DocGenerationFlag); ok {
						u.usage = df.GetUsage()
					}
					vars[v] = u
				}
				if u.cmds == "" {
					u.cmds = c.Name
				} else if !strings.Contains(u.cmds, c.Name) {
					u.cmds += ", " + c.Name
				}
			}
		}
	}
	names := make([]string, 0, len(vars))
	for v := range vars {
		names = append(names, v)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("\n.SH ENVIRONMENT\n.PP\nEach variable sets the flag it names, for the commands listed, " +
		"unless the flag is given; an empty variable is unset. Lists (SLEWD_SERVERS, SLEWD_POOLS, SLEWD_SERVERS_FROM) are comma-separated.\n")
	for _, v := range names {
		u := vars[v]
		fmt.Fprintf(&b, ".TP\n\\fB%s\\fP\n%s (%s): %s\n", v, u.flag, u.cmds, roffEscape(u.usage))
	}
	for _, o := range defaultsOpts {
		fmt.Fprintf(&b, ".TP\n\\fB%s\\fP\n%s\n", o[0], o[1])
	}
	b.WriteString(".TP\n\\fBJOURNAL_STREAM\\fP\nset by systemd: when it names stderr, every log line starts with its syslog priority (<3> error to <7> debug) and the time is left to the journal\n" +
		".TP\n\\fBNOTIFY_SOCKET\\fP, \\fBWATCHDOG_USEC\\fP, \\fBWATCHDOG_PID\\fP\nset by systemd for \\fBslewd run\\fP (Type=notify, WatchdogSec=)\n")
	return b.String()
}

// defaultsOpts are the variables /etc/default/slewd gives the units (and
// the init script), which pass them to the commands.
var defaultsOpts = [][2]string{
	{"SLEWD_BOOT_OPTS", "more options for \\fBslewd boot\\fP in slewd\\-boot.service (/etc/default/slewd)"},
	{"SLEWD_RUN_OPTS", "more options for \\fBslewd run\\fP in slewd.service"},
	{"SLEWD_WAIT_OPTS", "more options for \\fBslewd wait\\fP in slewd\\-wait.service"},
	{"SLEWD_CONFIG", "/etc/init.d/slewd only: the files of variables it reads (default /etc/sysconfig/slewd /etc/default/slewd); " +
		"not the configuration file, which is SLEWD_CONFIG_FILE"},
	{"SLEWD_PIDFILE", "/etc/init.d/slewd only: its pid file (default /var/run/slewd.pid)"},
	{"SLEWD_LOGFILE", "/etc/init.d/slewd only: where the daemon's output goes (default /var/log/slewd.log)"},
}

// manFiles is every file slewd reads or writes.
const manFiles = "\n.SH FILES\n" +
	".TP\n/etc/slewd/slewd.conf\nthe configuration (CONFIGURATION FILE above)\n" +
	".TP\n/etc/slewd/conf.d/*.conf\ndrop-ins, read by the shipped file's \\fBconfdir\\fP line, in name order\n" +
	".TP\n/etc/slewd/sources.d/*.sources\nlists of servers of your own (\\fBsourcedir\\fP)\n" +
	".TP\n/run/slewd\\-dhcp/*.sources\nservers from DHCP, one file per interface, written by the dhclient and NetworkManager hooks, which then reload slewd\n" +
	".TP\n/etc/default/slewd, /etc/sysconfig/slewd\nSLEWD_ variables and options for the systemd units and the init script\n" +
	".TP\n/var/lib/slewd/drift\nthe oscillator's frequency, kept by \\fBslewd run\\fP (ignored beyond \\(+-500 ppm)\n" +
	".TP\n/var/lib/slewd/lock\nthe PID of the \\fBslewd run\\fP that owns the state directory, under flock(2): a second one is refused\n" +
	".TP\n/var/lib/slewd/slew\\-journal\nthe tick bias under way (\\fB\\-\\-slew\\-method tick\\fP), undone after a crash\n" +
	".TP\n/var/lib/slewd/highwater\nthe high-water mark of known-good time (\\fBslewd boot \\-\\-restore\\-from\\-high\\-water\\fP; ignored if more than 10 years after the build)\n" +
	".TP\n/run/slewd/status.json\nthe daemon's state for \\fBslewd wait\\fP and \\fBslewd sync\\fP, and the other programs' clock changes it saw\n" +
	".TP\n/run/slewd/step.json\na step \\fBslewd boot\\fP or \\fBslewd sync\\fP made, noted so that a running daemon does not undo it\n" +
	".TP\n/run/slewd/slewd.sock\nthe control socket (\\fBslewd sources\\fP, \\fBtracking\\fP, \\fBburst\\fP)\n" +
	".TP\n/run/systemd/timesync/synchronized\ntouched when the clock is synchronized (time-sync.target, systemd\\-time\\-wait\\-sync)\n" +
	".TP\n/proc/sys/kernel/random/boot_id\nread: a slew journal from another boot is not applied\n" +
	".TP\nslewd.service, slewd\\-boot.service, slewd\\-wait.service\nthe systemd units (/usr/local/lib/systemd/system after make install, /usr/lib/systemd/system from the package)\n" +
	".TP\n/etc/init.d/slewd\nthe init script for systems without systemd\n" +
	".TP\n/usr/local/share/bash\\-completion/completions/slewd, /usr/local/share/zsh/site\\-functions/_slewd\nbash and zsh completion (make install; a package puts them under /usr/share)\n"

// Every SLEWD_ variable of the flags, of /etc/default/slewd and of the
// units is in ENVIRONMENT, and every file the code names is in FILES.
func TestManPageComplete(t *testing.T) {
	page, err := manPage(newApp())
	if err != nil {
		t.Fatal(err)
	}
	env := page[strings.Index(page, ".SH ENVIRONMENT"):]
	env = env[:len(".SH")+strings.Index(env[len(".SH"):], "\n.SH ")]
	want := map[string]bool{}
	for _, c := range newApp().Commands {
		for _, f := range c.Flags {
			if ev, ok := f.(interface{ GetEnvVars() []string }); ok {
				for _, v := range ev.GetEnvVars() {
					want[v] = true
				}
			}
		}
	}
	re := regexp.MustCompile(`\bSLEWD_[A-Z_]+\b`)
	for _, p := range []string{"dist/default/slewd", "dist/systemd/slewd.service", "dist/systemd/slewd-boot.service",
		"dist/systemd/slewd-wait.service", "dist/sysvinit/slewd", "dist/cron/slewd-sync"} {
		b, err := os.ReadFile(filepath.Join("..", "..", p))
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range re.FindAllString(string(b), -1) {
			want[v] = true
		}
	}
	if len(want) < 30 {
		t.Errorf("only %d variables found: the search is broken", len(want))
	}
	for v := range want {
		if !strings.Contains(env, `\fB`+v+`\fP`) {
			t.Errorf("ENVIRONMENT lacks %s", v)
		}
	}
	files := page[strings.Index(page, ".SH FILES"):]
	for _, f := range []string{config.DefaultPath, "/etc/slewd/conf.d", "/run/slewd\\-dhcp", "drift", "slew\\-journal", "highwater",
		"status.json", "/run/systemd/timesync/synchronized", "/etc/default/slewd", "bash\\-completion", "_slewd"} {
		if !strings.Contains(files, f) {
			t.Errorf("FILES lacks %s", f)
		}
	}
	syn := page[strings.Index(page, ".SH SYNOPSIS"):strings.Index(page, ".SH DESCRIPTION")]
	for _, c := range newApp().Commands {
		if c.Name != "help" && !strings.Contains(syn, `\fBslewd `+c.Name+`\fP`) {
			t.Errorf("SYNOPSIS lacks slewd %s", c.Name)
		}
	}
	if !slices.ContainsFunc(strings.Split(page, "\n"), func(l string) bool { return l == `\fBmax\-offset\fP \fIDURATION\fP` }) {
		t.Error("CONFIGURATION FILE lacks the max-offset directive")
	}
}
