// Package config reads slewd's configuration file, /etc/slewd/slewd.conf:
// one directive per line, in the manner of chrony.conf. `server` and
// `pool` lines give the sources; `include GLOB`, `confdir DIR` (its
// *.conf, in name order) and `sourcedir DIR` (its *.sources, server and
// pool lines only, for servers from DHCP, as chrony's) read more files;
// every other directive is one of the daemon's long flags, with the same
// name and the flag's syntax (`max-offset 1000s`). The set of those is a
// Directives table the caller makes from its flags.
//
// The package only parses and checks: it has no defaults and applies
// nothing. Errors name the file and line.
package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"slewd/internal/regfile"
	"slewd/ntpclient"
)

// DefaultPath is where slewd looks for its configuration.
const DefaultPath = "/etc/slewd/slewd.conf"

// Limits: a configuration is small; anything larger is a mistake (a
// log named by include), and include loops must end.
const (
	MaxFileSize  = 1 << 20
	maxDepth     = 10
	maxLineBytes = 4096
)

// Kind is the type of a directive's value.
type Kind int

const (
	String Kind = iota
	Bool
	Duration
	Int
	Uint
	Float
	List // repeatable: each line adds a value
)

func (k Kind) String() string {
	return [...]string{"a word", "yes or no", "a duration", "a whole number", "a non-negative whole number", "a number", "a word"}[k]
}

// Directive is one setting the file may hold.
type Directive struct {
	Name string
	Kind Kind
	// Check, if set, refuses a value (after the kind's own parse); its
	// error says what is allowed.
	Check func(value string) error
}

// Directives is the table of settings, by name.
type Directives map[string]Directive

// Pos is a place in a configuration file.
type Pos struct {
	File string
	Line int
}

func (p Pos) String() string { return p.File + ":" + strconv.Itoa(p.Line) }

// Error is a bad line.
type Error struct {
	Pos Pos
	Msg string
}

func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// Source is a server or pool line.
type Source struct {
	Pool bool
	Spec string // HOST:PORT, as ntpclient.ParseSource reads it
	Pos  Pos
	// FromSourceDir: a line of a sourcedir file (DHCP), not of the
	// configuration proper.
	FromSourceDir bool
}

// Setting is a directive's value as written.
type Setting struct {
	Name  string
	Value string // normalized: Bool values are "true" or "false"
	Pos   Pos
}

// File is a configuration read with everything it includes.
type File struct {
	Path       string
	Sources    []Source  // in order; a source listed again is kept once
	Settings   []Setting // in order; for all but List directives the last wins
	SourceDirs []string
	Files      []string // every file read, in order
	// Notes are lines left out without failing: bad lines of sourcedir
	// files (written by DHCP hooks, not by the administrator), sources
	// listed twice.
	Notes []string
}

// Last is the value of a setting and where it was set; ok false if unset.
func (f *File) Last(name string) (s Setting, ok bool) {
	for i := len(f.Settings) - 1; i >= 0; i-- {
		if f.Settings[i].Name == name {
			return f.Settings[i], true
		}
	}
	return Setting{}, false
}

