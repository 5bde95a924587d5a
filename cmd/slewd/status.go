package main

import (
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"slewd/clock"
	"slewd/hostinfo"
	"slewd/kernelstatus"
)

// clocksourcePath names the kernel's current clocksource.
const clocksourcePath = "/sys/devices/system/clocksource/clocksource0/current_clocksource"

func init() {
	register(60, &cli.Command{
		Name:  "status",
		Usage: "show the kernel clock's state: synchronized or not, rate, pending slews (read-only)",
		Description: "Reads the kernel clock with adjtimex in its read-only forms (modes 0 and\n" +
			"ADJ_OFFSET_SS_READ), so it needs no privileges and changes nothing. Shows\n" +
			"whether the kernel considers the clock synchronized and why, the tick and\n" +
			"frequency as rates, a pending adjtime() slew, the PLL offset, the error\n" +
			"bounds, the TAI offset and the clocksource, and says in plain words what\n" +
			"the clock is doing.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object (for scripts)"},
			controlSocketFlag(), // the daemon's view: status_daemon.go
		},
		Action: func(c *cli.Context) error {
			cs, _ := os.ReadFile(clocksourcePath)
			st, err := kernelstatus.Read(clock.System{}, strings.TrimSpace(string(cs)), readUptime())
			if err != nil {
				return cli.Exit("slewd status: "+err.Error(), 1)
			}
			st = st.WithMachine(hostinfo.System())
			return printStatus(c, st) // status_daemon.go: the kernel's view, then the daemon's
		},
	})
}

// readUptime is how long the machine has been up (/proc/uptime: BOOTTIME
// seconds), 0 if unknown.
func readUptime() time.Duration {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	sec, err := strconv.ParseFloat(f[0], 64)
	if err != nil || sec < 0 || math.IsNaN(sec) || math.IsInf(sec, 0) {
		return 0
	}
	return time.Duration(sec * 1e9)
}
