package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// Every flag of slewd run is a directive of the file, by construction
// (directivesOf): a flag of a new type fails here until the file can
// hold it.
func TestEveryRunFlagIsADirective(t *testing.T) {
	d, err := directivesOf(runFlags())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range runFlags() {
		name := f.Names()[0]
		if _, ok := d[name]; !ok && !notDirectives[name] {
			t.Errorf("--%s has no directive", name)
		}
	}
	if _, err := directivesOf([]cli.Flag{&cli.TimestampFlag{Name: "at"}}); err == nil || !strings.Contains(err.Error(), "teach directivesOf") {
		t.Errorf("an unknown flag type: %v", err)
	}
}

func writeConfTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(text, "DIR", dir)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "slewd.conf")
}

// Flags over the environment over the file over the defaults; each line
// of check-config says where its value came from.
func TestConfigPrecedence(t *testing.T) {
	conf := writeConfTree(t, map[string]string{
		"slewd.conf": "pool pool.example iburst\nserver 192.0.2.1\nsourcedir DIR/dhcp\n" +
			"max-offset 100s\nlog-level debug\nsync-threshold 5ms\nservers-from DIR/ntp.conf\nconfdir DIR/conf.d\n",
		"conf.d/50-local.conf": "max-offset 200s\nslew-method tick\n",
		"dhcp/eth0.sources":    "server 192.0.2.9 iburst\n",
		"ntp.conf":             "server 192.0.2.20 iburst\n",
	})
	t.Setenv("SLEWD_LOG_LEVEL", "warn")
	t.Setenv("SLEWD_SLEW_METHOD", "") // empty: unset, the file's line counts
	t.Setenv("SLEWD_POOLS", "")       // as /etc/default/slewd may have it: no pools from there
	out, stderr, code := runApp("check-config", "--config", conf, "--sync-threshold", "20ms")
	if !strings.Contains(out, "log-level warn") {
		t.Fatalf("%s", out)
	}
	if o, _, _ := runApp("check-config", "--config", conf, "--log-level", "error"); !matchLine(o, `log-level error +# command line`) {
		t.Errorf("the command line over the environment:\n%s", o)
	}
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, re := range []string{
		`server 192.0.2.1 +# .*slewd.conf:2`,
		`server 192.0.2.9 +# .*dhcp/eth0.sources:1 \(sourcedir\)`,
		`server 192.0.2.20 +# command line, environment or servers-from`,
		`pool pool.example +# .*slewd.conf:1`,
		`max-offset 3m20s +# .*conf.d/50-local.conf:1`,
		`slew-method tick +# .*50-local.conf:2`,
		`log-level warn +# environment SLEWD_LOG_LEVEL`,
		`sync-threshold 20ms +# command line`,
		`max-slew-rate 100500 +# default`,
		`servers-from /.*/ntp.conf +# .*slewd.conf:7`,
	} {
		if !matchLine(out, re) {
			t.Errorf("no line matching %q in\n%s", re, out)
		}
	}
	// So does --servers-from.
	out, _, code = runApp("check-config", "--config", conf, "--servers-from", filepath.Join(filepath.Dir(conf), "ntp.conf"))
	if code != 0 || strings.Contains(out, "192.0.2.1 ") || strings.Contains(out, "192.0.2.9") || !strings.Contains(out, "server 192.0.2.20") {
		t.Errorf("--servers-from on the command line: exit %d\n%s", code, out)
	}
	// Sources from the command line replace the file's, sourcedir included.
	out, _, code = runApp("check-config", "--config", conf, "192.0.2.50")
	if code != 0 || strings.Contains(out, "192.0.2.1 ") || strings.Contains(out, "192.0.2.9") || !strings.Contains(out, "server 192.0.2.50") {
		t.Errorf("sources from the command line: exit %d\n%s", code, out)
	}
}

func matchLine(text, re string) bool {
	for _, l := range strings.Split(text, "\n") {
		if regexp.MustCompile(`^` + re).MatchString(l) {
			return true
		}
	}
	return false
}

