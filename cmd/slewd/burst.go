package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"slewd/control"
)

func init() {
	register(63, &cli.Command{
		Name:  "burst",
		Usage: "make the running daemon ask every source again now (root only)",
		Description: "Asks the running `slewd run` over its control socket to poll every source\n" +
			"now instead of at its next poll (after a network came back, say), as chronyc\n" +
			"burst does. It changes the daemon's state, so only root may ask it.\n\n" +
			"Exit status: 0, 1 if the daemon refuses, 3 if no daemon is running, 77 if\n" +
			"not root.",
		Flags: []cli.Flag{controlSocketFlag()},
		Action: func(c *cli.Context) error {
			if _, err := askDaemon(c, control.CmdBurst); err != nil {
				return err
			}
			fmt.Fprintln(c.App.Writer, "slewd burst: asking every source again now")
			return nil
		},
	})
}
