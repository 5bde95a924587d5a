package ntptest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"slewd/clock/simclock"
	"slewd/ntpclient"
)

// Network is a simulated IP network in the virtual time of a
// simclock.World: NTP servers at addresses, DNS names, and datagram
// connections for simulated processes. Packets travel by w.At callbacks;
// a connection's Read blocks on a simclock.Blocker, so virtual time moves
// on while a query waits, and runs are deterministic for a seed: each
// server draws delays and losses from its own stream, w.Rand("net/"+addr).
type Network struct {
	w *simclock.World

	mu       sync.Mutex
	servers  map[string]*SimServer
	hosts    map[string][]string
	dnsErr   map[string]error
	lookups  map[string]int
	nextPort int
}

// NewNetwork returns an empty network in w.
func NewNetwork(w *simclock.World) *Network {
	return &Network{
		w:        w,
		servers:  map[string]*SimServer{},
		hosts:    map[string][]string{},
		dnsErr:   map[string]error{},
		lookups:  map[string]int{},
		nextPort: 40000,
	}
}

// SimServer is an NTP server on a Network.
type SimServer struct {
	state
	addr string
	net  *Network
	rmu  sync.Mutex
	rng  *rand.Rand
}

// Addr is the server's address, IP:PORT.
func (s *SimServer) Addr() string { return s.addr }

// AddServer puts a server at addr ("10.0.0.1:123", or an IP alone for
// port 123) and returns it. Its true time is w.TrueTime() + cfg.Offset.
func (n *Network) AddServer(addr string, cfg ServerConfig) *SimServer {
	ap, err := parseAddrPort(addr)
	if err != nil {
		panic(fmt.Sprintf("ntptest: AddServer(%q): %v", addr, err))
	}
	key := ap.String()
	s := &SimServer{addr: key, net: n, rng: n.w.Rand("net/" + key)}
	s.cfg = cfg
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, dup := n.servers[key]; dup {
		panic(fmt.Sprintf("ntptest: AddServer(%q): address in use", addr))
	}
	n.servers[key] = s
	return s
}

// Server returns the server at addr, or nil.
func (n *Network) Server(addr string) *SimServer {
	ap, err := parseAddrPort(addr)
	if err != nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.servers[ap.String()]
}

func parseAddrPort(addr string) (netip.AddrPort, error) {
	if ip, err := netip.ParseAddr(addr); err == nil {
		return netip.AddrPortFrom(ip, 123), nil
	}
	return netip.ParseAddrPort(addr)
}

// SetHost makes name resolve to addrs (IP addresses, no ports), as a DNS
// A/AAAA record set; a pool name simply has several. It may be changed
// while the world runs (a pool rotating its answers).
func (n *Network) SetHost(name string, addrs ...string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.hosts[name] = append([]string(nil), addrs...)
	delete(n.dnsErr, name)
}

// SetHostError makes lookups of name fail with err (a temporary DNS
// failure if err is nil) until SetHost is called again.
func (n *Network) SetHostError(name string, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err == nil {
		err = &net.DNSError{Err: "server misbehaving", Name: name, IsTemporary: true}
	}
	n.dnsErr[name] = err
}

// Lookups counts the lookups of name so far.
func (n *Network) Lookups(name string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.lookups[name]
}

// Resolver answers from the names given to SetHost, at once (DNS takes
// no virtual time).
func (n *Network) Resolver() ntpclient.Resolver { return resolver{n} }

type resolver struct{ n *Network }

func (r resolver) LookupHost(ctx context.Context, host string) ([]string, error) {
	if _, err := netip.ParseAddr(host); err == nil {
		return []string{host}, nil
	}
	n := r.n
	n.mu.Lock()
	defer n.mu.Unlock()
	n.lookups[host]++
	if err := n.dnsErr[host]; err != nil {
		return nil, err
	}
	addrs, ok := n.hosts[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return append([]string(nil), addrs...), nil
}

// Dialer returns the Dialer for process p: its connections block in
// virtual time, and packets to or from p stop when p is killed.
func (n *Network) Dialer(p *simclock.Process) ntpclient.Dialer {
	return func(localAddress, remoteAddress string) (net.Conn, error) {
		ap, err := parseAddrPort(remoteAddress)
		if err != nil {
			host, port, serr := net.SplitHostPort(remoteAddress)
			if serr != nil {
				return nil, &net.OpError{Op: "dial", Net: "udp", Err: err}
			}
			addrs, lerr := resolver{n}.LookupHost(context.Background(), host)
			if lerr != nil {
				return nil, &net.OpError{Op: "dial", Net: "udp", Err: lerr}
			}
			if ap, err = netip.ParseAddrPort(net.JoinHostPort(addrs[0], port)); err != nil {
				return nil, &net.OpError{Op: "dial", Net: "udp", Err: err}
			}
		}
		n.mu.Lock()
		n.nextPort++
		local := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 255, 0, 1}), uint16(n.nextPort))
		n.mu.Unlock()
		return &simConn{
			n:        n,
			p:        p,
			b:        p.NewBlocker(),
			local:    net.UDPAddrFromAddrPort(local),
			remote:   net.UDPAddrFromAddrPort(ap),
			deadline: -1,
		}, nil
	}
}

