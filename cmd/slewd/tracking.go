package main

import (
	"github.com/urfave/cli/v2"

	"slewd/control"
)

func init() {
	register(62, &cli.Command{
		Name:  "tracking",
		Usage: "show the running daemon's view of the clock: offset, correction left, frequency, error bound (as chronyc tracking)",
		Description: "Asks the running `slewd run` over its control socket: the reference source,\n" +
			"the offset now (the correction still to slew) with the slew's rate and end,\n" +
			"the offset the sources gave at the last update, the frequency and its\n" +
			"uncertainty, the error bound, root delay and dispersion, the poll interval,\n" +
			"what slewd told the kernel and systemd, and the clock changes made by other\n" +
			"programs. docs/operations.md explains every field. Offsets follow NTP's\n" +
			"sign: positive, the local clock is behind.\n\n" +
			"Reading needs membership of group slewd (or root). Exit status: 0, 1 if the\n" +
			"daemon refuses, 3 if no daemon is running, 77 without permission.",
		Flags: []cli.Flag{
			controlSocketFlag(),
			&cli.BoolFlag{Name: "json", EnvVars: []string{"SLEWD_JSON"}, Usage: "print the daemon's JSON answer (for scripts)"},
		},
		Action: func(c *cli.Context) error {
			resp, err := askDaemon(c, control.CmdTracking)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return writeJSON(c.App.Writer, resp)
			}
			if resp.Tracking == nil {
				return cli.Exit("slewd tracking: the daemon sent no tracking", 1)
			}
			control.WriteTracking(c.App.Writer, *resp.Tracking)
			return nil
		},
	})
}
