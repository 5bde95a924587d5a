package ntpclient

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"slewd/internal/regfile"
)

// Imported is what ImportConfig found in an ntp.conf or chrony.conf: the
// sources, and the options that mean something to slewd.
type Imported struct {
	Servers []string // specs for Config.Servers, HOST:PORT
	Pools   []string // specs for Config.Pools
	PHCs    []string // devices for Config.PHCs (`refclock PHC /dev/ptpN`)
	// PoolSize is chrony's `maxsources` on a pool line (0: not given).
	PoolSize int
	// MinPoll and MaxPoll are the widest minpoll/maxpoll of the sources
	// (0: not given), raised to MinPollFloor.
	MinPoll, MaxPoll time.Duration
	// KeyID is the `key N` the sources use (0: none); KeyFile is the key
	// file the configuration names (`keys` in ntp.conf, `keyfile` in
	// chrony.conf), "" if none.
	KeyID   uint32
	KeyFile string
	// KeyFormat is the key file's format: KeyFormatNTP for ntp.conf's
	// `keys`, KeyFormatChrony for chrony.conf's `keyfile`.
	KeyFormat KeyFormat
	// Notes say what was ignored or changed, and why ("FILE:LINE: ...").
	Notes []string
}

// ReadConfigFile imports the sources of an ntp.conf or chrony.conf.
func ReadConfigFile(path string) (Imported, error) {
	// A regular file only: a FIFO would block the open, a device never end.
	b, err := regfile.ReadTrusted(path, regfile.DefaultLimit)
	if err != nil {
		return Imported{}, fmt.Errorf("reading NTP configuration: %w", err)
	}
	return ImportConfig(bytes.NewReader(b), path)
}

// ImportConfig reads `server` and `pool` lines (and what they need: the
// key file) from an ntp.conf or chrony.conf, for migrating to slewd.
// Options after the host go through ParseSourceLine: honoured (port,
// minpoll/maxpoll, key, nts/ntsport, maxsources) or named in a note that
// says what they would have meant, never dropped silently; peers,
// reference clocks, noselect sources and include/confdir/sourcedir
// directives are left out, each with a note; `refclock PHC` lines give
// PHCs. name is for the notes and
// errors. An error means the file cannot be used as it is.
func ImportConfig(r io.Reader, name string) (Imported, error) {
	var imp Imported
	seen := map[string]bool{}
	var minExp, maxExp *int
	keyUsers, unkeyed := 0, 0
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		// chrony also starts comments with ! ; or %.
		if len(fields) == 0 || strings.ContainsAny(fields[0][:1], "!;%") {
			continue
		}
		at := fmt.Sprintf("%s:%d", name, n)
		note := func(format string, args ...any) {
			imp.Notes = append(imp.Notes, at+": "+fmt.Sprintf(format, args...))
		}
		directive := strings.ToLower(fields[0])
		args := fields[1:]
		switch directive {
		case "server", "pool", "peer":
		case "include", "includefile", "confdir", "sourcedir", "sourcefile":
			note("%s %s not followed: give its servers with --server or another --servers-from", directive, strings.Join(args, " "))
			continue
		case "refclock":
			if p, ok := importRefclock(args, note); ok && !seen["phc "+p] {
				seen["phc "+p] = true
				imp.PHCs = append(imp.PHCs, p)
			}
			continue
		case "keys", "keyfile":
			if len(args) > 0 {
				imp.KeyFile, imp.KeyFormat = args[0], KeyFormatChrony
				if directive == "keys" {
					imp.KeyFormat = KeyFormatNTP
				}
			}
			continue
		default:
			if n := directiveNote(directive, args); n != "" {
				note("%s", n)
			}
			continue
		}

		// ntp.conf allows -4/-6 before the host.
		for len(args) > 0 && (args[0] == "-4" || args[0] == "-6") {
			args = args[1:]
		}
		if len(args) == 0 {
			note("%s without a host: skipped", directive)
			continue
		}
		host := args[0]
		if directive == "peer" {
			note("peer %s left out: slewd does not use symmetric mode (make it a server if it serves time)", host)
			continue
		}
		if strings.HasPrefix(host, "127.127.") {
			note("%s %s is a reference clock driver address: left out", directive, host)
			continue
		}
		sl, err := ParseSourceLine(directive, args)
		if err != nil {
			return imp, fmt.Errorf("%s: %w", at, err)
		}
		for _, n := range sl.Notes {
			note("%s", n)
		}
		if sl.Skip != "" {
			note("%s", sl.Skip)
			continue
		}
		spec, key := sl.Spec, sl.Key
		if sl.MinPoll != nil && (minExp == nil || *sl.MinPoll < *minExp) {
			minExp = sl.MinPoll
		}
		if sl.MaxPoll != nil && (maxExp == nil || *sl.MaxPoll > *maxExp) {
			maxExp = sl.MaxPoll
		}
		if directive == "pool" {
			imp.PoolSize = max(imp.PoolSize, sl.MaxSources)
		}
		s := spec.String()
		if seen[s] {
			note("%s %s listed again: used once", directive, s)
			continue
		}
		seen[s] = true
		if directive == "pool" {
			imp.Pools = append(imp.Pools, s)
		} else {
			imp.Servers = append(imp.Servers, s)
		}
		if key == 0 {
			if !spec.NTS {
				unkeyed++
			}
			continue
		}
		keyUsers++
		if imp.KeyID != 0 && imp.KeyID != key {
			return imp, fmt.Errorf("%s: %s uses key %d, another source key %d: slewd authenticates every query with one key; "+
				"split the sources into separate runs or use one key", at, s, key, imp.KeyID)
		}
		imp.KeyID = key
	}
	if err := sc.Err(); err != nil {
		return imp, fmt.Errorf("reading %s: %w", name, err)
	}
	if keyUsers > 0 && unkeyed > 0 {
		imp.Notes = append(imp.Notes, fmt.Sprintf("%s: key %d is used for every source, also the %d configured without a key", name, imp.KeyID, unkeyed))
	}
	if keyUsers == 0 {
		imp.KeyFile = "" // named but not used by any source
	}
	if minExp != nil {
		imp.MinPoll = pollDuration(*minExp)
	}
	if maxExp != nil {
		imp.MaxPoll = pollDuration(*maxExp)
	}
	if imp.MinPoll != 0 && imp.MinPoll < MinPollFloor || imp.MaxPoll != 0 && imp.MaxPoll < MinPollFloor {
		imp.Notes = append(imp.Notes, fmt.Sprintf("%s: poll intervals below %v raised to %v (servers rate-limit faster clients)", name, MinPollFloor, MinPollFloor))
		imp.MinPoll = max(imp.MinPoll, MinPollFloor)
		if imp.MaxPoll != 0 {
			imp.MaxPoll = max(imp.MaxPoll, MinPollFloor)
		}
	}
	if imp.MinPoll != 0 && imp.MaxPoll != 0 && imp.MaxPoll < imp.MinPoll {
		imp.MaxPoll = imp.MinPoll
	}
	return imp, nil
}

