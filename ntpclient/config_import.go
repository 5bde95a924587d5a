package ntpclient

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"slewd/internal/regfile"
)

// Imported is what ImportConfig found in an ntp.conf or chrony.conf: the
// sources, and the options that mean something to slewd.
type Imported struct {
	Servers []string // specs for Config.Servers, HOST:PORT
	Pools   []string // specs for Config.Pools
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

// Options of server/pool/peer lines that take a value (ntp.conf and chrony.conf).
var optionsWithValue = map[string]bool{
	"minpoll": true, "maxpoll": true, "key": true, "port": true, "version": true, "mode": true, "ttl": true,
	"maxdelay": true, "maxdelayratio": true, "maxdelaydevratio": true, "mindelay": true, "asymmetry": true,
	"offset": true, "minstratum": true, "polltarget": true, "presend": true, "minsamples": true,
	"maxsamples": true, "filter": true, "maxsources": true, "certset": true, "extfield": true, "ntsport": true,
	"maxdisp": true, "bias": true,
}

// Flags that slewd does without: it always bursts at start (iburst), and
// the rest tune things slewd decides by itself.
var knownFlags = map[string]bool{
	"iburst": true, "burst": true, "prefer": true, "true": true, "xleave": true, "interleaved": true,
	"preempt": true, "autokey": true, "nts": true, "trust": true, "require": true, "offline": true,
	"auto_offline": true, "copy": true, "noselect": true, "-4": true, "-6": true, "ipv4": true, "ipv6": true,
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
// Options after the host are mapped where they mean something to slewd
// (port, minpoll/maxpoll, key, maxsources), ignored otherwise; peers,
// reference clocks, noselect sources and include/confdir/sourcedir
// directives are left out, each with a note. name is for the notes and
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
			note("reference clock (refclock) left out: slewd uses NTP servers only")
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
		host, opts := args[0], args[1:]
		if directive == "peer" {
			note("peer %s left out: slewd does not use symmetric mode (make it a server if it serves time)", host)
			continue
		}
		if strings.HasPrefix(host, "127.127.") {
			note("%s %s is a reference clock driver address: left out", directive, host)
			continue
		}
		port, key, skip := 0, uint32(0), false
		for i := 0; i < len(opts); i++ {
			opt := strings.ToLower(opts[i])
			if !optionsWithValue[opt] {
				switch {
				case opt == "noselect":
					skip = true
				case !knownFlags[opt]:
					note("unknown option %q on %s %s ignored", opts[i], directive, host)
				}
				continue
			}
			if i+1 >= len(opts) {
				note("option %s on %s %s has no value: ignored", opt, directive, host)
				continue
			}
			i++
			val := opts[i]
			num, err := strconv.Atoi(val)
			switch opt {
			case "port":
				if err != nil || num < 1 || num > 65535 {
					return imp, fmt.Errorf("%s: port %q of %s is not a number from 1 to 65535", at, val, host)
				}
				port = num
			case "key":
				id, err := strconv.ParseUint(val, 10, 32)
				if err != nil || id == 0 {
					return imp, fmt.Errorf("%s: key %q of %s is not a key number (1 to 4294967295)", at, val, host)
				}
				key = uint32(id)
			case "minpoll", "maxpoll":
				if err != nil || num < -7 || num > 24 {
					note("%s %q of %s ignored: want a power of two from -7 to 24", opt, val, host)
					continue
				}
				p := &minExp
				if opt == "maxpoll" {
					p = &maxExp
				}
				if *p == nil || (opt == "minpoll" && num < **p) || (opt == "maxpoll" && num > **p) {
					*p = &num
				}
			case "maxsources":
				if directive == "pool" && err == nil && num >= 1 && num <= 16 {
					imp.PoolSize = max(imp.PoolSize, num)
				}
			}
		}
		if skip {
			note("%s %s is noselect: left out", directive, host)
			continue
		}
		if port != 0 && strings.Count(host, ":") == 1 {
			return imp, fmt.Errorf("%s: %s has a port in the host and a port option: give one", at, host)
		}
		spec, err := ParseSource(host)
		if err != nil {
			return imp, fmt.Errorf("%s: %s %w", at, directive, err)
		}
		if port != 0 {
			spec.Port = port
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
			unkeyed++
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
			if sp.Port != DefaultPort {
				fmt.Fprintf(&b, " port %d", sp.Port)
			}
			if imp.KeyID != 0 {
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
	return b.String()
}
