package ntpclient

import (
	"bytes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"io"
	"math/big"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secure-io/siv-go"
)

// An in-memory NTS server for fuzzing: a TLS 1.3 NTS-KE endpoint over
// net.Pipe with a certificate made once, and an NTP server that answers
// with the keys that key exchange gave, so that a reply can be built
// authentic and then damaged.

var (
	ntsTestOnce  sync.Once
	ntsTestCert  tls.Certificate
	ntsTestRoots *x509.CertPool
)

func ntsTestCA(t testing.TB) (tls.Certificate, *x509.CertPool) {
	ntsTestOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "nts.test"}, DNSNames: []string{"nts.test"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			panic(err)
		}
		cert, _ := x509.ParseCertificate(der)
		ntsTestRoots = x509.NewCertPool()
		ntsTestRoots.AddCert(cert)
		ntsTestCert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	})
	return ntsTestCert, ntsTestRoots
}

// keRecord is one NTS-KE record (RFC 8915 §4).
func keRecord(typ uint16, critical bool, body []byte) []byte {
	if critical {
		typ |= 0x8000
	}
	b := binary.BigEndian.AppendUint16(nil, typ)
	b = binary.BigEndian.AppendUint16(b, uint16(len(body)))
	return append(b, body...)
}

// goodKEResponse is what chrony answers: NTPv4, AES-SIV-CMAC-256, eight
// cookies, the end.
func goodKEResponse() []byte {
	var b []byte
	b = append(b, keRecord(1, true, []byte{0, 0})...)
	b = append(b, keRecord(4, true, []byte{0, 15})...)
	for i := 0; i < 8; i++ {
		b = append(b, keRecord(5, false, bytes.Repeat([]byte{byte('a' + i)}, 64))...)
	}
	return append(b, keRecord(0, true, nil)...)
}

// pipeConn is one end of net.Pipe that says it is a TCP connection to
// 192.0.2.1, as a real NTS-KE connection would.
type pipeConn struct{ net.Conn }

func (pipeConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 4460} }

// keServer serves one key exchange with response as the records and
// returns the AEAD keys (c2s, s2c) both sides export for AES-SIV-CMAC-256.
type keServer struct {
	response []byte
	mu       sync.Mutex
	c2s, s2c []byte
}

func (k *keServer) dial(t testing.TB) func(network, addr string, cfg *tls.Config) (*tls.Conn, error) {
	cert, _ := ntsTestCA(t)
	return func(network, addr string, cfg *tls.Config) (*tls.Conn, error) {
		cc, sc := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer sc.Close()
			srv := tls.Server(pipeConn{sc}, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"ntske/1"}, MinVersion: tls.VersionTLS13})
			srv.SetDeadline(time.Now().Add(5 * time.Second))
			if srv.Handshake() != nil {
				return
			}
			// The request ends with End of Message (type 0x8000, length 0).
			req := make([]byte, 0, 64)
			buf := make([]byte, 256)
			for !bytes.HasSuffix(req, []byte{0x80, 0, 0, 0}) {
				n, err := srv.Read(buf)
				if err != nil {
					return
				}
				req = append(req, buf[:n]...)
			}
			st := srv.ConnectionState()
			c2s, _ := st.ExportKeyingMaterial("EXPORTER-network-time-security", []byte{0, 0, 0, 15, 0}, 32)
			s2c, _ := st.ExportKeyingMaterial("EXPORTER-network-time-security", []byte{0, 0, 0, 15, 1}, 32)
			k.mu.Lock()
			k.c2s, k.s2c = c2s, s2c
			k.mu.Unlock()
			// Written while the client's reads (and its close_notify) are
			// drained: net.Pipe does not buffer, and a client that stops
			// reading early must not block either side.
			go func() {
				srv.Write(k.response)
				srv.CloseWrite() // a response without End of Message ends here
			}()
			io.Copy(io.Discard, srv)
		}()
		c := tls.Client(pipeConn{cc}, cfg)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if err := c.Handshake(); err != nil {
			cc.Close()
			<-done
			return nil, err
		}
		return c, nil
	}
}

func (k *keServer) keys() (c2s, s2c []byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.c2s, k.s2c
}

// aligned copies b into a buffer whose capacity is a multiple of 8:
// siv-go's assembly reads whole words on amd64.
func aligned(b []byte) []byte {
	out := make([]byte, (len(b)+7)&^7)
	copy(out, b)
	return out[:len(b)]
}