// All is every value of a List setting, in order.
func (f *File) All(name string) []Setting {
	var out []Setting
	for _, s := range f.Settings {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// Servers and Pools are the source specs, for ntpclient.Config.
func (f *File) Servers() []string { return f.specs(false) }
func (f *File) Pools() []string   { return f.specs(true) }

func (f *File) specs(pool bool) []string {
	var out []string
	for _, s := range f.Sources {
		if s.Pool == pool {
			out = append(out, s.Spec)
		}
	}
	return out
}

// Load reads the configuration at path with its includes, confdirs and
// sourcedirs. A missing main file is an error wrapping fs.ErrNotExist
// (the caller decides whether that matters).
func Load(path string, d Directives) (*File, error) {
	p := parser{d: d, f: &File{Path: path}, read: ReadFile, glob: filepath.Glob, seen: map[string]bool{}}
	if err := p.file(path, 0, false); err != nil {
		return nil, err
	}
	return p.f, nil
}

// Parse reads one file's text (name is for the errors). include,
// confdir and sourcedir are followed on the real file system.
func Parse(data []byte, name string, d Directives) (*File, error) {
	p := parser{d: d, f: &File{Path: name}, read: ReadFile, glob: filepath.Glob, seen: map[string]bool{}}
	p.f.Files = append(p.f.Files, name)
	if err := p.text(data, name, 0, false); err != nil {
		return nil, err
	}
	return p.f, nil
}

// ReadFile reads a configuration file: only a regular file (a FIFO or a
// device named by mistake must not hang or flood the daemon), at most
// MaxFileSize bytes.
func ReadFile(path string) ([]byte, error) {
	data, err := regfile.ReadTrusted(path, MaxFileSize)
	if errors.Is(err, regfile.ErrTooLarge) {
		return nil, fmt.Errorf("%s is too large: a configuration file is at most %d bytes", path, MaxFileSize)
	}
	return data, err
}

type parser struct {
	d    Directives
	f    *File
	read func(string) ([]byte, error)
	glob func(string) ([]string, error)
	seen map[string]bool // source specs already listed
}

func (p *parser) file(path string, depth int, sourceOnly bool) error {
	data, err := p.read(path)
	if err != nil {
		return err
	}
	p.f.Files = append(p.f.Files, path)
	return p.text(data, path, depth, sourceOnly)
}

// text parses one file. sourceOnly: a sourcedir file, where only server
// and pool lines may be, and a bad line is a note, not an error.
func (p *parser) text(data []byte, name string, depth int, sourceOnly bool) error {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 256), maxLineBytes)
	for n := 1; sc.Scan(); n++ {
		pos := Pos{name, n}
		err := p.line(sc.Text(), pos, depth, sourceOnly)
		if err == nil {
			continue
		}
		var le *Error
		if sourceOnly && errors.As(err, &le) && le.Pos == pos {
			p.f.Notes = append(p.f.Notes, err.Error()+": line left out")
			continue
		}
		return err
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("a line longer than %d bytes", maxLineBytes)
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func (p *parser) line(text string, pos Pos, depth int, sourceOnly bool) error {
	bad := func(format string, args ...any) error { return &Error{pos, fmt.Sprintf(format, args...)} }
	if i := strings.IndexByte(text, '#'); i >= 0 {
		text = text[:i]
	}
	fields := strings.Fields(text)
	if len(fields) == 0 {
		return nil
	}
	name, args := strings.ToLower(fields[0]), fields[1:]
	if sourceOnly && name != "server" && name != "pool" {
		return bad("%q in a sourcedir file: only server and pool lines may be there", fields[0])
	}
	switch name {
	case "server", "pool":
		return p.source(name, args, pos, sourceOnly)
	case "include", "confdir", "sourcedir":
		if len(args) != 1 {
			return bad("%s takes one %s, got %d words", name, map[bool]string{true: "glob", false: "directory"}[name == "include"], len(args))
		}
		if depth >= maxDepth {
			return bad("%s nested more than %d deep (an include loop?)", name, maxDepth)
		}
		arg := args[0]
		if !filepath.IsAbs(arg) {
			arg = filepath.Join(filepath.Dir(pos.File), arg)
		}
		return p.follow(name, arg, pos, depth)
	}
	d, ok := p.d[name]
	if !ok {
		return bad("unknown directive %q%s", fields[0], p.suggest(name))
	}
	if d.Kind == Bool && len(args) == 0 {
		args = []string{"true"}
	}
	if len(args) != 1 {
		return bad("%s takes one value (%s), got %d", name, d.Kind, len(args))
	}
	v, err := checkValue(d, args[0])
	if err != nil {
		return bad("%s %s: %v", name, args[0], err)
	}
	p.f.Settings = append(p.f.Settings, Setting{Name: name, Value: v, Pos: pos})
	return nil
}

func (p *parser) source(kind string, args []string, pos Pos, fromDir bool) error {
	bad := func(format string, a ...any) error { return &Error{pos, fmt.Sprintf(format, a...)} }
	if len(args) == 0 {
		return bad("%s needs a host: %s HOST [port N] [iburst]", kind, kind)
	}
	spec, err := ntpclient.ParseSource(args[0])
	if err != nil {
		return bad("%s %v", kind, err)
	}
	for i := 1; i < len(args); i++ {
		switch opt := strings.ToLower(args[i]); opt {
		case "iburst":
			// chrony's: slewd always starts with a burst.
		case "port":
			if i+1 >= len(args) {
				return bad("%s %s: port needs a number", kind, args[0])
			}
			i++
			n, err := strconv.Atoi(args[i])
			if err != nil || n < 1 || n > 65535 {
				return bad("%s %s: port %q is not a number from 1 to 65535", kind, args[0], args[i])
			}
			if strings.Contains(strings.TrimPrefix(args[0], "["), "]:") || strings.Count(args[0], ":") == 1 {
				return bad("%s %s has a port in the host and a port option: give one", kind, args[0])
			}
			spec.Port = n
		default:
			return bad("%s %s: unknown option %q (a %s line takes port N and iburst; poll intervals, keys and the pool size "+
				"are directives of their own: minpoll, maxpoll, key, pool-size)", kind, args[0], args[i], kind)
		}
	}
	s := spec.String()
	if p.seen[s] {
		p.f.Notes = append(p.f.Notes, fmt.Sprintf("%s: %s %s listed again: used once", pos, kind, s))
		return nil
	}
	p.seen[s] = true
	p.f.Sources = append(p.f.Sources, Source{Pool: kind == "pool", Spec: s, Pos: pos, FromSourceDir: fromDir})
	return nil
}

// follow reads what include, confdir and sourcedir name.
func (p *parser) follow(kind, arg string, pos Pos, depth int) error {
	var files []string
	var err error
	switch kind {
	case "include":
		files, err = p.glob(arg)
		if err != nil {
			return &Error{pos, fmt.Sprintf("include %s: %v", arg, err)}
		}
		if len(files) == 0 {
			// As chrony: an include must match, or a typo would go unseen.
			return &Error{pos, fmt.Sprintf("include %s: no such file", arg)}
		}
	case "confdir", "sourcedir":
		ext := map[string]string{"confdir": ".conf", "sourcedir": ".sources"}[kind]
		// A missing directory is no error: no drop-ins yet, no DHCP lease yet.
		files, err = p.glob(filepath.Join(arg, "*"+ext))
		if err != nil {
			return &Error{pos, fmt.Sprintf("%s %s: %v", kind, arg, err)}
		}
		if kind == "sourcedir" && !slices.Contains(p.f.SourceDirs, arg) {
			p.f.SourceDirs = append(p.f.SourceDirs, arg)
		}
	}
	slices.Sort(files)
	for _, f := range files {
		if err := p.file(f, depth+1, kind == "sourcedir"); err != nil {
			var le *Error
			if errors.As(err, &le) {
				return err
			}
			if kind == "sourcedir" {
				// A DHCP hook's file that vanished or cannot be read.
				p.f.Notes = append(p.f.Notes, fmt.Sprintf("%s: %s %s: %v: left out", pos, kind, arg, err))
				continue
			}
			return &Error{pos, fmt.Sprintf("%s: %v", kind, err)}
		}
	}
	return nil
}

// checkValue parses a value by the directive's kind and Check, and
// returns it normalized.
func checkValue(d Directive, v string) (string, error) {
	var err error
	switch d.Kind {
	case Bool:
		switch strings.ToLower(v) {
		case "yes", "on", "true", "1":
			v = "true"
		case "no", "off", "false", "0":
			v = "false"
		default:
			err = errors.New("want yes or no")
		}
	case Duration:
		var dur time.Duration
		if dur, err = time.ParseDuration(v); err != nil {
			err = errors.New("want a duration with its unit, like 1000s, 10ms or 1h30m")
		} else if dur < 0 {
			err = errors.New("a duration here cannot be negative")
		}
	case Int:
		if _, err = strconv.ParseInt(v, 10, 64); err != nil {
			err = errors.New("want a whole number")
		}
	case Uint:
		if _, err = strconv.ParseUint(v, 10, 64); err != nil {
			err = errors.New("want a whole number, 0 or more")
		}
	case Float:
		var f float64
		if f, err = strconv.ParseFloat(v, 64); err != nil || f != f {
			err = errors.New("want a number")
		}
	}
	if err == nil && d.Check != nil {
		err = d.Check(v)
	}
	return v, err
}

// suggest names the closest directive for a typo: chrony's spelling
// without the dash (maxoffset), or one or two letters off.
func (p *parser) suggest(name string) string {
	names := []string{"server", "pool", "include", "confdir", "sourcedir"}
	for n := range p.d {
		names = append(names, n)
	}
	slices.Sort(names)
	squash := strings.NewReplacer("-", "", "_", "")
	best, bestD := "", 3
	for _, n := range names {
		if squash.Replace(n) == squash.Replace(name) {
			best = n
			break
		}
		if d := editDistance(name, n); d < bestD {
			best, bestD = n, d
		}
	}
	if best == "" {
		return " (slewd check-config --help lists the directives: the long flags of slewd run)"
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
