package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"slewd/internal/regfile"
)

var testDirectives = Directives{
	"max-offset":    {Name: "max-offset", Kind: Duration},
	"dry-run":       {Name: "dry-run", Kind: Bool},
	"pool-size":     {Name: "pool-size", Kind: Int, Check: atLeastOne},
	"key":           {Name: "key", Kind: Uint},
	"max-slew-rate": {Name: "max-slew-rate", Kind: Float},
	"log-level":     {Name: "log-level", Kind: String},
	"servers-from":  {Name: "servers-from", Kind: List},
}

func atLeastOne(v string) error {
	if v == "0" || strings.HasPrefix(v, "-") {
		return errors.New("use at least 1")
	}
	return nil
}

func write(t *testing.T, path, text string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestParseLines(t *testing.T) {
	f, err := Parse([]byte(`# slewd.conf
server 192.0.2.1 iburst
server ntp.example.com port 4123   # a comment
pool pool.ntp.org iburst
SERVER [2001:db8::1]:124
server 192.0.2.1
max-offset 1000s
dry-run
dry-run no
key 7
max-slew-rate 5e4
servers-from /etc/ntp.conf
servers-from /etc/chrony/chrony.conf
`), "slewd.conf", testDirectives)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(f.Servers(), " "), "192.0.2.1:123 ntp.example.com:4123 [2001:db8::1]:124"; got != want {
		t.Errorf("servers %q, want %q", got, want)
	}
	if got := f.Pools(); len(got) != 1 || got[0] != "pool.ntp.org:123" {
		t.Errorf("pools %q", got)
	}
	if len(f.Notes) != 1 || !strings.HasPrefix(f.Notes[0], "slewd.conf:6: server 192.0.2.1:123 listed again") {
		t.Errorf("notes %q", f.Notes)
	}
	if s, ok := f.Last("dry-run"); !ok || s.Value != "false" || s.Pos.Line != 9 {
		t.Errorf("dry-run: last wins, normalized: %+v", s)
	}
	if s, _ := f.Last("max-offset"); s.Value != "1000s" || s.Pos.String() != "slewd.conf:7" {
		t.Errorf("max-offset %+v", s)
	}
	if all := f.All("servers-from"); len(all) != 2 || all[1].Value != "/etc/chrony/chrony.conf" {
		t.Errorf("servers-from %+v", all)
	}
}

// Every mistake is an error naming the file, the line, the directive and
// what is allowed.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"maxoffset 10s", `c.conf:1: unknown directive "maxoffset" (did you mean max-offset?)`},
		{"\n\nmax-ofset 10s", `c.conf:3: unknown directive "max-ofset" (did you mean max-offset?)`},
		{"frobnicate yes", `unknown directive "frobnicate" (slewd check-config --help lists`},
		{"max-offset 1000", "c.conf:1: max-offset 1000: want a duration with its unit, like 1000s"},
		{"max-offset -5s", "cannot be negative"},
		{"max-offset 1s 2s", "max-offset takes one value (a duration), got 2"},
		{"max-offset", "max-offset takes one value (a duration), got 0"},
		{"dry-run maybe", "dry-run maybe: want yes or no"},
		{"pool-size 0", "c.conf:1: pool-size 0: use at least 1"},
		{"pool-size four", "want a whole number"},
		{"key -1", "want a whole number, 0 or more"},
		{"max-slew-rate fast", "want a number"},
		{"server", "server needs a host: server HOST [port N] [iburst]"},
		{"server http://x", "looks like a URL"},
		{"server a.example prefer", `server a.example: unknown option "prefer" (a server line takes port N and iburst`},
		{"pool p.example port", "port needs a number"},
		{"pool p.example port 70000", `port "70000" is not a number from 1 to 65535`},
		{"server a.example:123 port 124", "has a port in the host and a port option"},
		{"include", "include takes one glob, got 0 words"},
		{"include /nonexistent/slewd/*.conf", "c.conf:1: include /nonexistent/slewd/*.conf: no such file"},
		{"confdir a b", "confdir takes one directory, got 2"},
		{strings.Repeat("x", 5000), "a line longer than 4096 bytes"},
	} {
		_, err := Parse([]byte(tc.text), "c.conf", testDirectives)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%.40q: error %v; want %q", tc.text, err, tc.want)
		}
	}
}

