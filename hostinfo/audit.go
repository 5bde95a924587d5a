package hostinfo

import (
	"encoding/hex"
	"errors"
	"io/fs"
	"strconv"
	"strings"
	"time"
)

// AuditRecord is one change of the clock the kernel audited
// (foreign-steps.md §2.1): a TIME_INJOFFSET step, a TIME_ADJNTPVAL change,
// or, on kernels before 5.2, a SYSCALL record of a clock-setting call.
type AuditRecord struct {
	At     time.Time
	Serial uint64
	// Kind is "step", or the ADJNTPVAL op: "offset", "freq", "status",
	// "tai", "tick", "adjust" (an adjtime() slew).
	Kind     string
	Step     time.Duration // for "step" from TIME_INJOFFSET (0 when only the syscall was seen)
	Old, New int64         // for ADJNTPVAL ops
	PID      int
	Comm     string // the SYSCALL record's comm and exe ("" when missing)
	Exe      string
}

const auditLog = "var/log/audit/audit.log"

// maxAuditRecords keeps the newest records only.
const maxAuditRecords = 512

func gatherAudit(fsys fs.FS, unreadable *[]string) ([]AuditRecord, bool) {
	b, err := readTail(fsys, auditLog, maxAuditTail)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			*unreadable = append(*unreadable, "/"+auditLog)
		}
		return nil, false
	}
	return parseAudit(lines(b)), true
}

// stepSyscalls are the syscalls that set CLOCK_REALTIME, by audit arch
// (numbers from Go's syscall tables; clock_settime only with a0=0).
var stepSyscalls = map[string]map[int]string{
	"c000003e": {164: "settimeofday", 227: "clock_settime"},             // x86_64
	"40000003": {79: "settimeofday", 264: "clock_settime", 25: "stime"}, // i386
	"c00000b7": {170: "settimeofday", 112: "clock_settime"},             // aarch64
	"40000028": {79: "settimeofday", 262: "clock_settime", 25: "stime"}, // arm
}

type auditLine struct {
	typ    string
	at     time.Time
	serial uint64
	kv     map[string]string
}

// parseAudit turns raw or enriched audit.log lines into records, grouping
// the TIME_* records with the SYSCALL record of the same event serial.
func parseAudit(ls []string) []AuditRecord {
	var out []AuditRecord
	sys := map[uint64]auditLine{}
	var times []auditLine
	for _, l := range ls {
		if !strings.HasPrefix(l, "type=SYSCALL ") && !strings.HasPrefix(l, "type=TIME_") {
			continue // most of a busy log; skip before parsing
		}
		a, ok := parseAuditLine(l)
		if !ok {
			continue
		}
		switch a.typ {
		case "SYSCALL":
			sys[a.serial] = a
		case "TIME_INJOFFSET", "TIME_ADJNTPVAL":
			times = append(times, a)
		}
	}
	covered := map[uint64]bool{}
	for _, a := range times {
		r := AuditRecord{At: a.at, Serial: a.serial}
		if a.typ == "TIME_INJOFFSET" {
			sec, _ := strconv.ParseInt(a.kv["sec"], 10, 64)
			nsec, _ := strconv.ParseInt(a.kv["nsec"], 10, 64)
			r.Kind, r.Step = "step", time.Duration(sec)*time.Second+time.Duration(nsec)
		} else {
			r.Kind = a.kv["op"]
			r.Old, _ = strconv.ParseInt(a.kv["old"], 10, 64)
			r.New, _ = strconv.ParseInt(a.kv["new"], 10, 64)
		}
		if s, ok := sys[a.serial]; ok {
			r.PID, _ = strconv.Atoi(s.kv["pid"])
			r.Comm, r.Exe = s.kv["comm"], s.kv["exe"]
		}
		covered[a.serial] = true
		out = append(out, r)
	}
	// Kernels before 5.2 log only the syscall.
	for serial, s := range sys {
		if covered[serial] || s.kv["success"] != "yes" {
			continue
		}
		n, _ := strconv.Atoi(s.kv["syscall"])
		name := stepSyscalls[s.kv["arch"]][n]
		switch {
		case name == "":
			continue
		case name == "clock_settime" && s.kv["a0"] != "0":
			continue // another clock than CLOCK_REALTIME
		case name == "settimeofday" && s.kv["a0"] == "0":
			continue // only the timezone
		}
		r := AuditRecord{At: s.at, Serial: serial, Kind: "step", Comm: s.kv["comm"], Exe: s.kv["exe"]}
		r.PID, _ = strconv.Atoi(s.kv["pid"])
		out = append(out, r)
	}
	sortAudit(out)
	if len(out) > maxAuditRecords {
		out = out[len(out)-maxAuditRecords:]
	}
	return out
}

func sortAudit(rs []AuditRecord) {
	// Insertion sort by serial: the input is nearly sorted already.
	for i := 1; i < len(rs); i++ {
		for j := i; j > 0 && rs[j].Serial < rs[j-1].Serial; j-- {
			rs[j], rs[j-1] = rs[j-1], rs[j]
		}
	}
}

// parseAuditLine reads `type=T msg=audit(SEC.MSEC:SERIAL): k=v ...`. Quoted
// values are unquoted; unquoted comm/exe are hex (audit encodes values with
// spaces so). Enriched logs append interpreted fields after \x1d: dropped.
func parseAuditLine(l string) (auditLine, bool) {
	l, _, _ = strings.Cut(l, "\x1d")
	rest, ok := strings.CutPrefix(l, "type=")
	if !ok {
		return auditLine{}, false
	}
	typ, rest, ok := strings.Cut(rest, " msg=audit(")
	if !ok {
		return auditLine{}, false
	}
	stamp, rest, ok := strings.Cut(rest, "):")
	if !ok {
		return auditLine{}, false
	}
	ts, ser, ok := strings.Cut(stamp, ":")
	if !ok {
		return auditLine{}, false
	}
	serial, err := strconv.ParseUint(ser, 10, 64)
	if err != nil {
		return auditLine{}, false
	}
	sec, frac, _ := strings.Cut(ts, ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return auditLine{}, false
	}
	ms, _ := strconv.ParseInt((frac + "000")[:3], 10, 64)
	a := auditLine{typ: typ, at: time.Unix(s, ms*1e6), serial: serial, kv: map[string]string{}}
	for rest != "" {
		rest = strings.TrimLeft(rest, " ")
		k, r, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		var v string
		if strings.HasPrefix(r, `"`) {
			v, rest, _ = strings.Cut(r[1:], `"`)
		} else {
			v, rest, _ = strings.Cut(r, " ")
			if k == "comm" || k == "exe" {
				if d, err := hex.DecodeString(v); err == nil && v != "" {
					v = string(d)
				}
			}
		}
		a.kv[k] = v
	}
	return a, true
}
