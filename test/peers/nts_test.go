package peers

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"slewd/clock"
	"slewd/ntpclient"
)

// testCA is a certificate authority made for one test, and a server
// certificate it signed for 127.0.0.1, ::1 and localhost (or for hosts).
type testCA struct {
	CAFile   string // the CA certificate, PEM: what --nts-ca trusts
	CertFile string // the server's certificate chain, PEM (ntsservercert)
	KeyFile  string // the server's private key, PEM (ntsserverkey)
}

// newTestCA makes a self-signed CA and a server certificate in dir.
func newTestCA(t testing.TB, dir, name string, hosts ...string) testCA {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name + " test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if len(hosts) > 0 {
		srvTmpl.DNSNames, srvTmpl.IPAddresses = hosts, nil
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	c := testCA{
		CAFile:   filepath.Join(dir, name+"-ca.pem"),
		CertFile: filepath.Join(dir, name+"-server.pem"),
		KeyFile:  filepath.Join(dir, name+"-server.key"),
	}
	write := func(path, typ string, der []byte, mode os.FileMode) {
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
			t.Fatal(err)
		}
	}
	write(c.CAFile, "CERTIFICATE", caDER, 0o644)
	write(c.CertFile, "CERTIFICATE", srvDER, 0o644)
	write(c.KeyFile, "PRIVATE KEY", keyDER, 0o600)
	return c
}

// freeTCPPort finds a TCP port free on 127.0.0.1 for NTS-KE.
func freeTCPPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ntsServer is a chrony server with NTS: its NTP port and its NTS-KE port.
type ntsServer struct {
	*chronyServer
	KEPort int
}

// URL is the source as slewd takes it: nts://127.0.0.1:KEPORT.
func (s ntsServer) URL() string { return fmt.Sprintf("nts://127.0.0.1:%d", s.KEPort) }

// startNTSChrony starts chronyd serving NTS with ca's server certificate.
func startNTSChrony(t testing.TB, ca testCA, stratum int) ntsServer {
	t.Helper()
	return startNTSChronyAt(t, ca, stratum, 0, freeTCPPort(t))
}

// startNTSChronyAt starts it on NTP port port (0: a free one) and NTS-KE
// port ke.
func startNTSChronyAt(t testing.TB, ca testCA, stratum, port, ke int) ntsServer {
	t.Helper()
	srv := startChrony(t, chronyConfig{Stratum: stratum, Port: port, Extra: []string{
		"ntsserverkey " + ca.KeyFile,
		"ntsservercert " + ca.CertFile,
		fmt.Sprintf("ntsport %d", ke),
		"ntsprocesses 0", // the KE in chronyd's own process: one pid to stop
	}})
	return ntsServer{chronyServer: srv, KEPort: ke}
}

// NTS against chronyd 4.3: slewd query authenticates through NTS-KE with
// the test's CA, keeps going past the eight cookies of the key exchange
// (each answer brings a new one), and measures what plain NTP measures
// against the same server.
func TestNTSChrony(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "good")
	srv := startNTSChrony(t, ca, 8)
	r, stderr, code := slewdQuery(t, "--nts-ca", ca.CAFile, "--samples", "12", "--interval", "20ms", srv.URL())
	if code != 0 || r.Estimate == nil {
		t.Fatalf("slewd query %s: exit %d: %s", srv.URL(), code, stderr)
	}
	if len(r.Sources) != 1 || !r.Sources[0].Selected || r.Sources[0].Address != srv.URL() || r.Sources[0].Samples < 8 {
		t.Fatalf("sources %+v, want %s selected with at least 8 samples", r.Sources, srv.URL())
	}
	// The same source imported from a chrony.conf line.
	conf := filepath.Join(dir, "chrony.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("server 127.0.0.1 iburst nts ntsport %d maxdelay 0.5\n", srv.KEPort)), 0o644); err != nil {
		t.Fatal(err)
	}
	imp, stderr, code := slewdQuery(t, "--nts-ca", ca.CAFile, "--servers-from", conf, "--samples", "2", "--interval", "20ms")
	if code != 0 || imp.Estimate == nil || len(imp.Sources) != 1 || imp.Sources[0].Address != srv.URL() {
		t.Fatalf("--servers-from %s: exit %d, %+v: %s", conf, code, imp.Sources, stderr)
	}
	if !strings.Contains(stderr, "maxdelay 0.5 ignored: it would have dropped samples") {
		t.Errorf("the import does not say what maxdelay would have done: %s", stderr)
	}
	plain, stderr, code := slewdQuery(t, "--samples", "4", "--interval", "20ms", srv.Addr())
	if code != 0 || plain.Estimate == nil {
		t.Fatalf("plain NTP: exit %d: %s", code, stderr)
	}
	d := r.Estimate.OffsetS - plain.Estimate.OffsetS
	t.Logf("NTS %+.6fs ± %.6fs (%d samples, NTP server %s), plain NTP %+.6fs: differ by %+.1f µs",
		r.Estimate.OffsetS, r.Estimate.ErrorS, r.Sources[0].Samples, r.Sources[0].Addr, plain.Estimate.OffsetS, d*1e6)
	if math.Abs(d) > 100e-6 {
		t.Errorf("NTS and plain NTP differ by %.1f µs, want at most 100 µs", d*1e6)
	}
}

