package ntpclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/beevik/ntp"
	"github.com/beevik/nts"
)

// NTS (RFC 8915) through beevik/nts: a key exchange over TLS (NTS-KE)
// gives keys and cookies; every NTP query then spends a cookie, and its
// authenticated answer brings a new one. The Source state machine asks
// for a key exchange (KeyExchange) when it has no session, after an NTS
// NAK, and when the cookies are used up, backing off after failures; an
// NTS source never sends a query without a session, so it never falls
// back to unauthenticated NTP.

const (
	// ntsKETimeout bounds one key exchange (TCP, TLS 1.3, the records).
	ntsKETimeout = 5 * time.Second
	// A failed key exchange (or one whose keys the server refuses at
	// once) is retried from ntsRetryMin doubling to ntsRetryMax.
	ntsRetryMin = 2 * time.Second
	ntsRetryMax = 10 * time.Minute
)

// errCookiesUsedUp is a query that found no cookie left: beevik/nts would
// do a key exchange inside the query; the state machine does it instead.
var errCookiesUsedUp = errors.New("NTS cookies used up")

// ntsSession is what a key exchange established: the NTP server to query
// and beevik's session, which holds the keys and the cookie jar.
type ntsSession struct {
	ntpAddr string
	mu      sync.Mutex // one query at a time on the session's state
	s       *nts.Session
	// keyExchanging allows dialling the NTS-KE server: only while
	// keyExchange runs, so that beevik cannot start one inside a query.
	keyExchanging *atomic.Bool
}

// keParams is what a key exchange needs; copied to its helper goroutine.
type keParams struct {
	host    string
	port    int
	roots   *x509.CertPool // nil: the system's
	timeout time.Duration
	// dialTLS, if set, opens the TLS connection instead of TCP (fuzzing).
	dialTLS func(network, addr string, cfg *tls.Config) (*tls.Conn, error)
}

// keyExchange runs NTS-KE with the server: TLS 1.3 verified against
// roots (the server's certificate must name host), ALPN ntske/1.
func keyExchange(p keParams) (*ntsSession, error) {
	allowed := new(atomic.Bool)
	allowed.Store(true)
	defer allowed.Store(false)
	dial := func(network, addr string, cfg *tls.Config) (*tls.Conn, error) {
		if !allowed.Load() {
			return nil, errCookiesUsedUp
		}
		if p.dialTLS != nil {
			return p.dialTLS(network, addr, cfg)
		}
		d := &net.Dialer{Timeout: p.timeout}
		c, err := tls.DialWithDialer(d, network, addr, cfg)
		if err == nil {
			c.SetDeadline(time.Now().Add(p.timeout))
		}
		return c, err
	}
	opt := &nts.SessionOptions{
		TLSConfig: &tls.Config{RootCAs: p.roots, ServerName: p.host, MinVersion: tls.VersionTLS13},
		Timeout:   p.timeout,
		Dialer:    dial,
	}
	s, err := nts.NewSessionWithOptions(net.JoinHostPort(p.host, strconv.Itoa(p.port)), opt)
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return nil, fmt.Errorf("no answer within %v (%w)", p.timeout, err)
	case err != nil:
		return nil, err
	}
	addr, err := keServerAddr(s.Address(), p.host)
	if err != nil {
		return nil, err
	}
	return &ntsSession{ntpAddr: addr, s: s, keyExchanging: allowed}, nil
}

// keServerAddr checks the NTP server a key exchange named (RFC 8915
// 4.1.7: an IPv4 address, an IPv6 address or a DNS name, and a port): the
// record is the server's word, carried over TLS but not otherwise vetted,
// and slewd will log, resolve and query it. beevik/nts hands it over as
// HOST:PORT, the key-exchange server's own address when the record was
// absent. An IPv6 zone names an interface of this machine, which only the
// user can know: it is taken only as part of keHost, the address slewd
// itself connected to.
func keServerAddr(addr, keHost string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err == nil {
		err = checkKEServer(host, keHost)
	}
	if err != nil {
		return "", fmt.Errorf("the key exchange named an NTP server slewd cannot use: %w (the NTS server's configuration is wrong: its NTPv4 server record must be a host name or an IP address)", err)
	}
	return net.JoinHostPort(host, port), nil
}

func checkKEServer(host, keHost string) error {
	ip, err := netip.ParseAddr(host)
	switch {
	case err != nil:
		if checkHost(host) != nil {
			return fmt.Errorf("%q is neither an IP address nor a host name", host)
		}
	case ip.Zone() != "" && host != keHost:
		return fmt.Errorf("%q carries an IPv6 zone, which names an interface of this machine the server cannot know", host)
	}
	return nil
}

// query is one NTS-authenticated exchange on the session.
func (n *ntsSession) query(opt ntp.QueryOptions) (*ntp.Response, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.s == nil {
		return nil, errCookiesUsedUp
	}
	r, err := n.s.QueryWithOptions(&opt)
	if errors.Is(err, errCookiesUsedUp) {
		// beevik's Refresh has cleared the session on its way to the
		// refused dial: it is no use any more.
		n.s = nil
	}
	return r, err
}

// ntsReply classifies an NTS failure of a query, or ok=false if err is not one.
func ntsReply(err error) (r reply, ok bool) {
	switch {
	case errors.Is(err, nts.ErrAuthFailedOnServer):
		return reply{kind: replyNTSNak, detail: "NTS NAK: the server cannot use our cookie (its keys changed?)"}, true
	case errors.Is(err, errCookiesUsedUp):
		return reply{kind: replyNTSNak, detail: "NTS cookies used up (their answers were lost)"}, true
	case errors.Is(err, nts.ErrAuthFailedOnClient):
		return reply{kind: replyBad, detail: "NTS: the reply's authenticator does not verify: forged or corrupted, not used"}, true
	case errors.Is(err, nts.ErrUniqueIDMismatch):
		return reply{kind: replyBad, detail: "NTS: the reply is not to our request (unique identifier differs): stale or spoofed"}, true
	case errors.Is(err, nts.ErrMissingExtField), errors.Is(err, nts.ErrInvalidFormat):
		return reply{kind: replyBad, detail: "NTS: unauthenticated or malformed reply, not used: " + err.Error()}, true
	}
	return reply{}, false
}

// ReadNTSCA reads the certificates (PEM) that NTS-KE servers' chains must
// lead to, instead of the system's CA roots (--nts-ca).
func ReadNTSCA(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("NTS CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("NTS CA file %s: no PEM certificate in it (want -----BEGIN CERTIFICATE-----)", path)
	}
	return pool, nil
}
