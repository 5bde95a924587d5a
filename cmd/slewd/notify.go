package main

import (
	"net"
	"os"
	"strconv"
	"time"
)

// sdNotify sends a notification to systemd (sd_notify(3)) when the
// service runs with Type=notify: NOTIFY_SOCKET names a datagram socket,
// "@" for the abstract namespace. Without it, nothing happens.
func sdNotify(state string) error {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return nil
	}
	if addr[0] == '@' {
		addr = "\x00" + addr[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer conn.Close()
	// systemd always drains its socket; anything else must not be able to
	// stall the daemon.
	conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, err = conn.Write([]byte(state))
	return err
}

// watchdogInterval is half of WATCHDOG_USEC (sd_watchdog_enabled(3)),
// when the watchdog is meant for this process; 0 otherwise.
func watchdogInterval() time.Duration {
	us, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || us <= 0 {
		return 0
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	return time.Duration(us) * time.Microsecond / 2
}
