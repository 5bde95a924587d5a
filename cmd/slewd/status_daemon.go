package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/urfave/cli/v2"

	"slewd/control"
	"slewd/foreign"
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
		s := "slewd " + t.Daemon.Version
		if t.Daemon.DryRun {
			s += " (dry run)"
		}
		sync := "not synchronized"
		if t.Synchronized {
			sync = "synchronized"
		}
		s += ": " + sync + ", offset now " + control.SignedSeconds(t.CorrectionS)
		if t.ErrorBoundS != nil {
			s += " ± " + control.UnsignedSeconds(*t.ErrorBoundS)
		}
		if t.Slewing && t.SlewEnd != nil {
			verb := ", slewing for "
			if t.Daemon.DryRun {
				verb = ", would slew for "
			}
			s += verb + control.TimeLeft(t.SlewLeftS)
		}
		s += fmt.Sprintf(", %d sources agree", t.Sources)
		if r := t.Reference; r != nil {
			s += ", reference " + r.Name
		}
		fmt.Fprintf(w, "daemon:        %s (slewd tracking, slewd sources)\n", s)
		if f := t.Foreign; f != nil && f.Last != nil {
			fmt.Fprintf(w, "foreign:       %s\n", lastForeign(f, time.Now()))
		}
	}
}

// lastForeign says in one line what other programs did to the clock:
// counts, and the last change with what slewd did and who likely did it.
func lastForeign(f *foreign.Tally, now time.Time) string {
	l := f.Last
	what := l.Kind
	switch {
	case l.Step < 0:
		what = fmt.Sprintf("set back by %v", (-l.Step).Round(time.Microsecond))
	case l.Step > 0:
		what = fmt.Sprintf("set forward by %v", l.Step.Round(time.Microsecond))
	case l.Suspend > 0:
		what = fmt.Sprintf("resumed after %v suspended", l.Suspend.Round(time.Millisecond))
	}
	return fmt.Sprintf("%d steps by other programs (%d back, %d undone), %d suspends, %d slews; the last %s ago: %s, %s; culprit: %s",
		f.Steps, f.Backward, f.Undone, f.Suspends, f.Slews, now.Sub(l.Time).Round(time.Second), what, l.Action, l.Culprit)
}