// extField is one NTP extension field: type, and the body padded to 4.
func extField(typ uint16, body []byte) []byte {
	n := 4 + (len(body)+3)&^3
	b := binary.BigEndian.AppendUint16(nil, typ)
	b = binary.BigEndian.AppendUint16(b, uint16(n))
	b = append(b, body...)
	return append(b, make([]byte, n-4-len(body))...)
}

// ntsFields splits an NTP packet's extension fields (after the header).
func ntsFields(pkt []byte) (map[uint16][]byte, int, bool) {
	fields := map[uint16][]byte{}
	off := 48
	for off+4 <= len(pkt) {
		typ, n := binary.BigEndian.Uint16(pkt[off:]), int(binary.BigEndian.Uint16(pkt[off+2:]))
		if n < 4 || off+n > len(pkt) {
			return fields, off, false
		}
		if typ == 0x0404 {
			return fields, off, true // the authenticator: the rest is its
		}
		fields[typ] = pkt[off+4 : off+n]
		off += n
	}
	return fields, off, false
}

// ntsNTPServer answers a request through an NTS session: it checks that
// the request is authenticated (cookie, unique identifier, a C2S
// authenticator that verifies) and builds the authentic reply, which
// damage may then change. authStart and authEnd are where the reply's
// authenticator extension field starts and ends.
type ntsNTPServer struct {
	c2s, s2c           cipher.AEAD
	clock              *fakeClock
	damage             func(reply []byte) []byte
	sent               []byte
	reply              []byte
	authStart, authEnd int
	badReq             string // why the request was not authenticated, if it was not
	writes             int
}

func (s *ntsNTPServer) Write(b []byte) (int, error) {
	s.writes++
	s.sent = append([]byte(nil), b...)
	s.reply, s.authStart, s.authEnd = nil, 0, 0
	fields, at, ok := ntsFields(b)
	switch {
	case len(b) < 48 || !ok:
		s.badReq = "no authenticator"
	case fields[0x0104] == nil || fields[0x0204] == nil:
		s.badReq = "no unique identifier or no cookie"
	default:
		ae := b[at+4:]
		nl, cl := int(binary.BigEndian.Uint16(ae)), int(binary.BigEndian.Uint16(ae[2:]))
		if 4+nl+cl > len(ae) {
			s.badReq = "short authenticator"
			break
		}
		if _, err := s.c2s.Open(nil, aligned(ae[4:4+nl]), aligned(ae[4+nl:4+nl+cl]), aligned(b[:at])); err != nil {
			s.badReq = "request authenticator does not verify"
			break
		}
		s.reply = s.build(b, fields[0x0104])
	}
	return len(b), nil
}

func ntpStamp(t time.Time) uint64 {
	secs := uint64(t.Unix() + 2208988800)
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return secs<<32 | frac
}

func (s *ntsNTPServer) build(req, uid []byte) []byte {
	h := make([]byte, 48)
	h[0], h[1], h[2], h[3] = 0<<6|4<<3|4, 2, 6, 0xEC
	binary.BigEndian.PutUint32(h[4:], 0x10) // root delay
	binary.BigEndian.PutUint32(h[8:], 0x10) // root dispersion
	copy(h[12:16], []byte{192, 0, 2, 99})   // reference id
	now := s.clock.Now()
	binary.BigEndian.PutUint64(h[16:], ntpStamp(now.Add(-time.Minute)))
	copy(h[24:32], req[40:48])
	binary.BigEndian.PutUint64(h[32:], ntpStamp(now))
	binary.BigEndian.PutUint64(h[40:], ntpStamp(now.Add(time.Microsecond)))
	pkt := append(h, extField(0x0104, uid)...)
	plain := extField(0x0204, bytes.Repeat([]byte{'n'}, 64)) // a new cookie
	nonce := make([]byte, 16)
	rand.Read(nonce)
	ct := s.s2c.Seal(nil, aligned(nonce), aligned(plain), aligned(pkt))
	body := binary.BigEndian.AppendUint16(nil, uint16(len(nonce)))
	body = binary.BigEndian.AppendUint16(body, uint16(len(ct)))
	body = append(append(body, nonce...), ct...)
	s.authStart = len(pkt)
	pkt = append(pkt, extField(0x0404, body)...)
	s.authEnd = len(pkt)
	return pkt
}