// importRefclock takes a chrony `refclock PHC /dev/ptpN[:opts] ...` line:
// the device is used, read every second; options that change its time
// or its weight are not, and say so. Other drivers (SHM, SOCK, PPS) are
// left out.
func importRefclock(args []string, note func(string, ...any)) (string, bool) {
	if len(args) < 2 || !strings.EqualFold(args[0], "PHC") {
		note("reference clock %s left out: slewd reads PTP hardware clocks (refclock PHC) only", strings.Join(args, " "))
		return "", false
	}
	dev, devOpts, _ := strings.Cut(args[1], ":")
	var ignored []string
	if devOpts != "" {
		ignored = append(ignored, ":"+devOpts)
	}
	for i := 2; i < len(args); i++ {
		switch o := strings.ToLower(args[i]); o {
		case "noselect":
			note("refclock PHC %s left out: noselect", dev)
			return "", false
		case "prefer", "trust", "require":
		case "poll", "dpoll", "refid", "lock", "rate", "maxlockage", "width", "pps", "filter", "delay",
			"precision", "maxdispersion", "stratum", "offset", "minsamples", "maxsamples":
			if i+1 < len(args) {
				ignored = append(ignored, o+" "+args[i+1])
				i++
			}
		default:
			ignored = append(ignored, o)
		}
	}
	if len(ignored) > 0 {
		note("refclock PHC %s: %s ignored (slewd reads it every second; an offset such as TAI's is not applied)", dev, strings.Join(ignored, ", "))
	}
	return dev, true
}

// pollDuration is 2^exp seconds (fractions below one second round up to it).
func pollDuration(exp int) time.Duration {
	if exp < 0 {
		return time.Second
	}
	return time.Duration(1<<exp) * time.Second
}

// Format writes the import back as chrony.conf lines (for `--servers-from`
// round trips and for showing what was taken).
func (imp Imported) Format() string {
	var b strings.Builder
	write := func(directive string, specs []string) {
		for _, s := range specs {
			sp, err := ParseSource(s)
			if err != nil {
				continue
			}
			fmt.Fprintf(&b, "%s %s", directive, sp.Host)
			switch {
			case sp.NTS:
				b.WriteString(" nts")
				if sp.Port != DefaultNTSKEPort {
					fmt.Fprintf(&b, " ntsport %d", sp.Port)
				}
			case sp.Port != DefaultPort:
				fmt.Fprintf(&b, " port %d", sp.Port)
			}
			if imp.KeyID != 0 && !sp.NTS {
				fmt.Fprintf(&b, " key %d", imp.KeyID)
			}
			if directive == "pool" && imp.PoolSize != 0 {
				fmt.Fprintf(&b, " maxsources %d", imp.PoolSize)
			}
			b.WriteString("\n")
		}
	}
	write("server", imp.Servers)
	write("pool", slices.Clone(imp.Pools))
	for _, p := range imp.PHCs {
		fmt.Fprintf(&b, "refclock PHC %s\n", p)
	}
	return b.String()
}
