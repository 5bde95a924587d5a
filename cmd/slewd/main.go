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
		Description: "slewd disciplines CLOCK_REALTIME from NTP servers by slewing, as fast as\n" +
			"the kernel allows (10.05 %), and by stepping only forward, so programs that\n" +
			"die when time goes back (Dovecot, Postfix) never see it go back.\n" +
			"`slewd boot` sets it once, at boot.",
		EnableBashCompletion: true,
		Suggest:              true,
		// urfave/cli adds --help only with its own help command, which
		// helpCommand replaces; without it `slewd --help` is a usage error.
		Flags: []cli.Flag{cli.HelpFlag},
		// main prints errors and picks the exit code; tests run the app in-process.
		ExitErrHandler: func(*cli.Context, error) {},
		Metadata:       map[string]any{},
		// The command line, for validateFlags to tell a flag from its
		// environment variable.
		Before: func(c *cli.Context) error {
			c.App.Metadata[argsKey] = c.Args().Slice()
			return nil
		},
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			return cli.Exit(fmt.Sprintf("slewd: %v (see slewd --help)", err), 2)
		},
		// An unknown command is a usage error (exit 2), not urfave/cli's 3,
		// which slewd-boot.service accepts as success.
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return cli.ShowAppHelp(c)
			}
			return unknownCommand(c, c.Args().First())
		},
	}
	app.Commands = append(app.Commands, helpCommand())
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
		cmd.Flags = cloneFlags(flags)
		cmd.Subcommands = slices.Clone(cmd.Subcommands)
		if cmd.OnUsageError == nil {
			cmd.OnUsageError = usageError
		}
		if before := cmd.Before; before != nil {
			cmd.Before = func(c *cli.Context) error {
				if err := validateFlags(c); err != nil {
					return err
				}
				return before(c)
			}
		} else {
			cmd.Before = validateFlags
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

// cloneFlags copies each flag: urfave/cli stores a value taken from the
// environment in the flag itself, which must not carry over to the next
// app (tests run many).
func cloneFlags(flags []cli.Flag) []cli.Flag {
	out := make([]cli.Flag, len(flags))
	for i, f := range flags {
		v := reflect.ValueOf(f)
		if v.Kind() != reflect.Pointer {
			out[i] = f
			continue
		}
		c := reflect.New(v.Elem().Type())
		c.Elem().Set(v.Elem())
		out[i] = c.Interface().(cli.Flag)
	}
	return out
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

// unknownCommand refuses a command slewd does not have, with the nearest
// one it does.
func unknownCommand(c *cli.Context, name string) error {
	msg := fmt.Sprintf("slewd: no command %q", name)
	var names []string
	for _, cmd := range c.App.Commands {
		names = append(names, cmd.Name)
	}
	if s := cli.SuggestCommand(c.App.Commands, name); s != "" {
		msg += ". " + s
	}
	return cli.Exit(msg+" (commands: "+strings.Join(names, ", ")+"; see slewd --help)", 2)
}

// helpCommand replaces urfave/cli's, which exits 3 for an unknown topic.
func helpCommand() *cli.Command {
	return &cli.Command{
		Name: "help", Aliases: []string{"h"}, Usage: "show the commands, or one command's help",
		ArgsUsage: "[COMMAND]",
		Action: func(c *cli.Context) error {
			name := c.Args().First()
			if name == "" {
				return cli.ShowAppHelp(c)
			}
			if c.App.Command(name) == nil {
				return unknownCommand(c, name)
			}
			return cli.ShowCommandHelp(c.Lineage()[1], name)
		},
	}
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