func (s *ntsNTPServer) Read(b []byte) (int, error) {
	if s.reply == nil {
		return 0, &net.OpError{Op: "read", Err: errTimeout{}}
	}
	r := s.reply
	if s.damage != nil {
		r = s.damage(append([]byte(nil), r...))
	}
	return copy(b, r), nil
}
func (s *ntsNTPServer) Close() error                     { return nil }
func (s *ntsNTPServer) LocalAddr() net.Addr              { return &net.UDPAddr{} }
func (s *ntsNTPServer) RemoteAddr() net.Addr             { return &net.UDPAddr{} }
func (s *ntsNTPServer) SetDeadline(time.Time) error      { return nil }
func (s *ntsNTPServer) SetReadDeadline(time.Time) error  { return nil }
func (s *ntsNTPServer) SetWriteDeadline(time.Time) error { return nil }

type errTimeout struct{}

func (errTimeout) Error() string { return "i/o timeout" }
func (errTimeout) Timeout() bool { return true }

// ntsFixture makes a session by a key exchange with response, and the
// NTP server that knows its keys.
func ntsFixture(t testing.TB, response []byte) (*ntsSession, *ntsNTPServer, error) {
	_, roots := ntsTestCA(t)
	ke := &keServer{response: response}
	sess, err := keyExchange(keParams{host: "nts.test", port: DefaultNTSKEPort, roots: roots, timeout: 5 * time.Second, dialTLS: ke.dial(t)})
	if err != nil {
		return nil, nil, err
	}
	c2sKey, s2cKey := ke.keys()
	c2s, err1 := siv.NewCMAC(c2sKey)
	s2c, err2 := siv.NewCMAC(s2cKey)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	return sess, &ntsNTPServer{c2s: c2s, s2c: s2c, clock: &fakeClock{}}, nil
}

func ntsQuery(sess *ntsSession, srv *ntsNTPServer) reply {
	dial := func(string, string) (net.Conn, error) { return srv, nil }
	p := queryParams{source: "nts://nts.test:4460", addr: sess.ntpAddr, timeout: time.Second, dialer: dial, clock: srv.clock,
		simulated: true, nts: sess, ntsSource: true}
	return query(p)
}

// The NTP server a key exchange names is the server's word: used when it
// is an IPv4 address, an IPv6 address or a DNS name (RFC 8915 4.1.7) with
// a port, refused with a reason otherwise, so that nothing slewd would
// log, resolve or query comes from bytes it did not check.
func TestNTSKEServerRecord(t *testing.T) {
	port := func(p uint16) []byte { return keRecord(7, true, []byte{byte(p >> 8), byte(p)}) }
	for _, tc := range []struct {
		server string
		port   []byte
		want   string // ntpAddr, or "" for refused
	}{
		{"ntp.example.org", nil, "ntp.example.org:123"},
		{"ntp.example.org.", port(1234), "ntp.example.org.:1234"},
		{"192.0.2.7", nil, "192.0.2.7:123"},
		{"2001:db8::7", port(4123), "[2001:db8::7]:4123"},
		{"am[\x80\a", nil, ""},
		{"two words.example", nil, ""},
		{"-leading.example", nil, ""},
		{"300.1.2.3", nil, ""},
		{strings.Repeat("a", 64) + ".example", nil, ""},
		{"ntp.example.org", port(0), "ntp.example.org:123"}, // beevik/nts: 0 is the default
		{"[2001:db8::7]", nil, ""},
		{"fe80::1%eth0", nil, ""}, // a zone is this machine's, not the server's to name
		{"::ffff:192.0.2.7", nil, "[::ffff:192.0.2.7]:123"},
	} {
		resp := append(keRecord(6, true, []byte(tc.server)), tc.port...)
		resp = append(resp, goodKEResponse()...)
		sess, _, err := ntsFixture(t, resp)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("server record %q: taken as %q, want it refused", tc.server, sess.ntpAddr)
		case tc.want == "" && !strings.Contains(err.Error(), "named an NTP server slewd cannot use"):
			t.Errorf("server record %q: refused with %q, which does not say why", tc.server, err)
		case tc.want != "" && err != nil:
			t.Errorf("server record %q: %v", tc.server, err)
		case tc.want != "" && sess.ntpAddr != tc.want:
			t.Errorf("server record %q: NTP server %q, want %q", tc.server, sess.ntpAddr, tc.want)
		}
	}
}

