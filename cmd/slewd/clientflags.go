package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"slewd/config"
	"slewd/ntpclient"
)

// clientFlags are the NTP source options every measuring command shares
// (run, query, boot, sync): the servers come as arguments and/or flags.
func clientFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "server", Aliases: []string{"s"}, EnvVars: []string{"SLEWD_SERVERS"},
			Usage: "NTP server: HOST, HOST:PORT, IPv4, [IPv6]:PORT (repeatable; also as arguments)"},
		&cli.StringSliceFlag{Name: "pool", EnvVars: []string{"SLEWD_POOLS"},
			Usage: "pool name that resolves to several servers, --pool-size of which are used (repeatable)"},
		&cli.IntFlag{Name: "pool-size", Value: ntpclient.DefaultPoolSize, Usage: "servers taken from each pool"},
		&cli.IntFlag{Name: "min-sources", EnvVars: []string{"SLEWD_MIN_SOURCES"},
			Usage: "how many sources must agree", DefaultText: "1 with one server, else a majority"},
		&cli.DurationFlag{Name: "minpoll", Value: ntpclient.DefaultMinPoll, Usage: "shortest poll interval (at least 16s)"},
		&cli.DurationFlag{Name: "maxpoll", Value: ntpclient.DefaultMaxPoll, Usage: "longest poll interval"},
		&cli.DurationFlag{Name: "poll", Usage: "fixed poll interval instead of an adaptive one"},
		&cli.DurationFlag{Name: "timeout", Value: ntpclient.DefaultTimeout, Usage: "how long a query waits for its answer"},
		&cli.StringFlag{Name: "keyfile", EnvVars: []string{"SLEWD_KEYFILE"}, Usage: "chrony-format key file for symmetric-key authentication"},
		&cli.UintFlag{Name: "key", EnvVars: []string{"SLEWD_KEY"}, Usage: "key id in --keyfile to authenticate queries with"},
		serversFromFlag(),
		configFlag(),
	}
}

// clientConfig builds an ntpclient.Config from clientFlags and the arguments.
func clientConfig(c *cli.Context) (ntpclient.Config, error) {
	lc, err := applyConfig(c)
	if err != nil {
		return ntpclient.Config{}, err
	}
	cfg := ntpclient.Config{
		Servers:    nonEmpty(append(c.StringSlice("server"), c.Args().Slice()...)),
		Pools:      nonEmpty(c.StringSlice("pool")),
		PoolSize:   c.Int("pool-size"),
		MinSources: c.Int("min-sources"),
		MinPoll:    c.Duration("minpoll"),
		MaxPoll:    c.Duration("maxpoll"),
		FixedPoll:  c.Duration("poll"),
		Timeout:    c.Duration("timeout"),
	}
	if !lc.userSources {
		cfg.Servers, cfg.Pools = lc.fileSources()
	}
	key := keyChoice{ID: uint32(c.Uint("key")), File: c.String("keyfile"), Format: ntpclient.KeyFormatChrony}
	if err := applyServersFrom(c, &cfg, &key); err != nil {
		return cfg, err
	}
	if len(cfg.Servers) == 0 && len(cfg.Pools) == 0 {
		return cfg, cli.Exit("no NTP servers: give them as arguments, with --server or --pool (e.g. `slewd "+c.Command.Name+" pool.ntp.org`), or as server and pool lines in "+configName(c), 2)
	}
	for _, s := range cfg.Servers {
		if strings.HasPrefix(s, "-") {
			return cfg, cli.Exit(fmt.Sprintf("%q is not a server: flags go before the servers (slewd %s [flags] SERVER...)", s, c.Command.Name), 2)
		}
		if _, err := ntpclient.ParseSource(s); err != nil {
			return cfg, cli.Exit(fmt.Sprintf("bad server: %s", sourceHint(s, err, "")), 2)
		}
		if note := ipv6PortNote(s); note != "" {
			fmt.Fprintln(c.App.ErrWriter, "slewd: note:", note)
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"minpoll", cfg.MinPoll}, {"maxpoll", cfg.MaxPoll}, {"poll", cfg.FixedPoll}} {
		if d.v != 0 && d.v < ntpclient.MinPollFloor {
			return cfg, cli.Exit(fmt.Sprintf("--%s %v: never poll more often than every %v (RFC 4330)", d.name, d.v, ntpclient.MinPollFloor), 2)
		}
	}
	if (key.ID == 0) != (key.File == "") {
		return cfg, cli.Exit("authentication needs both --keyfile FILE and --key ID", 2)
	}
	k, err := key.load()
	if err != nil {
		return cfg, cli.Exit(err.Error(), 2)
	}
	cfg.Auth = k
	return cfg, nil
}

// configName is the configuration file for messages.
func configName(c *cli.Context) string {
	if p := c.String("config"); p != "" {
		return p
	}
	return config.DefaultPath
}

// nonEmpty drops empty entries: SLEWD_POOLS="" in /etc/default/slewd means
// no pool, not a pool with an empty name.
func nonEmpty(list []string) []string {
	return slices.DeleteFunc(list, func(s string) bool { return strings.TrimSpace(s) == "" })
}