// simConn is a connected datagram socket of a simulated process.
type simConn struct {
	n             *Network
	p             *simclock.Process
	b             *simclock.Blocker
	local, remote *net.UDPAddr

	mu       sync.Mutex
	inbox    [][]byte
	closed   bool
	deadline time.Duration // read deadline on simulated CLOCK_MONOTONIC; <0 none
}

func (c *simConn) LocalAddr() net.Addr  { return c.local }
func (c *simConn) RemoteAddr() net.Addr { return c.remote }

func (c *simConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return 0, &net.OpError{Op: "write", Net: "udp", Source: c.local, Addr: c.remote, Err: net.ErrClosed}
	}
	c.n.mu.Lock()
	s := c.n.servers[c.remote.AddrPort().String()]
	c.n.mu.Unlock()
	if s != nil {
		s.request(c, append([]byte(nil), b...))
	}
	return len(b), nil
}

// Read returns the next datagram, waiting in virtual time until one
// arrives or the deadline passes.
func (c *simConn) Read(b []byte) (int, error) {
	for {
		c.mu.Lock()
		if len(c.inbox) > 0 {
			pkt := c.inbox[0]
			c.inbox = c.inbox[1:]
			c.mu.Unlock()
			return copy(b, pkt), nil
		}
		closed, dl := c.closed, c.deadline
		c.mu.Unlock()
		if closed {
			return 0, &net.OpError{Op: "read", Net: "udp", Source: c.local, Addr: c.remote, Err: net.ErrClosed}
		}
		if dl >= 0 && c.p.Mono() >= dl {
			return 0, &net.OpError{Op: "read", Net: "udp", Source: c.local, Addr: c.remote, Err: os.ErrDeadlineExceeded}
		}
		c.b.Block(dl)
	}
}

func (c *simConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	c.inbox = nil
	return nil
}

// SetDeadline converts a wall-clock deadline (beevik/ntp passes
// time.Now()+timeout) to the time remaining, rounded to a millisecond so
// that host timing cannot leak into the run, and waits that long on the
// process's simulated CLOCK_MONOTONIC.
func (c *simConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.IsZero() {
		c.deadline = -1
		return nil
	}
	remain := time.Until(t).Round(time.Millisecond)
	c.deadline = c.p.Mono() + max(remain, 0)
	return nil
}

func (c *simConn) SetReadDeadline(t time.Time) error { return c.SetDeadline(t) }
func (c *simConn) SetWriteDeadline(time.Time) error  { return nil }

// deliver is the arrival of a reply: called from a world callback, it
// wakes the reader as its last action.
func (c *simConn) deliver(pkt []byte) {
	c.mu.Lock()
	if c.closed || !c.p.Alive() {
		c.mu.Unlock()
		return
	}
	c.inbox = append(c.inbox, pkt)
	c.mu.Unlock()
	c.b.Wake()
}

// link draws whether a datagram is lost and, if not, its one-way delay.
func (s *SimServer) link(cfg ServerConfig, back bool) (time.Duration, bool) {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	// Draw both numbers whatever the outcome, so that one packet's fate
	// does not shift the stream for the next.
	lost := s.rng.Float64() < cfg.Loss
	d := cfg.Delay + exp(cfg.Jitter, s.rng.ExpFloat64())
	if back {
		d += cfg.Asymmetry
	}
	return d, lost
}

// request sends pkt from c to s across the link.
func (s *SimServer) request(c *simConn, pkt []byte) {
	cfg := s.Config()
	d, lost := s.link(cfg, false)
	if lost {
		s.lost.Add(1)
		return
	}
	w := s.net.w
	w.After(d, func() {
		now := w.TrueTime()
		reply := s.respond(pkt, now, now)
		if reply == nil {
			return
		}
		d, lost := s.link(s.Config(), true)
		if lost {
			s.lost.Add(1)
			return
		}
		w.After(d, func() { c.deliver(reply) })
	})
}
