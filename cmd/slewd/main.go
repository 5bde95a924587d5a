// Command slewd keeps a Linux clock right without ever moving it backwards.
//
// Each subcommand lives in its own file and registers itself with
// register; main only parses flags, builds dependencies and runs.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
)

// version is stamped by the Makefile (-ldflags "-X main.version=...").
var version = "dev"

type command struct {
	order int // position in `slewd help`
	cmd   *cli.Command
}

var commands []command

// register adds a subcommand; order sorts `slewd help`.
func register(order int, c *cli.Command) { commands = append(commands, command{order, c}) }

func newApp() *cli.App {
	slices.SortFunc(commands, func(a, b command) int { return a.order - b.order })
	app := &cli.App{
		Name:    "slewd",
		Usage:   "keep the clock right without ever moving it backwards",
		Version: version,
		Description: "slewd disciplines CLOCK_REALTIME from NTP servers by slewing only, as fast\n" +
			"as the kernel allows (10.05 %), so programs that die when time goes back\n" +
			"(Dovecot, Postfix) never see it go back. `slewd boot` steps it once, at boot.",
		EnableBashCompletion: true,
		Suggest:              true,
		// main prints errors and picks the exit code; tests run the app in-process.
		ExitErrHandler: func(*cli.Context, error) {},
	}
	for _, c := range commands {
		// A copy: running an app appends the help flag and command to its
		// commands, which must not pile up on the shared definitions
		// (tests run many apps, and the man page is made from one).
		cmd := *c.cmd
		flags := cmd.Flags
		if from, ok := flagsLike[cmd.Name]; ok {
			flags = flagsOf(from)
		}
		// Fresh flags too: urfave/cli records on a flag that its
		// environment variable set it (HasBeenSet), which must not carry
		// over to the next app.
		cmd.Flags = make([]cli.Flag, len(flags))
		for i, f := range flags {
			cmd.Flags[i] = cloneFlag(f)
		}
		cmd.Subcommands = slices.Clone(cmd.Subcommands)
		if cmd.OnUsageError == nil {
			cmd.OnUsageError = usageError
		}
		if cmd.ArgsUsage == "" && cmd.Action != nil {
			// A command without arguments refuses stray ones: most likely a
			// flag written after something else, which urfave/cli then
			// takes as an argument.
			action := cmd.Action
			cmd.Action = func(c *cli.Context) error {
				if c.NArg() > 0 {
					return cli.Exit(fmt.Sprintf("slewd %s takes no arguments, but got %q (flags go first; see slewd %s --help)",
						c.Command.Name, c.Args().Slice(), c.Command.Name), 2)
				}
				return action(c)
			}
		}
		app.Commands = append(app.Commands, &cmd)
	}
	return app
}

// cloneFlag copies a flag's struct (every urfave/cli flag is a pointer
// to one).
func cloneFlag(f cli.Flag) cli.Flag {
	v := reflect.ValueOf(f).Elem()
	n := reflect.New(v.Type())
	n.Elem().Set(v)
	return n.Interface().(cli.Flag)
}

// flagsOf is a registered command's flags.
func flagsOf(name string) []cli.Flag {
	for _, c := range commands {
		if c.cmd.Name == name {
			return c.cmd.Flags
		}
	}
	panic("slewd " + name + " is not registered")
}

// usageError makes a bad flag exit 2 (bad arguments, as every command's
// help says) with a pointer to the help, instead of 1 after a page of it.
func usageError(c *cli.Context, err error, _ bool) error {
	return cli.Exit(fmt.Sprintf("slewd %s: %v (see slewd %s --help)", c.Command.Name, err, c.Command.Name), 2)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	args := os.Args
	// Invoked as ntpdate (through a symlink): behave as `slewd ntpdate`.
	if filepath.Base(args[0]) == "ntpdate" {
		args = append([]string{"slewd", "ntpdate"}, args[1:]...)
	}
	if err := newApp().RunContext(ctx, args); err != nil {
		// An empty message: the command has already said it (ntpdate's lines).
		if msg := err.Error(); msg != "" {
			if !strings.HasPrefix(msg, "slewd") {
				msg = "slewd: " + msg
			}
			fmt.Fprintln(os.Stderr, msg)
		}
		if ec, ok := err.(cli.ExitCoder); ok {
			os.Exit(ec.ExitCode())
		}
		os.Exit(1)
	}
}
