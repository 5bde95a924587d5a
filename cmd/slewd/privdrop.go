package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Least privilege for a `slewd run` started as root outside systemd (an
// init script, a container's entry point): --user NAME makes it that
// user, keeping CAP_SYS_TIME and nothing else, as the unit's User=,
// AmbientCapabilities=CAP_SYS_TIME and CapabilityBoundingSet= do.
//
// Linux keeps credentials per thread and Go runs many threads, so the
// change is made on one locked thread, which then executes slewd again
// (/proc/self/exe, same arguments): the new image runs wholly as the user,
// with CAP_SYS_TIME as an ambient capability (permitted, effective,
// inheritable, and the only one in the bounding set) and no_new_privs set.
// The second start finds itself already the user and goes on.

// runAs is the user --user names: a name from the password database, or
// UID[:GID].
type runAs struct {
	name     string
	uid, gid int
}

func lookupRunAs(spec string) (runAs, error) {
	if uidS, gidS, ok := strings.Cut(spec, ":"); ok || isDigits(spec) {
		uid, err1 := strconv.Atoi(uidS)
		gid, err2 := strconv.Atoi(gidS)
		if !ok {
			gid, err2 = uid, nil
		}
		if err1 != nil || err2 != nil || uid < 0 || gid < 0 {
			return runAs{}, fmt.Errorf("--user %q: give a user name or UID[:GID]", spec)
		}
		return runAs{name: spec, uid: uid, gid: gid}, nil
	}
	u, err := user.Lookup(spec)
	if err != nil {
		return runAs{}, fmt.Errorf("--user %q: %w (create it, e.g. with the package's sysusers.d file: systemd-sysusers)", spec, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return runAs{name: spec, uid: uid, gid: gid}, nil
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// capSysTime is the one capability slewd keeps: it sets the clock
// (adjtimex, clock_adjtime, clock_settime) and nothing else.
const capSysTime = unix.CAP_SYS_TIME

// dropPrivileges makes the process to.uid/to.gid with CAP_SYS_TIME only.
// Run as root, it prepares dirs (created 0755 if missing, owned by the
// user, as systemd's StateDirectory= and RuntimeDirectory= would) and
// executes slewd again as the user: it returns only on an error. Run as
// the user already, it checks that CAP_SYS_TIME is there and nothing
// more, and returns nil.
func dropPrivileges(to runAs, dirs []string, log *slog.Logger) error {
	if os.Geteuid() == to.uid && os.Getegid() == to.gid {
		caps, err := readCaps()
		if err != nil {
			return err
		}
		if caps.eff != 1<<capSysTime || caps.bnd&^(1<<capSysTime) != 0 {
			return fmt.Errorf("running as %s but with capabilities effective %#x, bounding %#x: want CAP_SYS_TIME alone", to.name, caps.eff, caps.bnd)
		}
		log.Info("running as an unprivileged user with CAP_SYS_TIME only", "user", to.name, "uid", to.uid, "gid", to.gid)
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("--user %s: slewd must be started as root to become another user (it runs as uid %d)", to.name, os.Geteuid())
	}
	for _, d := range dirs {
		if err := ownDir(d, to); err != nil {
			return err
		}
	}
	exe, err := os.Executable()
	if err != nil {
		exe = "/proc/self/exe"
	}
	log.Info("dropping privileges: becoming the user, keeping CAP_SYS_TIME only", "user", to.name, "uid", to.uid, "gid", to.gid)
	runtime.LockOSThread() // never unlocked: the thread execs or the process fails
	if err := becomeOnThisThread(to); err != nil {
		return fmt.Errorf("--user %s: %w", to.name, err)
	}
	err = syscall.Exec("/proc/self/exe", os.Args, os.Environ())
	// This thread is the user now, the others are still root: never go on.
	fmt.Fprintf(os.Stderr, "slewd: --user %s: executing %s again: %v\n", to.name, exe, err)
	os.Exit(1)
	return nil
}

// becomeOnThisThread changes the calling thread's credentials only (raw
// system calls, not Go's all-threads Setresuid): the exec that follows
// makes them the process's.
func becomeOnThisThread(to runAs) error {
	prctl := func(what string, op, arg uintptr) error {
		if _, _, e := unix.RawSyscall6(unix.SYS_PRCTL, op, arg, 0, 0, 0, 0); e != 0 {
			return fmt.Errorf("%s: %w", what, e)
		}
		return nil
	}
	// The bounding set first: dropping from it needs CAP_SETPCAP, which goes.
	last, err := lastCap()
	if err != nil {
		return err
	}
	for c := 0; c <= last; c++ {
		if c != capSysTime {
			if err := prctl("dropping capability "+strconv.Itoa(c)+" from the bounding set", unix.PR_CAPBSET_DROP, uintptr(c)); err != nil {
				return err
			}
		}
	}
	// Keep the permitted set across the change of uid.
	if err := prctl("PR_SET_KEEPCAPS", unix.PR_SET_KEEPCAPS, 1); err != nil {
		return err
	}
	gid := uintptr(to.gid)
	groups := []uint32{uint32(to.gid)}
	if _, _, e := unix.RawSyscall(sysSetgroups, 1, uintptr(unsafe.Pointer(&groups[0])), 0); e != 0 {
		return fmt.Errorf("setgroups: %w", e)
	}
	if _, _, e := unix.RawSyscall(sysSetresgid, gid, gid, gid); e != 0 {
		return fmt.Errorf("setresgid %d: %w", to.gid, e)
	}
	uid := uintptr(to.uid)
	if _, _, e := unix.RawSyscall(sysSetresuid, uid, uid, uid); e != 0 {
		return fmt.Errorf("setresuid %d: %w", to.uid, e)
	}
	// CAP_SYS_TIME alone, and ambient so that it survives the exec of a
	// binary without file capabilities.
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	data[0].Effective = 1 << capSysTime
	data[0].Permitted = 1 << capSysTime
	data[0].Inheritable = 1 << capSysTime
	if _, _, e := unix.RawSyscall(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); e != 0 {
		return fmt.Errorf("capset CAP_SYS_TIME: %w", e)
	}
	if _, _, e := unix.RawSyscall6(unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, capSysTime, 0, 0, 0); e != 0 {
		return fmt.Errorf("raising ambient CAP_SYS_TIME: %w", e)
	}
	return prctl("PR_SET_NO_NEW_PRIVS", unix.PR_SET_NO_NEW_PRIVS, 1)
}

// ownDir creates dir (0755) if it is missing and gives it to the user,
// who writes the state and status files in it.
func ownDir(dir string, to runAs) error {
	if dir == "" {
		return nil
	}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := os.Chmod(dir, 0o755); err != nil { // past the umask
			return err
		}
	}
	if err := os.Chown(dir, to.uid, to.gid); err != nil {
		return fmt.Errorf("--user %s: giving %s to the user: %w", to.name, dir, err)
	}
	// And the files an earlier run as root left there (the lock, the
	// drift file): regular files only, never through a link.
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Type().IsRegular() {
			if err := os.Lchown(filepath.Join(dir, e.Name()), to.uid, to.gid); err != nil {
				return fmt.Errorf("--user %s: giving %s to the user: %w", to.name, filepath.Join(dir, e.Name()), err)
			}
		}
	}
	return nil
}

func lastCap() (int, error) {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// procCaps is what /proc/self/status says of the capability sets.
type procCaps struct{ inh, prm, eff, bnd, amb uint64 }

func readCaps() (procCaps, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return procCaps{}, err
	}
	return parseCaps(string(b))
}

func parseCaps(status string) (procCaps, error) {
	var c procCaps
	fields := map[string]*uint64{"CapInh": &c.inh, "CapPrm": &c.prm, "CapEff": &c.eff, "CapBnd": &c.bnd, "CapAmb": &c.amb}
	n := 0
	for _, line := range strings.Split(status, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if p := fields[k]; ok && p != nil {
			x, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return c, fmt.Errorf("/proc/self/status %s: %w", k, err)
			}
			*p = x
			n++
		}
	}
	if n != len(fields) {
		return c, fmt.Errorf("/proc/self/status: capability lines missing")
	}
	return c, nil
}
