package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/urfave/cli/v2"

	"slewd/control"
	"slewd/kernelstatus"
)

// daemonStatus is `slewd status`'s view of the daemon: what its control
// socket says, or that none is running.
type daemonStatus struct {
	Running  bool              `json:"running"`
	Socket   string            `json:"socket"`
	Error    string            `json:"error,omitempty"` // why there is no tracking
	Tracking *control.Tracking `json:"tracking,omitempty"`
}

// statusWithDaemon is what `slewd status --json` prints: the kernel's
// fields, and the daemon's under "daemon".
type statusWithDaemon struct {
	kernelstatus.Status
	Daemon daemonStatus `json:"daemon"`
}

// askDaemonStatus asks the daemon for its tracking; a daemon that is not
// there is an answer, not an error.
func askDaemonStatus(ctx context.Context, socket string) daemonStatus {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	d := daemonStatus{Socket: socket}
	resp, err := control.Ask(ctx, socket, control.CmdTracking)
	switch {
	case errors.Is(err, control.ErrNoDaemon):
		d.Error = "not running"
	case err != nil:
		d.Running, d.Error = !errors.Is(err, control.ErrNoDaemon), err.Error()
	case resp.Error != "":
		d.Running, d.Error = true, resp.Error
	default:
		d.Running, d.Tracking = true, resp.Tracking
	}
	return d
}

// printStatus prints the kernel's status and the daemon's view.
func printStatus(c *cli.Context, st kernelstatus.Status) error {
	d := askDaemonStatus(c.Context, c.String("control-socket"))
	if c.Bool("json") {
		return writeJSON(c.App.Writer, statusWithDaemon{st, d})
	}
	kernelstatus.WriteText(c.App.Writer, st)
	writeDaemonText(c.App.Writer, d)
	return nil
}

func writeDaemonText(w io.Writer, d daemonStatus) {
	switch t := d.Tracking; {
	case !d.Running:
		fmt.Fprintf(w, "daemon:        not running (nothing serves %s)\n", d.Socket)
	case t == nil:
		fmt.Fprintf(w, "daemon:        running, but: %s\n", d.Error)
	default:
		fmt.Fprintf(w, "daemon:        %s (slewd tracking, slewd sources)\n", control.TrackingLine(*t))
		if f := t.Foreign; f != nil && f.Last != nil {
			fmt.Fprintf(w, "foreign:       %s\n", control.ForeignLine(f, time.Now()))
		}
	}
}
