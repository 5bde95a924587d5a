package ntpclient

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// NoKernelRxEnv, set to 1, makes the real client stamp a reply's arrival
// when its goroutine wakes instead of with the kernel's receive time: for
// measuring what kernel timestamps are worth (docs/performance.md).
const NoKernelRxEnv = "SLEWD_NO_KERNEL_RX_TIMESTAMPS"

// rxStamps is how replies get their receive time (t4) on a real network.
// beevik/ntp reads SO_TIMESTAMPNS from the reply's control message when
// its GetSystemTime is nil and the connection is a *net.UDPConn, and
// takes t1 just before the write, after building and signing the
// request. The dialer here opens that connection and turns the option on
// itself, so that a socket that refuses it is noticed (once) rather than
// silently stamped late.
type rxStamps struct {
	disabled bool // NoKernelRxEnv: stamp on wake-up
	log      *slog.Logger
	noted    sync.Once
}

func newRxStamps(env Env, log *slog.Logger) *rxStamps {
	r := &rxStamps{log: log}
	if !env.SimulatedTime && os.Getenv(NoKernelRxEnv) == "1" {
		r.disabled = true
		r.note(fmt.Errorf("%s=1", NoKernelRxEnv))
	}
	return r
}

// note says once that replies are stamped on wake-up.
func (r *rxStamps) note(why error) {
	r.noted.Do(func() {
		r.log.Info("kernel receive timestamps unavailable: replies are stamped when read, a few µs late", "why", why)
	})
}

// dial is a Dialer for real UDP with kernel receive timestamps on.
func (r *rxStamps) dial(local, remote string) (net.Conn, error) {
	var laddr *net.UDPAddr
	if local != "" {
		a, err := net.ResolveUDPAddr("udp", net.JoinHostPort(local, "0"))
		if err != nil {
			return nil, err
		}
		laddr = a
	}
	raddr, err := net.ResolveUDPAddr("udp", remote)
	if err != nil {
		return nil, err
	}
	conn, err := net.DialUDP("udp", laddr, raddr)
	if err != nil {
		return nil, err
	}
	if err := enableRxTimestamps(conn); err != nil {
		r.note(err)
	}
	return conn, nil
}

func enableRxTimestamps(conn *net.UDPConn) error {
	raw, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("setsockopt SO_TIMESTAMPNS: %w", serr)
	}
	return nil
}
