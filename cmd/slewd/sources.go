package main

import (
	"encoding/json"
	"errors"
	"io"

	"github.com/urfave/cli/v2"

	"slewd/control"
)

// exitNoDaemon is the client commands' exit status when no daemon runs.
const exitNoDaemon = 3

func init() {
	register(61, &cli.Command{
		Name:  "sources",
		Usage: "show the running daemon's sources: state, reach, offset, delay (as chronyc sources)",
		Description: "Asks the running `slewd run` over its control socket and prints one line per\n" +
			"source: its state in the last selection and why it is not selected, stratum,\n" +
			"poll interval, reach register (octal), age of the last sample, filtered offset\n" +
			"± its error bound, and delay. -v explains the columns. docs/operations.md\n" +
			"explains every field. Offsets follow NTP's sign: positive, the local clock is\n" +
			"behind the source.\n\n" +
			"Reading needs membership of group slewd (or root). Exit status: 0, 1 if the\n" +
			"daemon refuses, 3 if no daemon is running, 77 without permission.",
		Flags: []cli.Flag{
			controlSocketFlag(),
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "explain the columns and the states"},
			&cli.BoolFlag{Name: "json", EnvVars: []string{"SLEWD_JSON"}, Usage: "print the daemon's JSON answer (for scripts)"},
		},
		Action: func(c *cli.Context) error {
			resp, err := askDaemon(c, control.CmdSources)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return writeJSON(c.App.Writer, resp)
			}
			control.WriteSources(c.App.Writer, resp.Sources, c.Bool("verbose"))
			return nil
		},
	})
}

// controlSocketFlag is where the client commands find the daemon.
func controlSocketFlag() cli.Flag {
	return &cli.StringFlag{Name: "control-socket", Value: control.DefaultSocket, EnvVars: []string{"SLEWD_CONTROL_SOCKET"},
		Usage: "the running daemon's control socket (slewd run --control-socket)"}
}

// askDaemon asks the daemon one command; the errors carry the exit
// statuses the client commands document.
func askDaemon(c *cli.Context, command string) (control.Response, error) {
	name := "slewd " + c.Command.Name
	resp, err := control.Ask(c.Context, c.String("control-socket"), command)
	switch {
	case errors.Is(err, control.ErrNoDaemon):
		return resp, cli.Exit(name+": "+err.Error()+"; start it with `slewd run` (systemctl start slewd)", exitNoDaemon)
	case errors.Is(err, control.ErrPermission):
		return resp, cli.Exit(name+": "+err.Error(), 77)
	case err != nil:
		return resp, cli.Exit(name+": "+err.Error(), 1)
	case resp.Denied:
		return resp, cli.Exit(name+": "+resp.Error, 77)
	case resp.Error != "":
		return resp, cli.Exit(name+": the daemon says: "+resp.Error, 1)
	}
	return resp, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
