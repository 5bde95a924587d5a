package ntpclient

import (
	"fmt"
	"strconv"
	"strings"
)

// SourceLine is one server or pool line of an ntp.conf, a chrony.conf or
// slewd's configuration file, with its options read: what slewd honours
// in its fields, and a note for every option it does not, saying what the
// option would have meant.
type SourceLine struct {
	Pool bool
	// Spec is the source: HOST with the port option (or HOST:PORT), and
	// with the nts option an NTS source whose Port is ntsport's (4460).
	Spec Spec
	// Key is the `key N` symmetric key id (0: none).
	Key uint32
	// MinPoll and MaxPoll are the minpoll/maxpoll exponents (log2 s; nil:
	// not given), checked to be within -7..24.
	MinPoll, MaxPoll *int
	// MaxSources is chrony's maxsources on a pool line (0: not given).
	MaxSources int
	// Skip, if set, says why the source must be left out (noselect, or an
	// authentication slewd cannot do, so that it is not polled without).
	Skip string
	// Notes say, for each option not honoured, what it would have meant.
	Notes []string
}

// ParseSourceLine reads the arguments of a `server` or `pool` directive
// (directive is either; args start with the host, after any ntp.conf -4/-6)
// as chrony and ntpd write them. An error means the line cannot be used as
// written (a bad host or port, a bad key number, key together with nts);
// everything else it cannot honour is a note, never dropped silently.
func ParseSourceLine(directive string, args []string) (SourceLine, error) {
	directive = strings.ToLower(directive)
	if directive != "server" && directive != "pool" {
		return SourceLine{}, fmt.Errorf("%q is not a server or pool line", directive)
	}
	if len(args) == 0 {
		return SourceLine{}, fmt.Errorf("%s without a host", directive)
	}
	l := SourceLine{Pool: directive == "pool"}
	host, opts := args[0], args[1:]
	note := func(format string, a ...any) {
		l.Notes = append(l.Notes, fmt.Sprintf("%s %s: ", directive, host)+fmt.Sprintf(format, a...))
	}
	port, ntsPort, useNTS := 0, 0, false
	for i := 0; i < len(opts); i++ {
		opt := strings.ToLower(opts[i])
		if meaning, ok := flagMeanings[opt]; ok {
			switch opt {
			case "iburst", "burst":
				// slewd always bursts at start: honoured.
			case "noselect":
				l.Skip = fmt.Sprintf("%s %s is noselect: left out", directive, host)
			case "nts":
				useNTS = true
			case "autokey":
				l.Skip = fmt.Sprintf("%s %s left out: autokey %s", directive, host, meaning)
			default:
				note("%s ignored: it %s", opt, meaning)
			}
			continue
		}
		meaning, ok := optionMeanings[opt]
		if !ok {
			note("unknown option %q ignored", opts[i])
			continue
		}
		if i+1 >= len(opts) {
			note("option %s has no value: ignored", opt)
			continue
		}
		i++
		val := opts[i]
		num, err := strconv.Atoi(val)
		switch opt {
		case "port", "ntsport":
			if err != nil || num < 1 || num > 65535 {
				return l, fmt.Errorf("%s %q of %s is not a number from 1 to 65535", opt, val, host)
			}
			if opt == "port" {
				port = num
			} else {
				ntsPort = num
			}
		case "key":
			id, err := strconv.ParseUint(val, 10, 32)
			if err != nil || id == 0 {
				return l, fmt.Errorf("key %q of %s is not a key number (1 to 4294967295)", val, host)
			}
			l.Key = uint32(id)
		case "minpoll", "maxpoll":
			if err != nil || num < -7 || num > 24 {
				note("%s %q ignored: want a power of two from -7 to 24", opt, val)
				continue
			}
			if opt == "minpoll" {
				l.MinPoll = &num
			} else {
				l.MaxPoll = &num
			}
		case "maxsources":
			switch {
			case !l.Pool:
				note("maxsources ignored: it applies to pools only")
			case err != nil || num < 1 || num > 16:
				note("maxsources %q ignored: want 1 to 16", val)
			default:
				l.MaxSources = num
			}
		default:
			note("%s %s ignored: it %s", opt, val, fmt.Sprintf(meaning, val))
		}
	}
	if port != 0 && strings.Count(host, ":") == 1 {
		return l, fmt.Errorf("%s has a port in the host and a port option: give one", host)
	}
	spec, err := ParseSource(host)
	if err != nil {
		return l, fmt.Errorf("%s %w", directive, err)
	}
	if spec.NTS {
		return l, fmt.Errorf("%s %s: write the host alone and the nts option (%s %s nts)", directive, host, directive, spec.Host)
	}
	switch {
	case useNTS && l.Pool:
		// Polled without NTS it would be unauthenticated: never silently.
		return l, fmt.Errorf("pool %s nts: slewd does not do NTS for pools; list its NTS servers as `server HOST nts`, or drop nts to use the pool unauthenticated", host)
	case useNTS && l.Key != 0:
		return l, fmt.Errorf("%s has both key %d and nts: give one way to authenticate it", host, l.Key)
	case useNTS:
		spec.NTS, spec.Port = true, DefaultNTSKEPort
		if ntsPort != 0 {
			spec.Port = ntsPort
		}
		if port != 0 {
			note("port %d ignored: with nts the key exchange names the NTP server and port", port)
		}
	default:
		if port != 0 {
			spec.Port = port
		}
		if ntsPort != 0 {
			note("ntsport %d ignored: it is the NTS-KE port, and the line has no nts option", ntsPort)
		}
	}
	l.Spec = spec
	return l, nil
}