// A server whose certificate does not chain to the trusted CA: the key
// exchange fails, the report says why, and no sample is taken (no
// fallback to unauthenticated NTP, which the same chronyd would serve).
func TestNTSWrongCertificate(t *testing.T) {
	dir := t.TempDir()
	served := newTestCA(t, dir, "served")
	trusted := newTestCA(t, dir, "trusted")
	srv := startNTSChrony(t, served, 8)
	elsewhere := newTestCA(t, dir, "elsewhere", "ntp.invalid")
	other := startNTSChrony(t, elsewhere, 8)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"another CA", []string{"--nts-ca", trusted.CAFile, srv.URL()}, "certificate signed by unknown authority"},
		{"system roots", []string{srv.URL()}, "certificate signed by unknown authority"},
		{"name not in the certificate", []string{"--nts-ca", elsewhere.CAFile, other.URL()}, "doesn't contain any IP SANs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, stderr, code := slewdQuery(t, append([]string{"--samples", "2", "--interval", "20ms"}, tc.args...)...)
			if code != 1 || r.Estimate != nil {
				t.Fatalf("exit %d with estimate %v, want 1 and none: %s", code, r.Estimate, stderr)
			}
			if len(r.Sources) != 1 || r.Sources[0].Samples != 0 || r.Sources[0].OffsetS != nil || r.Sources[0].Reach != 0 {
				t.Errorf("sources %+v: want no sample and nothing reached", r.Sources)
			}
			why := r.Sources[0].Reason
			t.Logf("reason: %s", why)
			if !strings.Contains(why, "NTS key exchange with nts://") || !strings.Contains(why, tc.want) {
				t.Errorf("reason %q does not name the key exchange and %q", why, tc.want)
			}
			if !strings.Contains(stderr, why) {
				t.Errorf("stderr does not say it: %s", stderr)
			}
		})
	}
}

// An NTS-KE server that stops answering: one that accepts and then says
// nothing (slewd query gives up after the key exchange's timeout and says
// so), and one that hangs up at once, against which a running client
// backs off: 2 s, 4 s, 8 s between attempts.
func TestNTSKeyExchangeStopsAnswering(t *testing.T) {
	t.Run("silent", func(t *testing.T) {
		ke := blackhole(t, false)
		start := time.Now()
		r, stderr, code := slewdQuery(t, "--samples", "1", fmt.Sprintf("nts://127.0.0.1:%d", ke.port))
		took := time.Since(start)
		if code != 1 || r.Estimate != nil || len(r.Sources) != 1 || r.Sources[0].Samples != 0 {
			t.Fatalf("exit %d, %+v: %s", code, r, stderr)
		}
		why := r.Sources[0].Reason
		t.Logf("after %v: %s", took.Round(time.Millisecond), why)
		if !strings.Contains(why, "NTS key exchange with nts://127.0.0.1:") || !strings.Contains(why, "no answer within 5s") {
			t.Errorf("reason %q does not say the key exchange timed out", why)
		}
		if took > 10*time.Second {
			t.Errorf("took %v: the key exchange's timeout is 5 s", took)
		}
	})
	t.Run("back-off", func(t *testing.T) {
		ke := blackhole(t, true)
		roots := x509.NewCertPool()
		loop := clock.NewSystemLoop(64)
		c, err := ntpclient.NewClient(ntpclient.Config{Servers: []string{fmt.Sprintf("nts://127.0.0.1:%d", ke.port)}, NTSRoots: roots},
			ntpclient.Env{Clock: clock.System{}, Loop: loop})
		if err != nil {
			t.Fatal(err)
		}
		c.Start()
		ctx, cancel := context.WithTimeout(context.Background(), 16*time.Second)
		defer cancel()
		for ctx.Err() == nil {
			ev, err := loop.Wait(ctx, c.Tick())
			if err != nil {
				break
			}
			if ev != nil {
				if est, _ := c.Handle(ev); est != nil {
					t.Fatalf("an estimate from a source with no key exchange: %+v", est)
				}
			}
		}
		at := ke.accepted()
		why := c.Reports()[0].Reason
		t.Logf("key exchange attempts at %v; reason %q", at, why)
		if len(at) < 3 || len(at) > 5 {
			t.Fatalf("%d attempts in 16 s, want 4 (at 0, 2, 6 and 14 s)", len(at))
		}
		for i := 2; i < len(at); i++ {
			prev, gap := at[i-1]-at[i-2], at[i]-at[i-1]
			if gap < prev*3/2 {
				t.Errorf("attempt %d came %v after the one before, which came %v after its own: no back-off", i, gap, prev)
			}
		}
		if !strings.Contains(why, "NTS key exchange with nts://") || !strings.Contains(why, "retrying in") {
			t.Errorf("reason %q does not say the key exchange failed and when it is retried", why)
		}
	})
}