// A zone is taken only as part of the address slewd connected to: the
// key-exchange server's own link-local address, when no record names
// another.
func TestKEServerAddrZone(t *testing.T) {
	for _, tc := range []struct{ addr, keHost, want string }{
		{"[fe80::1%eth0]:123", "fe80::1%eth0", "[fe80::1%eth0]:123"},
		{"[fe80::1%eth0]:123", "fe80::1%eth1", ""},
		{"[fe80::1%eth0]:123", "nts.example.org", ""},
		{"[fe80::1]:123", "nts.example.org", "[fe80::1]:123"},
	} {
		got, err := keServerAddr(tc.addr, tc.keHost)
		if got != tc.want || (tc.want == "") != (err != nil) {
			t.Errorf("keServerAddr(%q, %q) = %q, %v; want %q", tc.addr, tc.keHost, got, err, tc.want)
		}
	}
}

// The fixture itself: an authentic reply is a sample, every request is
// authenticated, and the session outlives its eight cookies because
// every reply brings one.
func TestNTSFixture(t *testing.T) {
	sess, srv, err := ntsFixture(t, goodKEResponse())
	if err != nil {
		t.Fatal(err)
	}
	if sess.ntpAddr != "192.0.2.1:123" {
		t.Errorf("NTP server %q, want the key exchange's address with port 123", sess.ntpAddr)
	}
	for i := 0; i < 20; i++ {
		r := ntsQuery(sess, srv)
		if r.kind != replySample || srv.badReq != "" {
			t.Fatalf("query %d: %+v (request: %q)", i, r, srv.badReq)
		}
	}
	// Lost answers use up the cookies; then a new key exchange is asked
	// for, and nothing is sent.
	srv.damage = func([]byte) []byte { return nil }
	for i := 0; i < 8; i++ {
		if r := ntsQuery(sess, srv); r.kind == replySample {
			t.Fatal("a sample from an empty reply")
		}
	}
	writes := srv.writes
	if r := ntsQuery(sess, srv); r.kind != replyNTSNak || srv.writes != writes {
		t.Fatalf("with no cookie left: %+v after %d writes, want a new key exchange and no request", r, srv.writes-writes)
	}
}

// NTS replies, authentic and then damaged by the fuzzer (bytes changed at
// chosen offsets, the packet cut short, bytes appended): a reply whose
// authenticated bytes changed is never a sample nor a kiss obeyed; the
// authentic one always is a sample; nothing panics; the request is
// always authenticated.
func FuzzNTSReply(f *testing.F) {
	f.Add([]byte{}, uint16(0), []byte{})
	f.Add([]byte{0, 1, 0xff}, uint16(0), []byte{})                         // stratum
	f.Add([]byte{0, 50, 0x01}, uint16(0), []byte{})                        // unique identifier
	f.Add([]byte{0, 130, 0x80}, uint16(0), []byte{})                       // ciphertext
	f.Add([]byte{}, uint16(100), []byte{})                                 // cut inside the authenticator
	f.Add([]byte{}, uint16(10), []byte{})                                  // shorter than a header
	f.Add([]byte{}, uint16(0), []byte{0x04, 0x04, 0x00, 0x08, 1, 2, 3, 4}) // a second authenticator after the first
	f.Add([]byte{0, 1, 0x02, 0, 12, 0x1f}, uint16(84), []byte{})           // stratum 0 "NTSN" and no authenticator: a NAK
	f.Fuzz(func(t *testing.T, flips []byte, cut uint16, tail []byte) {
		sess, srv, err := ntsFixture(t, goodKEResponse())
		if err != nil {
			t.Fatal(err)
		}
		// changed: a byte the AEAD covers differs (the associated data up
		// to the authenticator, and the authenticator's body: nonce and
		// ciphertext). The authenticator's own type and length are not
		// covered (RFC 8915 5.6: the associated data ends before it), so
		// a change there may still yield the authentic sample: touched
		// counts any change before the authenticator's end.
		changed, touched := false, false
		srv.damage = func(r []byte) []byte {
			authStart, authEnd := srv.authStart, srv.authEnd
			orig := append([]byte(nil), r...)
			r = damageReply(r, flips, int(cut), tail)
			n := min(authEnd, len(r))
			touched = n < authEnd || !bytes.Equal(r[:n], orig[:n])
			changed = n < authEnd || !bytes.Equal(r[:authStart], orig[:authStart]) || !bytes.Equal(r[authStart+4:n], orig[authStart+4:n])
			return r
		}
		r := ntsQuery(sess, srv)
		if srv.badReq != "" {
			t.Fatalf("request not authenticated: %s", srv.badReq)
		}
		switch {
		case changed && (r.kind == replySample || r.kind == replyKiss):
			t.Fatalf("a reply with its authenticated bytes changed was taken: %+v", r)
		case !touched && len(tail) == 0 && r.kind != replySample:
			t.Fatalf("the authentic reply was refused: %+v", r)
		case r.kind != replySample && r.detail == "":
			t.Fatalf("unusable reply %d without a reason", r.kind)
		}
	})
}