// A bad file stops every command that reads it, with its file:line; a
// missing default file is no file, a missing named one an error.
func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		conf, want string
	}{
		{"server 192.0.2.1\nmaxoffset 5s\n", `slewd.conf:2: unknown directive "maxoffset" (did you mean max-offset?)`},
		{"server 192.0.2.1\nslew-method fast\n", `slewd.conf:2: slew-method fast:`},
		{"server 192.0.2.1\nmax-slew-rate 200000\n", `slewd.conf:2: max-slew-rate 200000: --max-slew-rate 200000: give 500 to 100500 ppm`},
		{"server 192.0.2.1\nminpoll 8s\n", `slewd.conf:2: minpoll 8s: never poll more often than every 16s`},
		{"server 192.0.2.1\nstate-dir var/lib\n", `slewd.conf:2: state-dir var/lib: give an absolute path`},
		{"server 192.0.2.1 minpoll 6\n", `slewd.conf:1: server 192.0.2.1: unknown option "minpoll"`},
	} {
		conf := writeConfTree(t, map[string]string{"slewd.conf": tc.conf})
		for _, cmd := range []string{"check-config", "query"} {
			if _, stderr, code := runApp(cmd, "--config", conf); code != 2 || !strings.Contains(stderr, tc.want) {
				t.Errorf("%s with %q: exit %d, %q; want 2 and %q", cmd, tc.conf, code, stderr, tc.want)
			}
		}
	}
	if _, stderr, code := runApp("check-config", "--config", "/nonexistent/slewd.conf"); code != 2 || !strings.Contains(stderr, "no such file") {
		t.Errorf("missing --config file: exit %d, %q", code, stderr)
	}
	t.Setenv("SLEWD_SERVERS", "")
	t.Setenv("SLEWD_POOLS", "")
	if _, stderr, code := runApp("check-config", "--config", ""); code != 2 || !strings.Contains(stderr, "or as server and pool lines in /etc/slewd/slewd.conf") {
		t.Errorf("no file, no servers: exit %d, %q", code, stderr)
	}
}

// The configuration slewd ships is valid, and the DHCP hooks' directory
// is one of its sourcedirs.
func TestShippedConfig(t *testing.T) {
	t.Setenv("SLEWD_SERVERS", "")
	t.Setenv("SLEWD_POOLS", "")
	out, stderr, code := runApp("check-config", "--config", filepath.Join("..", "..", "dist", "slewd.conf"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"# sourcedir /run/slewd-dhcp ", "# sourcedir /etc/slewd/sources.d ", "pool pool.ntp.org ", "max-offset 16m40s "} {
		if !strings.Contains(out, want) {
			t.Errorf("check-config of dist/slewd.conf lacks %q:\n%s", want, out)
		}
	}
}

// check-config prints what a default that is empty or zero stands for,
// not the empty value or the zero.
func TestCheckConfigDefaultsMeaning(t *testing.T) {
	out, stderr, code := runApp("check-config", "--config", "", "--run-dir", "/x/run", "192.0.2.1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, re := range []string{
		`control-socket /x/run/slewd\.sock +# default \(RUN-DIR/slewd\.sock\)`,
		`# min-sources \(1 with one server, else a majority\) +# default`,
		`# user \(stay root\) +# default`,
		`# keyfile \(none\) +# default`,
	} {
		if !matchLine(out, re) {
			t.Errorf("no line %q in\n%s", re, out)
		}
	}
	if strings.Contains(out, "min-sources 0") || strings.Contains(out, "control-socket (none)") {
		t.Errorf("a zero printed for a default that means something else:\n%s", out)
	}
	if out, _, _ := runApp("check-config", "--config", "", "--min-sources", "2", "192.0.2.1", "192.0.2.2"); !matchLine(out, `min-sources 2 +# command line`) {
		t.Errorf("min-sources given:\n%s", out)
	}
}
