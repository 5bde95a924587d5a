package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"slewd/control"
	"slewd/discipline"
	"slewd/foreign"
	"slewd/metrics"
)

// startOps serves what `slewd run` shows of itself: the control socket
// (--control-socket) and the Prometheus metrics (--metrics-listen), each
// from its own goroutines and the discipline's snapshots only. post puts
// a state change into the discipline's loop. stop ends both.
func startOps(c *cli.Context, d *discipline.Discipline, post func(any), clk control.Clock, log *slog.Logger) (stop func(), err error) {
	view := control.View{Snapshot: d.Snapshot, Clock: clk, Version: version, Foreign: foreignTally}
	ctx, cancel := context.WithCancel(context.Background())
	var done []chan struct{}
	stop = func() {
		cancel()
		for _, ch := range done {
			<-ch
		}
	}
	if path := controlSocketPath(c); path != "none" {
		ln, mode, err := control.Listen(path)
		if err != nil {
			stop()
			return nil, cli.Exit(err.Error()+" (--control-socket none runs without one)", 1)
		}
		log.Info("control socket", "path", path, "mode", mode)
		srv := &control.Server{View: view, Post: post, Log: log}
		ch := make(chan struct{})
		done = append(done, ch)
		go func() {
			defer close(ch)
			if err := srv.Serve(ctx, ln); err != nil {
				log.Error("control socket stopped", "err", err)
			}
		}()
	}
	if addr := c.String("metrics-listen"); addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			stop()
			return nil, cli.Exit(fmt.Sprintf("--metrics-listen: %v", err), 1)
		}
		log.Info("metrics", "url", "http://"+ln.Addr().String()+"/metrics")
		ch := make(chan struct{})
		done = append(done, ch)
		go func() {
			defer close(ch)
			if err := metrics.Serve(ctx, ln, view); err != nil {
				log.Error("metrics server stopped", "err", err)
			}
		}()
	}
	return stop, nil
}

// controlSocketPath is --control-socket, by default slewd.sock in --run-dir.
func controlSocketPath(c *cli.Context) string {
	if p := c.String("control-socket"); p != "" {
		return p
	}
	return filepath.Join(c.String("run-dir"), filepath.Base(control.DefaultSocket))
}

// foreignTally is the foreign-change tally of a snapshot, for tracking
// and the metrics (the snapshot's is already a copy of its own).
func foreignTally(s discipline.Snapshot) *foreign.Tally {
	t := s.Foreign
	return &t
}

// markSyncedUnlessDry is how the discipline tells systemd the clock is
// synchronized: not at all in a dry run, which corrects nothing.
func markSyncedUnlessDry(dryRun bool) func() error {
	if dryRun {
		return func() error { return nil }
	}
	return markTimesyncSynced
}