// ke is a TCP listener standing in for an NTS-KE server that stopped
// answering: it accepts and keeps silent, or hangs up at once.
type keHole struct {
	port  int
	mu    sync.Mutex
	start time.Time
	at    []time.Duration
}

func blackhole(t *testing.T, hangUp bool) *keHole {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &keHole{port: l.Addr().(*net.TCPAddr).Port, start: time.Now()}
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.at = append(h.at, time.Since(h.start).Round(10*time.Millisecond))
			if hangUp {
				c.Close()
			} else {
				conns = append(conns, c)
			}
			h.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		h.mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		h.mu.Unlock()
	})
	return h
}

func (h *keHole) accepted() []time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]time.Duration(nil), h.at...)
}

// The time to a first usable sample on loopback, in process (no process
// start): ntpclient.Measure with one sample from a chronyd, with NTS (key
// exchange included) and without.
func TestNTSFirstSampleTime(t *testing.T) {
	ca := newTestCA(t, t.TempDir(), "timing")
	srv := startNTSChrony(t, ca, 8)
	roots, err := ntpclient.ReadNTSCA(ca.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	measure := func(server string) time.Duration {
		start := time.Now()
		est, err := ntpclient.Measure(context.Background(), ntpclient.Config{Servers: []string{server}, Burst: 1, NTSRoots: roots},
			ntpclient.Env{Clock: clock.System{}, Loop: clock.NewSystemLoop(64)}, 0)
		took := time.Since(start)
		if err != nil || est.Sources != 1 {
			t.Fatalf("%s: %v", server, err)
		}
		return took
	}
	const runs = 25
	figures := map[string][]time.Duration{}
	for i := 0; i < runs; i++ {
		figures["nts"] = append(figures["nts"], measure(srv.URL()))
		figures["ntp"] = append(figures["ntp"], measure(srv.Addr()))
	}
	for _, k := range []string{"ntp", "nts"} {
		d := figures[k]
		slices.Sort(d)
		t.Logf("first usable sample, %s: median %v, p90 %v, min %v, max %v (%d runs)", k, d[runs/2], d[runs*9/10], d[0], d[runs-1], runs)
	}
	if figures["nts"][runs/2] > 500*time.Millisecond {
		t.Errorf("NTS on loopback takes %v to a first sample: far too long", figures["nts"][runs/2])
	}
}

// chronyd restarted (same ports, new server keys): the cookies it gave
// before are no use, it answers with an NTS NAK, and the client makes a
// new key exchange at once and goes on with authenticated samples.
func TestNTSNakAfterServerRestart(t *testing.T) {
	ca := newTestCA(t, t.TempDir(), "restart")
	srv := startNTSChrony(t, ca, 8)
	roots, err := ntpclient.ReadNTSCA(ca.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	loop := clock.NewSystemLoop(64)
	c, err := ntpclient.NewClient(ntpclient.Config{Servers: []string{srv.URL()}, NTSRoots: roots, Burst: 2, BurstInterval: 200 * time.Millisecond},
		ntpclient.Env{Clock: clock.System{}, Loop: loop, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	estimates := func(d time.Duration, want int) int {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		n := 0
		for n < want {
			ev, err := loop.Wait(ctx, c.Tick())
			if err != nil {
				break
			}
			if ev != nil {
				if est, _ := c.Handle(ev); est != nil {
					n++
				}
			}
		}
		return n
	}
	c.Start()
	if n := estimates(5*time.Second, 1); n != 1 {
		t.Fatalf("no estimate from %s before the restart: %+v", srv.URL(), c.Reports())
	}
	srv.Stop()
	startNTSChronyAt(t, ca, 8, srv.Port, srv.KEPort)
	c.PollNow()
	if n := estimates(10*time.Second, 2); n != 2 {
		t.Fatalf("%d estimates after the restart, want 2: %+v\n%s", n, c.Reports(), logs.String())
	}
	if !strings.Contains(logs.String(), "NTS NAK") {
		t.Errorf("no NTS NAK logged: the old cookies should have been refused\n%s", logs.String())
	}
	t.Logf("after the restart: %s", grepLines(logs.String(), "NTS"))
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
