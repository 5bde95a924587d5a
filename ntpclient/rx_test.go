package ntpclient

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/beevik/ntp"
	"golang.org/x/sys/unix"
)

// The real dialer's sockets have kernel receive timestamps on (beevik
// then reads t4 from the reply's SCM_TIMESTAMPNS), and turning them off
// is said once.
func TestRxStamps(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var logged bytes.Buffer
	r := newRxStamps(Env{}, slog.New(slog.NewTextHandler(&logged, nil)))
	conn, err := r.dial("", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw, err := conn.(*net.UDPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var on int
	raw.Control(func(fd uintptr) { on, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS) })
	if err != nil || on != 1 {
		t.Fatalf("SO_TIMESTAMPNS = %d, %v; want 1", on, err)
	}
	if logged.Len() != 0 {
		t.Errorf("logged %q with timestamps on", logged.String())
	}

	t.Setenv(NoKernelRxEnv, "1")
	r = newRxStamps(Env{}, slog.New(slog.NewTextHandler(&logged, nil)))
	r.note(nil)
	if !r.disabled || strings.Count(logged.String(), "kernel receive timestamps unavailable") != 1 {
		t.Errorf("disabled %v, log %q", r.disabled, logged.String())
	}
	if r := newRxStamps(Env{SimulatedTime: true}, slog.New(slog.DiscardHandler)); r.disabled {
		t.Error("a simulation has no kernel timestamps to turn off")
	}
}

// loopbackServer answers NTP requests on 127.0.0.1 with the host's time
// (the internal tests cannot use ntptest, which imports ntpclient).
func loopbackServer(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		b := make([]byte, 100)
		for {
			_, a, err := pc.ReadFrom(b)
			if err != nil {
				return
			}
			now := time.Now()
			r := make([]byte, 48)
			r[0], r[1] = 0x24, 2 // version 4, server; stratum 2
			copy(r[24:32], b[40:48])
			ts := uint64(now.Unix()+2208988800)<<32 | uint64(now.Nanosecond())<<32/1e9
			for _, off := range []int{16, 32, 40} {
				binary.BigEndian.PutUint64(r[off:], ts)
			}
			pc.WriteTo(r, a)
		}
	}()
	return pc.LocalAddr().String()
}

// The kernel's transmit stamp replaces t1: it is later than beevik's
// reading before the write, and inside the exchange.
func TestKernelTxStamp(t *testing.T) {
	addr := loopbackServer(t)
	r := newRxStamps(Env{}, slog.New(slog.DiscardHandler))
	for i := range 20 {
		x := r.exchange()
		resp, err := ntp.QueryWithOptions(addr, ntp.QueryOptions{Timeout: time.Second, Dialer: x.dial})
		if err != nil {
			t.Fatal(err)
		}
		ts := resp.Timestamps
		x.apply(resp)
		x.Close()
		moved := resp.Timestamps.ClientXmit.Sub(ts.ClientXmit)
		if moved <= 0 || !resp.Timestamps.ClientXmit.Before(ts.ClientRecv) {
			t.Fatalf("query %d: t1 %v → %v (t4 %v)", i, ts.ClientXmit, resp.Timestamps.ClientXmit, ts.ClientRecv)
		}
		if d := resp.RTT - (ts.ClientRecv.Sub(resp.Timestamps.ClientXmit) - ts.ServerXmit.Sub(ts.ServerRecv)); d != 0 {
			t.Fatalf("query %d: delay not recomputed (%v off)", i, d)
		}
	}
	t.Setenv(NoKernelTxEnv, "1")
	r = newRxStamps(Env{}, slog.New(slog.DiscardHandler))
	x := r.exchange()
	resp, err := ntp.QueryWithOptions(addr, ntp.QueryOptions{Timeout: time.Second, Dialer: x.dial})
	if err != nil {
		t.Fatal(err)
	}
	t1 := resp.Timestamps.ClientXmit
	x.apply(resp)
	x.Close()
	if resp.Timestamps.ClientXmit != t1 {
		t.Errorf("%s=1 moved t1", NoKernelTxEnv)
	}
}