// NTS-KE responses as the fuzzer writes them, after a real TLS 1.3
// handshake: nothing panics; a key exchange succeeds only if the records
// up to End of Message are well formed, negotiate NTPv4 and an AEAD
// slewd can use, and carry no error; its NTP server is a HOST:PORT; and a
// session without cookies sends nothing (it asks for a new exchange).
func FuzzNTSKE(f *testing.F) {
	f.Add(goodKEResponse())
	f.Add(append(keRecord(2, true, []byte{0, 1}), keRecord(0, true, nil)...)) // error: bad request
	noCookies := append(keRecord(1, true, []byte{0, 0}), keRecord(4, true, []byte{0, 15})...)
	f.Add(append(noCookies, keRecord(0, true, nil)...))
	withServer := append(keRecord(6, true, []byte("ntp.example.org")), keRecord(7, true, []byte{0x04, 0xD2})...)
	f.Add(append(withServer, goodKEResponse()...))
	f.Add(append(keRecord(4, true, []byte{0, 30}), goodKEResponse()[12:]...)) // AES-128-GCM-SIV
	f.Add(keRecord(0, true, nil))
	f.Add([]byte{0x80, 0x01, 0x04, 0x01}) // record longer than the buffer
	f.Fuzz(func(t *testing.T, response []byte) {
		sess, srv, err := ntsFixture(t, response)
		ref := checkKERecords(response)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if ref != "" {
			t.Fatalf("key exchange accepted %x, which %s", response, ref)
		}
		// Trim leaves something only if host has a character outside the set.
		host, port, err := net.SplitHostPort(sess.ntpAddr)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 1 || n > 65535 || host == "" ||
			strings.Trim(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:") != "" {
			t.Fatalf("NTP server %q from the key exchange", sess.ntpAddr)
		}
		if !hasCookie(response) {
			r := ntsQuery(sess, srv)
			if r.kind != replyNTSNak || srv.writes != 0 {
				t.Fatalf("a session without cookies: %+v after %d requests", r, srv.writes)
			}
		}
	})
}

// checkKERecords says why an NTS-KE response must be refused, or "": read
// on its own, independently of beevik/nts.
func checkKERecords(b []byte) string {
	proto, aead := false, false
	for {
		if len(b) < 4 {
			return "ends before End of Message"
		}
		typ, n := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		if len(b) < 4+n {
			return "has a record longer than the response"
		}
		if n > 1024 {
			return "has a record longer than 1024 bytes"
		}
		crit, body := typ&0x8000 != 0, b[4:4+n]
		b = b[4+n:]
		switch typ &^ 0x8000 {
		case 0:
			if !crit || n != 0 {
				return "has a malformed End of Message"
			}
			if !aead {
				return "negotiates no AEAD algorithm"
			}
			_ = proto // chrony always sends it; beevik assumes NTPv4 without
			return ""
		case 1:
			if !crit || n != 2 || binary.BigEndian.Uint16(body) != 0 {
				return "does not negotiate NTPv4"
			}
			proto = true
		case 2:
			return "carries an error"
		case 3:
			return "carries a warning"
		case 4:
			if n != 2 {
				return "has a malformed AEAD record"
			}
			a := binary.BigEndian.Uint16(body)
			aead = a == 15 || a == 30
			if !aead {
				return "negotiates an AEAD slewd cannot use"
			}
		case 5:
			if crit || n == 0 {
				return "has a malformed cookie"
			}
		case 6:
			if n == 0 {
				return "has an empty server"
			}
		case 7:
			if n != 2 {
				return "has a malformed port"
			}
		case 1024:
			if crit || n != 0 {
				return "has a malformed compliance record"
			}
		default:
			if crit {
				return "has an unknown critical record"
			}
		}
	}
}

// hasCookie says whether the records up to End of Message carry a cookie.
func hasCookie(b []byte) bool {
	for len(b) >= 4 {
		typ, n := binary.BigEndian.Uint16(b)&^0x8000, int(binary.BigEndian.Uint16(b[2:]))
		if typ == 0 || len(b) < 4+n {
			return false
		}
		if typ == 5 && n > 0 {
			return true
		}
		b = b[4+n:]
	}
	return false
}
