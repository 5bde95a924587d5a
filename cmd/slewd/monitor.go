package main

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/urfave/cli/v2"

	"slewd/clock"
	"slewd/hostinfo"
)

// monitorMode is --monitor-only: no (correct the clock), yes (only
// measure and report), auto (correct it if this process may, else
// monitor). A bool-like flag for Go's flag package, so that
// `--monitor-only` alone means yes and `--monitor-only=auto` works.
type monitorMode string

const (
	monitorNo   monitorMode = "no"
	monitorYes  monitorMode = "yes"
	monitorAuto monitorMode = "auto"
)

func (m *monitorMode) Set(s string) error {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "yes", "true", "1", "on":
		*m = monitorYes
	case "no", "false", "0", "off", "":
		*m = monitorNo
	case "auto":
		*m = monitorAuto
	default:
		return fmt.Errorf("%q: give yes, no or auto", s)
	}
	return nil
}

func (m *monitorMode) String() string {
	if m == nil || *m == "" {
		return string(monitorNo)
	}
	return string(*m)
}

// IsBoolFlag lets the flag stand alone (flag.boolFlag).
func (m *monitorMode) IsBoolFlag() bool { return true }

func monitorOnlyFlag() cli.Flag {
	v := monitorNo
	return &cli.GenericFlag{Name: "monitor-only", Value: &v, EnvVars: []string{"SLEWD_MONITOR_ONLY"}, DefaultText: "no",
		Usage: "yes (or the flag alone): measure, select and report, never touch the clock nor mark it synchronized, and need no CAP_SYS_TIME (a container); " +
			"auto: correct the clock when allowed, else monitor; no: correct it or exit 77"}
}

// monitorOnly reads --monitor-only. The flag's value lives in the
// command's definition, so it is put back for the next run in the same
// process (tests).
func monitorOnly(c *cli.Context) monitorMode {
	v, ok := c.Generic("monitor-only").(*monitorMode)
	if !ok || v == nil {
		return monitorNo
	}
	m := *v
	*v = monitorNo
	return m
}

// decideMonitoring says whether `slewd run` only monitors: yes, or auto
// on a process that may not change the clock (one log line says so).
// Without clock rights and without monitoring it returns the exit-77
// error naming the capability and the three ways on.
func decideMonitoring(mode monitorMode, dryRun bool, c clock.Clock, v hostinfo.Virt, log *slog.Logger) (bool, error) {
	if mode == monitorYes {
		return true, nil
	}
	if dryRun {
		return false, nil
	}
	err := clock.CanAdjust(c)
	if err == nil || !clock.ErrPermission(err) {
		return false, nil // other failures are the discipline's to report
	}
	if mode == monitorAuto {
		log.Warn("no right to change the clock (CAP_SYS_TIME): monitoring only, nothing is corrected", "why", err, "container", v.Container, "user_namespace", v.UserNamespace)
		return true, nil
	}
	return false, cli.Exit(noClockRights(err, v), 77)
}

// noClockRights is `slewd run`'s refusal without CAP_SYS_TIME.
func noClockRights(err error, v hostinfo.Virt) string {
	where := ""
	switch {
	case v.InContainer() && v.UserNamespace:
		where = fmt.Sprintf(" (this is a %s container in a user namespace: the kernel refuses its clock changes whatever its capabilities)", v.Container)
	case v.UserNamespace:
		where = " (this is a user namespace: the kernel refuses its clock changes whatever its capabilities)"
	case v.InContainer():
		where = fmt.Sprintf(" (this is a %s container)", v.Container)
	}
	return fmt.Sprintf("slewd run: this process may not change the clock: it needs CAP_SYS_TIME%s.\n"+
		"Either grant it (systemd: AmbientCapabilities=CAP_SYS_TIME; docker/podman: --cap-add SYS_TIME; run as root), "+
		"or run slewd on the host, whose clock the guests and containers share, "+
		"or run `slewd run --monitor-only` to measure and report without touching the clock "+
		"(--monitor-only=auto does that only when the clock cannot be changed).\n(%v)", where, err)
}
