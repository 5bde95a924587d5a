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
// the TIME_* records with the SYSCALL record of the same event serial. Most
// SYSCALL lines of a busy log are unrelated: only those sharing a serial
// with a TIME_* record, or naming a clock-setting syscall, are parsed.
func parseAudit(ls []string) []AuditRecord {
	var out []AuditRecord
	var times []auditLine
	timeSerials := map[uint64]bool{}
	var sysLines []string
	for _, l := range ls {
		switch {
		case strings.HasPrefix(l, "type=TIME_"):
			if a, ok := parseAuditLine(l); ok && (a.typ == "TIME_INJOFFSET" || a.typ == "TIME_ADJNTPVAL") {
				times = append(times, a)
				timeSerials[a.serial] = true
			}
		case strings.HasPrefix(l, "type=SYSCALL "):
			sysLines = append(sysLines, l)
		}
	}
	sys := map[uint64]auditLine{}
	for _, l := range sysLines {
		if !timeSerials[auditSerial(l)] && !stepSyscallNumber[auditField(l, "syscall")] {
			continue
		}
		if a, ok := parseAuditLine(l); ok {
			sys[a.serial] = a
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

// stepSyscallNumber holds every number in stepSyscalls, for a quick filter.
var stepSyscallNumber = func() map[string]bool {
	m := map[string]bool{}
	for _, byNum := range stepSyscalls {
		for n := range byNum {
			m[strconv.Itoa(n)] = true
		}
	}
	return m
}()

// auditSerial is the event serial of a line, 0 when malformed.
func auditSerial(l string) uint64 {
	_, rest, ok := strings.Cut(l, "msg=audit(")
	if !ok {
		return 0
	}
	stamp, _, _ := strings.Cut(rest, ")")
	_, ser, _ := strings.Cut(stamp, ":")
	n, _ := strconv.ParseUint(ser, 10, 64)
	return n
}

// auditField is the unquoted value of " key=" in a line ("" if absent).
func auditField(l, key string) string {
	i := strings.Index(l, " "+key+"=")
	if i < 0 {
		return ""
	}
	v := l[i+len(key)+2:]
	if j := strings.IndexByte(v, ' '); j >= 0 {
		v = v[:j]
	}
	return v
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
