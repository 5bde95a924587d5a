package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"slewd/clock"
	"slewd/discipline"
)

// reloadRequest is posted into the discipline's loop on SIGHUP
// (`systemctl reload slewd`: ExecReload sends it).
type reloadRequest struct{}

// watchReload posts a reloadRequest for every SIGHUP until ctx ends or
// stop is called. Without it SIGHUP would kill the daemon.
func watchReload(ctx context.Context, loop clock.Loop) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-hup:
				loop.Post(reloadRequest{})
			case <-ctx.Done():
				return
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(hup); close(done) }
}

// sourceSetter is what a reload needs of ntpclient.Client.
type sourceSetter interface {
	SetSources(servers, pools []string) error
}

// reloader is the discipline's handler for reloadRequest: the sources
// change, nothing else. The servo's frequency and the slew under way live
// in the discipline, which a reload does not touch; a source whose spec
// is unchanged keeps its samples (ntpclient.Client.SetSources). A bad
// configuration is logged and the sources in use are kept: a typo must
// not stop the daemon.
type reloader struct {
	client  sourceSetter
	sources func() (servers, pools, notes []string, err error)
	log     *slog.Logger
	// notify, if set, tells systemd the reload's start and end
	// (RELOADING=1 with CLOCK_MONOTONIC, then READY=1: sd_notify(3)), so
	// that `systemctl reload` returns when it is done.
	notify func(string)
	mono   func() time.Duration
}

func (r *reloader) HandleEvent(_ *discipline.Discipline, ev any) (bool, error) {
	if _, ok := ev.(reloadRequest); !ok {
		return false, nil
	}
	if r.notify != nil {
		r.notify(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", r.mono()/time.Microsecond))
		defer r.notify("READY=1")
	}
	servers, pools, notes, err := r.sources()
	for _, n := range notes {
		r.log.Warn("reload: " + n)
	}
	switch {
	case errors.Is(err, errKeepSources):
		return true, nil
	case err != nil:
		r.log.Error("reload: configuration not used, the sources in use are kept", "err", err)
		return true, nil
	}
	if err := r.client.SetSources(servers, pools); err != nil {
		r.log.Error("reload: sources not changed", "err", err)
		return true, nil
	}
	r.log.Info("reloaded the sources", "servers", servers, "pools", pools)
	return true, nil
}

// newReloader is `slewd run`'s reload handler.
func newReloader(c *cli.Context, client sourceSetter, log *slog.Logger) *reloader {
	lc, _ := applyConfig(c) // read before: clientConfig
	if lc == nil {
		lc = &loadedConfig{}
	}
	return &reloader{client: client, sources: newSourceReloader(c, lc).sources, log: log,
		notify: func(state string) {
			if err := sdNotify(state); err != nil {
				log.Debug("sd_notify failed", "err", err)
			}
		},
		mono: clock.System{}.Mono}
}