// flagMeanings are the options without a value that chrony and ntpd
// know, with what each would have done (for the note when slewd does
// not do it).
var flagMeanings = map[string]string{
	"iburst": "", "burst": "", "noselect": "", "nts": "",
	"autokey":      "would have authenticated the server (ntpd's Autokey), which slewd cannot do: it is not polled unauthenticated instead; use nts or key",
	"prefer":       "would have preferred this source in the combination; slewd weighs every selected source by its distance",
	"true":         "would have kept this source as a truechimer even when outvoted; slewd lets the majority decide",
	"trust":        "would have trusted this source when sources disagree; slewd lets the majority decide",
	"require":      "would have allowed no clock update without this source selected; slewd needs only its quorum (--min-sources)",
	"xleave":       "would have used interleaved mode for more exact server timestamps; slewd uses client mode with kernel timestamps",
	"interleaved":  "would have used interleaved mode for more exact server timestamps; slewd uses client mode with kernel timestamps",
	"preempt":      "would have let ntpd drop this association when it is not useful",
	"offline":      "would have started the source offline until chronyc online",
	"auto_offline": "would have taken the source offline when sending fails",
	"copy":         "would have copied the server's reference id and stratum (chrony server clusters)",
	"ipv4":         "would have used only the name's IPv4 addresses",
	"ipv6":         "would have used only the name's IPv6 addresses",
}

// optionMeanings are the options with a value; the text (with %s for the
// value) says what each would have done.
var optionMeanings = map[string]string{
	"port": "", "ntsport": "", "key": "", "minpoll": "", "maxpoll": "", "maxsources": "",
	"maxdelay":         "would have dropped samples with a round-trip delay above %s s; slewd's clock filter weighs samples by their delay",
	"maxdelayratio":    "would have dropped samples whose delay exceeds %s times the source's least delay; slewd's clock filter weighs samples by their delay",
	"maxdelaydevratio": "would have dropped samples whose delay exceeds the least by %s standard deviations; slewd's filter discounts them itself",
	"mindelay":         "would have fixed the source's least delay at %s s instead of measuring it",
	"asymmetry":        "would have corrected the source for a path asymmetry of %s",
	"offset":           "would have shifted this source's time by %s s",
	"minstratum":       "would have counted this source as at least stratum %s in selection",
	"polltarget":       "would have aimed for %s samples in the source's filter when adapting the poll",
	"presend":          "would have sent an extra request before each poll of 2^%s s or more",
	"minsamples":       "would have kept at least %s samples of this source before dropping old ones; slewd's filter keeps its own",
	"maxsamples":       "would have kept at most %s samples of this source; slewd's filter keeps its own",
	"filter":           "would have combined %s samples into each one (chrony's median filter); slewd's filter takes every sample",
	"version":          "would have asked in NTP version %s; slewd asks in version 4",
	"mode":             "(ntpd: %s) applies to reference clocks and broadcast, not to a server slewd polls",
	"ttl":              "(%s) applies to manycast and broadcast, not to a server slewd polls",
	"certset":          "would have trusted only chrony's ntstrustedcerts set %s for the key exchange; slewd trusts the system's CA roots, or --nts-ca FILE",
	"extfield":         "would have added NTP extension field %s to the requests",
	"maxdisp":          "would have dropped samples with a dispersion above %s s",
	"bias":             "would have shifted this source's time by %s s",
}

// directiveNote says what a directive other than a source that matters to
// the security of the time would have meant, or "" for others.
func directiveNote(directive string, args []string) string {
	arg := strings.Join(args, " ")
	switch directive {
	case "ntstrustedcerts":
		return fmt.Sprintf("ntstrustedcerts %s not imported: it would have added CAs for NTS key exchanges; give the file with --nts-ca (which replaces the system's roots)", arg)
	case "nosystemcert":
		return "nosystemcert not imported: it would have stopped trusting the system's CA roots for NTS; --nts-ca FILE does that"
	case "authselectmode":
		return fmt.Sprintf("authselectmode %s not imported: it would have changed how unauthenticated sources count beside authenticated ones; "+
			"slewd selects them alike, so leave out the servers that must not count", arg)
	case "minsources":
		return fmt.Sprintf("minsources %s not imported: it would have required that many selectable sources; use --min-sources", arg)
	}
	return ""
}
