package ntpclient

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"
	"unsafe"

	"github.com/beevik/ntp"
	"golang.org/x/sys/unix"
)

// NoKernelRxEnv, set to 1, makes the real client stamp a reply's arrival
// when its goroutine wakes instead of with the kernel's receive time, and
// NoKernelTxEnv a request's departure just before the write instead of
// with the kernel's transmit time: for measuring what kernel timestamps
// are worth (docs/performance.md).
const (
	NoKernelRxEnv = "SLEWD_NO_KERNEL_RX_TIMESTAMPS"
	NoKernelTxEnv = "SLEWD_NO_KERNEL_TX_TIMESTAMPS"
)

// rxStamps is how an exchange on a real network gets its local times.
//
// t4: beevik/ntp reads SO_TIMESTAMPNS from the reply's control message
// when its GetSystemTime is nil and the connection is a *net.UDPConn (and
// falls back to the wake-up time silently), so the dialer here opens that
// connection and turns the option on itself, noting once if it cannot.
//
// t1: beevik reads the clock just before its write, which leaves the
// system call and the stack below it inside the request's path and makes
// the path look longer out than back. With SO_TIMESTAMPING the kernel
// queues the time the packet left (SOF_TIMESTAMPING_TX_SOFTWARE: in the
// driver) on the socket's error queue; the dialer keeps a duplicate of
// the socket so that the stamp can be read after beevik has closed it,
// and t1 is replaced by it.
type rxStamps struct {
	disabled   bool // NoKernelRxEnv: stamp replies on wake-up
	txDisabled bool // NoKernelTxEnv: keep beevik's t1
	log        *slog.Logger
	noted      sync.Once
	txNoted    sync.Once
}

func newRxStamps(env Env, log *slog.Logger) *rxStamps {
	r := &rxStamps{log: log}
	if env.SimulatedTime {
		return r
	}
	if os.Getenv(NoKernelRxEnv) == "1" {
		r.disabled = true
		r.note(fmt.Errorf("%s=1", NoKernelRxEnv))
	}
	if os.Getenv(NoKernelTxEnv) == "1" {
		r.txDisabled = true
		r.noteTx(fmt.Errorf("%s=1", NoKernelTxEnv))
	}
	return r
}

// note says once that replies are stamped on wake-up.
func (r *rxStamps) note(why error) {
	r.noted.Do(func() {
		r.log.Info("kernel receive timestamps unavailable: replies are stamped when read, a few µs late", "why", why)
	})
}

// noteTx says once that requests are stamped before the write.
func (r *rxStamps) noteTx(why error) {
	r.txNoted.Do(func() {
		r.log.Info("kernel transmit timestamps unavailable: requests are stamped before the write, a few µs early", "why", why)
	})
}

// dial is a Dialer for real UDP with kernel receive timestamps on.
func (r *rxStamps) dial(local, remote string) (net.Conn, error) {
	conn, err := dialUDP(local, remote)
	if err != nil {
		return nil, err
	}
	if err := setsockopt(conn, unix.SO_TIMESTAMPNS, 1); err != nil {
		r.note(err)
	}
	return conn, nil
}

// exchange is one query's kernel transmit stamp.
type exchange struct {
	r  *rxStamps
	fd int // a duplicate of the query's socket; -1: none
}

// exchange returns a Dialer for one query, and what reads its transmit
// stamp afterwards. Close it when done.
func (r *rxStamps) exchange() *exchange { return &exchange{r: r, fd: -1} }

func (x *exchange) dial(local, remote string) (net.Conn, error) {
	conn, err := x.r.dial(local, remote)
	if err != nil || x.r.txDisabled {
		return conn, err
	}
	const flags = unix.SOF_TIMESTAMPING_TX_SOFTWARE | unix.SOF_TIMESTAMPING_SOFTWARE | unix.SOF_TIMESTAMPING_OPT_TSONLY
	uc := conn.(*net.UDPConn)
	if err := setsockopt(uc, unix.SO_TIMESTAMPING, flags); err != nil {
		x.r.noteTx(err)
		return conn, nil
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		x.r.noteTx(err)
		return conn, nil
	}
	var derr error
	raw.Control(func(fd uintptr) { x.fd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) })
	if derr != nil {
		x.fd = -1
		x.r.noteTx(derr)
	}
	return conn, nil
}

// apply replaces resp's t1 with the kernel's transmit stamp, if there is
// a plausible one (after t1, before t4), and recomputes offset and delay.
func (x *exchange) apply(resp *ntp.Response) {
	if x.fd < 0 || resp == nil {
		return
	}
	t1k, err := readTxStamp(x.fd)
	if err != nil {
		x.r.noteTx(err)
		return
	}
	ts := &resp.Timestamps
	if t1k.Before(ts.ClientXmit) || !t1k.Before(ts.ClientRecv) || t1k.Sub(ts.ClientXmit) > 100*time.Millisecond {
		x.r.noteTx(fmt.Errorf("kernel transmit stamp %v outside the exchange %v … %v", t1k, ts.ClientXmit, ts.ClientRecv))
		return
	}
	ts.ClientXmit = t1k
	resp.ClockOffset = (ts.ServerRecv.Sub(ts.ClientXmit) + ts.ServerXmit.Sub(ts.ClientRecv)) / 2
	resp.RTT = max(ts.ClientRecv.Sub(ts.ClientXmit)-ts.ServerXmit.Sub(ts.ServerRecv), 0)
}

func (x *exchange) Close() {
	if x.fd >= 0 {
		unix.Close(x.fd)
		x.fd = -1
	}
}

var errNoTxStamp = errors.New("no transmit timestamp on the socket's error queue")

// readTxStamp takes the software transmit stamp (SCM_TIMESTAMPING, the
// first of its three times) from fd's error queue.
func readTxStamp(fd int) (time.Time, error) {
	oob := make([]byte, 512)
	for range 4 { // a stamp per packet sent; beevik sends one
		_, oobn, _, _, err := unix.Recvmsg(fd, nil, oob, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) {
				return time.Time{}, errNoTxStamp
			}
			return time.Time{}, fmt.Errorf("reading the transmit timestamp: %w", err)
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return time.Time{}, fmt.Errorf("parsing the transmit timestamp: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPING {
				if t, ok := parseTimespec(m.Data); ok && !t.IsZero() {
					return t, nil
				}
			}
		}
	}
	return time.Time{}, errNoTxStamp
}

// parseTimespec reads the first struct timespec of a control message:
// two longs, 32 or 64 bits as the platform's are.
func parseTimespec(b []byte) (time.Time, bool) {
	const long = int(unsafe.Sizeof(uintptr(0)))
	if len(b) < 2*long {
		return time.Time{}, false
	}
	var sec, nsec int64
	if long == 8 {
		sec, nsec = int64(binary.NativeEndian.Uint64(b)), int64(binary.NativeEndian.Uint64(b[8:]))
	} else {
		sec, nsec = int64(int32(binary.NativeEndian.Uint32(b))), int64(int32(binary.NativeEndian.Uint32(b[4:])))
	}
	if sec == 0 && nsec == 0 {
		return time.Time{}, true
	}
	return time.Unix(sec, nsec), true
}

func dialUDP(local, remote string) (*net.UDPConn, error) {
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
	return net.DialUDP("udp", laddr, raddr)
}

func setsockopt(conn *net.UDPConn, opt, value int) error {
	raw, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, value)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("setsockopt %d: %w", opt, serr)
	}
	return nil
}
