package ntptest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"slewd/clock"
)

// UDPServer is an NTP server on a real UDP socket, for tests that use the
// host's network stack (usually loopback).
type UDPServer struct {
	state
	conn  *net.UDPConn
	truth func() time.Time
	wg    sync.WaitGroup
}

// NewServer starts a server on 127.0.0.1 at a free port that serves
// time.Now plus cfg.Offset, like httptest.NewServer. It panics if it
// cannot listen (a test cannot go on without it).
func NewServer(cfg ServerConfig) *UDPServer {
	s, err := Listen("127.0.0.1:0", cfg, nil)
	if err != nil {
		panic(fmt.Sprintf("ntptest: %v", err))
	}
	return s
}

// Listen starts a server on addr ("127.0.0.1:0", "[::1]:12300", …). truth
// is the true time; nil means time.Now.
func Listen(addr string, cfg ServerConfig, truth func() time.Time) (*UDPServer, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	conn, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	if truth == nil {
		truth = time.Now
	}
	s := &UDPServer{conn: conn, truth: truth}
	s.cfg = cfg
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// RawTruth is a truth source for a server running on the machine whose
// clock is under test (a qemu guest): REALTIME read once now, then
// advanced by CLOCK_MONOTONIC_RAW, which no slewing touches. The server
// then never chases the clock being disciplined.
func RawTruth(c clock.Clock) func() time.Time {
	anchor := clock.Read(c, 5)
	return func() time.Time {
		return anchor.Real.Add(c.Raw() - anchor.Raw)
	}
}

// Addr is the server's address, HOST:PORT.
func (s *UDPServer) Addr() string { return s.conn.LocalAddr().String() }

// Port is the server's UDP port.
func (s *UDPServer) Port() int { return s.conn.LocalAddr().(*net.UDPAddr).Port }

// Close stops the server and waits for replies in flight.
func (s *UDPServer) Close() {
	s.conn.Close()
	s.wg.Wait()
}

func (s *UDPServer) serve() {
	defer s.wg.Done()
	buf := make([]byte, 2048)
	oob := make([]byte, 256)
	setTimestampNS(s.conn) // for KernelRx, which a test may turn on at any time
	for {
		n, oobn, _, from, err := s.conn.ReadMsgUDP(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		recv := s.truth()
		cfg := s.Config()
		if k, ok := kernelStamp(oob[:oobn]); ok && cfg.KernelRx { // (an emulated link stamps after its delay instead)
			// REALTIME's rate is within 10 % of true time's, and the
			// stamp µs old: carry the truth back by REALTIME's interval,
			// read just before the truth so that nothing runs between.
			age := time.Now().Sub(k)
			recv = s.truth().Add(-age)
		}
		req := append([]byte(nil), buf[:n]...)
		if cfg.Delay == 0 && cfg.Jitter == 0 && cfg.Asymmetry == 0 && cfg.Loss == 0 {
			if reply := s.respond(req, recv, s.truth()); reply != nil {
				s.conn.WriteToUDP(reply, from)
			}
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.emulateLink(cfg, req, from)
		}()
	}
}

// emulateLink delays a request and its reply as the link would, taking
// the server's timestamps where the packets would cross the server.
func (s *UDPServer) emulateLink(cfg ServerConfig, req []byte, from *net.UDPAddr) {
	if rand.Float64() < cfg.Loss {
		s.lost.Add(1)
		return
	}
	time.Sleep(cfg.Delay + exp(cfg.Jitter, rand.ExpFloat64()))
	recv := s.truth()
	reply := s.respond(req, recv, s.truth())
	if reply == nil {
		return
	}
	if rand.Float64() < cfg.Loss {
		s.lost.Add(1)
		return
	}
	time.Sleep(cfg.Delay + cfg.Asymmetry + exp(cfg.Jitter, rand.ExpFloat64()))
	s.conn.WriteToUDP(reply, from)
}

// exp scales a unit exponential draw to the given mean.
func exp(mean time.Duration, unit float64) time.Duration {
	if mean <= 0 {
		return 0
	}
	return time.Duration(float64(mean) * unit)
}

func setTimestampNS(conn *net.UDPConn) error {
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
	return serr
}

// kernelStamp is the SCM_TIMESTAMPNS receive stamp in oob, if any.
func kernelStamp(oob []byte) (time.Time, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Time{}, false
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS {
			var ts unix.Timespec
			if len(m.Data) < int(unsafe.Sizeof(ts)) {
				return time.Time{}, false
			}
			ts = *(*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
			return time.Unix(ts.Unix()), true
		}
	}
	return time.Time{}, false
}
