package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"slewd/ntpclient"
)

// serversFromFlag is --servers-from, part of clientFlags: migrate from
// ntpd or chronyd by reading the servers of their configuration.
func serversFromFlag() cli.Flag {
	return &cli.StringSliceFlag{Name: "servers-from", EnvVars: []string{"SLEWD_SERVERS_FROM"},
		Usage: "take the server, pool and refclock PHC lines of an ntp.conf or chrony.conf (e.g. /etc/ntp.conf; repeatable; " +
			"port, minpoll/maxpoll, key and maxsources are used, other options ignored)"}
}

// applyServersFrom adds the sources of the --servers-from files to cfg. A
// file's minpoll/maxpoll, pool maxsources and key are used unless the
// command line sets them; keyID and keyFile are updated in place. What the
// import left out is said on stderr.
func applyServersFrom(c *cli.Context, cfg *ntpclient.Config, keyID *uint32, keyFile *string) error {
	for _, path := range c.StringSlice("servers-from") {
		imp, err := ntpclient.ReadConfigFile(path)
		if err != nil {
			return cli.Exit(fmt.Sprintf("--servers-from: %v", err), 2)
		}
		for _, n := range imp.Notes {
			fmt.Fprintln(c.App.ErrWriter, "slewd: note:", n)
		}
		if len(imp.Servers) == 0 && len(imp.Pools) == 0 && len(imp.PHCs) == 0 {
			return cli.Exit(fmt.Sprintf("--servers-from %s: no server or pool lines slewd can use", path), 2)
		}
		cfg.Servers = append(cfg.Servers, imp.Servers...)
		cfg.Pools = append(cfg.Pools, imp.Pools...)
		cfg.PHCs = append(cfg.PHCs, imp.PHCs...)
		if imp.PoolSize != 0 && !c.IsSet("pool-size") {
			cfg.PoolSize = imp.PoolSize
		}
		if imp.MinPoll != 0 && !c.IsSet("minpoll") && cfg.MinPoll != 0 {
			cfg.MinPoll = imp.MinPoll
		}
		if imp.MaxPoll != 0 && !c.IsSet("maxpoll") && cfg.MaxPoll != 0 {
			cfg.MaxPoll = imp.MaxPoll
		}
		if imp.KeyID != 0 && !c.IsSet("key") {
			if *keyID != 0 && *keyID != imp.KeyID {
				return cli.Exit(fmt.Sprintf("--servers-from %s: its sources use key %d, another file's key %d: slewd uses one key", path, imp.KeyID, *keyID), 2)
			}
			*keyID = imp.KeyID
			if !c.IsSet("keyfile") && imp.KeyFile != "" {
				*keyFile = imp.KeyFile
			}
		}
	}
	return nil
}
