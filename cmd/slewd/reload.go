package main

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// ignoreReload keeps SIGHUP from killing slewd run mid-slew: systemctl
// reload (ExecReload=) and the DHCP hooks send it. There is no
// configuration file to re-read yet, so the request is logged and ignored.
func ignoreReload(log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			log.Warn("SIGHUP: reloading is not supported yet; ignored")
		}
	}()
}
