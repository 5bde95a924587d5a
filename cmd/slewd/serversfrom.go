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
		Usage: "take the server and pool lines of an ntp.conf or chrony.conf (e.g. /etc/ntp.conf; repeatable; " +
			"port, minpoll/maxpoll, key and maxsources are used, other options ignored)"}
}

// applyServersFrom adds the sources of the --servers-from files to cfg. A
// file's minpoll/maxpoll, pool maxsources and key are used unless the
// command line sets them; keyID and keyFile are updated in place. What the
// import left out is said on stderr.
func applyServersFrom(c *cli.Context, cfg *ntpclient.Config, key *keyChoice) error {
	err := importServers(c.StringSlice("servers-from"), cfg, key, c.IsSet, func(n string) { fmt.Fprintln(c.App.ErrWriter, "slewd: note:", n) })
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	return nil
}

// keyChoice is the key to authenticate with: its id, its file and the
// file's format.
type keyChoice struct {
	ID     uint32
	File   string
	Format ntpclient.KeyFormat
}

// load reads the chosen key (none when ID is 0 and File "").
func (k keyChoice) load() (*ntpclient.Key, error) {
	if k.ID == 0 && k.File == "" {
		return nil, nil
	}
	if k.ID == 0 || k.File == "" {
		return nil, fmt.Errorf("authentication needs both a key file and a key id")
	}
	key, err := ntpclient.ReadKeyFileFormat(k.File, k.ID, k.Format)
	if err != nil {
		return nil, err
	}
	return &key, nil
}

// importServers adds the sources of configuration files to cfg: the
// servers and pools, and (unless given, as isSet says of the option) the
// pool size, poll bounds and the key the sources use with the file that
// holds it, in that file's format. query, run, boot, sync and ntpdate
// share it, so they authenticate alike.
func importServers(paths []string, cfg *ntpclient.Config, key *keyChoice, isSet func(string) bool, note func(string)) error {
	for _, path := range paths {
		imp, err := ntpclient.ReadConfigFile(path)
		if err != nil {
			return fmt.Errorf("--servers-from: %v", err)
		}
		for _, n := range imp.Notes {
			note(n)
		}
		if len(imp.Servers) == 0 && len(imp.Pools) == 0 {
			return fmt.Errorf("--servers-from %s: no server or pool lines slewd can use", path)
		}
		cfg.Servers = append(cfg.Servers, imp.Servers...)
		cfg.Pools = append(cfg.Pools, imp.Pools...)
		if imp.PoolSize != 0 && !isSet("pool-size") {
			cfg.PoolSize = imp.PoolSize
		}
		if imp.MinPoll != 0 && !isSet("minpoll") && cfg.MinPoll != 0 {
			cfg.MinPoll = imp.MinPoll
		}
		if imp.MaxPoll != 0 && !isSet("maxpoll") && cfg.MaxPoll != 0 {
			cfg.MaxPoll = imp.MaxPoll
		}
		if imp.KeyID != 0 && !isSet("key") {
			if key.ID != 0 && key.ID != imp.KeyID {
				return fmt.Errorf("--servers-from %s: its sources use key %d, another file's key %d: slewd uses one key", path, imp.KeyID, key.ID)
			}
			key.ID = imp.KeyID
			if !isSet("keyfile") && imp.KeyFile != "" {
				key.File, key.Format = imp.KeyFile, imp.KeyFormat
			}
		}
	}
	return nil
}