// include, confdir in name order, sourcedir (servers from DHCP) with its
// bad lines left out as notes, relative paths from the including file.
func TestLoadTree(t *testing.T) {
	dir := t.TempDir()
	main := write(t, filepath.Join(dir, "slewd.conf"), "server 192.0.2.1\ninclude extra/*.inc\nconfdir conf.d\nsourcedir "+
		filepath.Join(dir, "dhcp")+"\nsourcedir /nonexistent/slewd-dhcp\nmax-offset 100s\n")
	write(t, filepath.Join(dir, "extra", "a.inc"), "pool a.pool.example\n")
	write(t, filepath.Join(dir, "conf.d", "20-b.conf"), "max-offset 300s\n")
	write(t, filepath.Join(dir, "conf.d", "10-a.conf"), "max-offset 200s\nserver 192.0.2.2\n")
	write(t, filepath.Join(dir, "conf.d", "README"), "not a .conf: not read\n")
	write(t, filepath.Join(dir, "dhcp", "eth0.sources"), "server 192.0.2.9 iburst\nmax-offset 1s\nserver 192.0.2.1\n")
	write(t, filepath.Join(dir, "dhcp", "eth1.sources"), "server bad/name\nserver 192.0.2.10\n")
	f, err := Load(main, testDirectives)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(f.Servers(), " "), "192.0.2.2:123 192.0.2.9:123 192.0.2.10:123"; !strings.HasPrefix(got, "192.0.2.1:123 ") || !strings.HasSuffix(got, want) {
		t.Errorf("servers %q", got)
	}
	if s, _ := f.Last("max-offset"); s.Value != "100s" {
		t.Errorf("max-offset %+v: the main file's line after confdir wins", s)
	}
	var fromDir []string
	for _, s := range f.Sources {
		if s.FromSourceDir {
			fromDir = append(fromDir, s.Spec)
		}
	}
	if strings.Join(fromDir, " ") != "192.0.2.9:123 192.0.2.10:123" {
		t.Errorf("sourcedir sources %q", fromDir)
	}
	notes := strings.Join(f.Notes, "\n")
	for _, want := range []string{"eth0.sources:2: \"max-offset\" in a sourcedir file: only server and pool lines",
		"eth0.sources:3: server 192.0.2.1:123 listed again", "eth1.sources:1: server \"bad/name\""} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
	if len(f.Files) != 6 || len(f.SourceDirs) != 2 {
		t.Errorf("files %q, sourcedirs %q", f.Files, f.SourceDirs)
	}
	if _, err := Load(filepath.Join(dir, "none.conf"), testDirectives); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	// An error in an included file names that file and line.
	write(t, filepath.Join(dir, "conf.d", "30-bad.conf"), "\nmax-offset soon\n")
	if _, err := Load(main, testDirectives); err == nil || !strings.Contains(err.Error(), "30-bad.conf:2: max-offset soon") {
		t.Errorf("error in a confdir file: %v", err)
	}
}

func TestIncludeLoop(t *testing.T) {
	dir := t.TempDir()
	main := write(t, filepath.Join(dir, "a.conf"), "include a.conf\n")
	if _, err := Load(main, testDirectives); err == nil || !strings.Contains(err.Error(), "nested more than 10 deep") {
		t.Errorf("include loop: %v", err)
	}
}

// A FIFO, a directory or a huge file named by mistake is refused at
// once: reading one would hang the daemon or fill its memory.
func TestOnlyRegularFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.conf")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.conf")
	if err := os.WriteFile(big, make([]byte, MaxFileSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	main := write(t, filepath.Join(dir, "main.conf"), "include fifo.conf\n")
	for path, want := range map[string]string{fifo: "not a regular file", dir: "not a regular file", big: "a configuration file is at most",
		main: "main.conf:1: include: open " + fifo + ": not a regular file"} {
		done := make(chan error, 1)
		go func() { _, err := Load(path, testDirectives); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %v; want %q", path, err, want)
			}
		case <-time.After(10 * time.Second): // a hang is the failure: no virtual time here
			t.Fatalf("%s: Load hangs", path)
		}
	}
}

var errorShape = regexp.MustCompile(`^[^:]+:[0-9]+: `)

// The parser never panics, and every error it returns for a line names
// its place.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"server 192.0.2.1 iburst\n", "pool pool.ntp.org port 123\n", "max-offset 10s\ndry-run\n",
		"# c\n\nkey 5\n", "server [::1]:123\n", "servers-from /etc/ntp.conf\n", "pool-size 4\n", "include /x\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// Nothing is followed: the fuzzer must not walk this machine's files.
		p := parser{d: testDirectives, f: &File{Path: "f.conf"}, seen: map[string]bool{},
			read: func(string) ([]byte, error) { return nil, fs.ErrNotExist },
			glob: func(string) ([]string, error) { return []string{"f2.conf"}, nil }}
		err := p.text(data, "f.conf", 0, false)
		file := p.f
		if err != nil {
			var le *Error
			if errors.As(err, &le) && !errorShape.MatchString(err.Error()) {
				t.Errorf("error without its place: %v", err)
			}
			return
		}
		for _, s := range file.Sources {
			if s.Spec == "" || s.Pos.Line < 1 {
				t.Errorf("source %+v", s)
			}
		}
		_ = fmt.Sprint(file.Settings)
	})
}

// A configuration file anyone may write is refused, with the fix.
func TestReadFileWorldWritable(t *testing.T) {
	p := filepath.Join(t.TempDir(), "slewd.conf")
	if err := os.WriteFile(p, []byte("server 192.0.2.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(p); err != nil {
		t.Fatalf("mode 0644: %v", err)
	}
	os.Chmod(p, 0o646)
	_, err := ReadFile(p)
	if !errors.Is(err, regfile.ErrWorldWritable) || !strings.Contains(err.Error(), "chmod o-w") {
		t.Errorf("mode 0646: %v", err)
	}
}
