package ntpclient

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"slewd/clock"
)

// Spec parsing: never panics, and what it accepts prints back to itself.
func FuzzParseSource(f *testing.F) {
	for _, s := range []string{"pool.ntp.org", "a.b:123", "[::1]:123", "::1", "1.2.3.4", "[fe80::1%eth0]:1", "x:", "[", "1.2.3.256", "ntp://x", "nts://time.example.org", "NTS://[::1]:4460", "nts://", "nts://1.2.3.4:0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sp, err := ParseSource(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if sp.Port < 1 || sp.Port > 65535 || sp.Host == "" {
			t.Fatalf("%q → %+v", s, sp)
		}
		again, err := ParseSource(sp.String())
		if err != nil || again != sp {
			t.Fatalf("%q → %v → %+v, %v", s, sp, again, err)
		}
	})
}

// Key lines: never panic, never accept a key of the wrong size.
func FuzzParseKey(f *testing.F) {
	for _, s := range []string{"1 SHA256 HEX:00112233", "2 AES128 HEX:000102030405060708090a0b0c0d0e0f", "3 key", "4 MD5 ASCII:", "x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKey(s)
		if err != nil {
			return
		}
		spec := KeyTypes[k.Type]
		if k.ID == 0 || len(k.Secret) < spec.MinKey || len(k.Secret) > spec.MaxKey {
			t.Fatalf("%q → %v with %d bytes", s, k, len(k.Secret))
		}
	})
}

// Key files: whatever a file holds, ReadKeyFile returns key id with a
// secret of the size its type needs, the first line for that id as
// ParseKey reads it, or an error that names the file and never shows the
// secret.
func FuzzKeyFile(f *testing.F) {
	f.Add("# chrony keys\n1 SHA256 HEX:6c4f1e2a9b3d5c7e8f00112233445566\n2 AES128 HEX:000102030405060708090a0b0c0d0e0f\n", uint32(2))
	f.Add("1 MD5 ASCII:secretword\n1 SHA1 HEX:00\n", uint32(1))
	f.Add("! comment\n; comment\n7 AES256 HEX:zz00112233445566778899aabbccddeeff00112233445566778899aabbccddee\n", uint32(7))
	f.Add("9 SHA512 longsecretlongsecret extra\n", uint32(9))
	f.Add("", uint32(1))
	f.Fuzz(func(t *testing.T, content string, id uint32) {
		path := filepath.Join(t.TempDir(), "keys")
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		k, err := ReadKeyFile(path, id)
		if err != nil {
			if !strings.HasPrefix(err.Error(), path) && !strings.Contains(err.Error(), "key file") {
				t.Fatalf("error %q does not name the file", err)
			}
			// What the message prints anyway is no leak: the file, the ids
			// (the one asked for, a line's valid one) and the id rule.
			msg := strings.TrimPrefix(err.Error(), path)
			msg = strings.ReplaceAll(msg, errBadKeyID.Error(), "")
			msg = strings.ReplaceAll(msg, fmt.Sprintf("has no key %d ", id), "")
			for _, line := range strings.Split(content, "\n") {
				if f := strings.Fields(line); len(f) > 0 {
					if n, ok := keyID(f[0]); ok {
						msg = strings.ReplaceAll(msg, fmt.Sprintf("key %d:", n), "key:")
					}
				}
			}
			for _, line := range strings.Split(content, "\n") {
				f := strings.Fields(line)
				if len(f) < 2 {
					continue
				}
				secret := f[len(f)-1]
				secret = strings.TrimPrefix(strings.TrimPrefix(secret, "HEX:"), "ASCII:")
				if len(secret) >= 8 && strings.Contains(msg, secret) {
					t.Fatalf("error %q shows the secret %q", err, secret)
				}
				// In a malformed line any field may be the secret; only a
				// valid id and a type name may be shown. (Fields of
				// lowercase letters alone could be words of the message.)
				for i, field := range f[:len(f)-1] {
					if _, id := keyID(field); i == 0 && id || knownKeyType(field) {
						continue
					}
					if len(field) >= 8 && strings.Trim(field, "abcdefghijklmnopqrstuvwxyz") != "" && strings.Contains(msg, field) {
						t.Fatalf("error %q shows the field %q of a key line, which may be the secret", err, field)
					}
				}
			}
			return
		}
		spec, ok := KeyTypes[k.Type]
		if !ok || k.ID != id || len(k.Secret) < spec.MinKey || len(k.Secret) > spec.MaxKey {
			t.Fatalf("key %v with %d bytes for id %d", k, len(k.Secret), id)
		}
	})
}

// samplesFrom decodes fuzz input into a sequence of samples, 20 bytes
// each, with fields wide enough to reach every range check.
func samplesFrom(b []byte) []Sample {
	var out []Sample
	raw := time.Duration(0)
	for len(b) >= 20 {
		raw += time.Duration(binary.BigEndian.Uint32(b[0:4])) * time.Millisecond
		s := Sample{
			Raw:            raw,
			Offset:         time.Duration(int64(binary.BigEndian.Uint64(b[4:12]))),
			RealMinusRaw:   time.Duration(int32(binary.BigEndian.Uint32(b[12:16]))) * time.Second,
			Delay:          time.Duration(int16(binary.BigEndian.Uint16(b[16:18]))) * 10 * time.Microsecond,
			RootDispersion: time.Duration(b[18]) * time.Millisecond,
			Precision:      time.Duration(b[19]) * time.Microsecond,
			Stratum:        b[18]%16 + 1,
		}
		out = append(out, s)
		b = b[20:]
	}
	return out
}

func checkOut(t *testing.T, out filterOut) {
	t.Helper()
	for _, v := range []float64{out.Freq, out.FreqErr} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Fatalf("filter output %+v has NaN or Inf", out)
		}
	}
	if out.Jitter < 0 || out.Dispersion < 0 || out.Delay < 0 || out.N < 0 {
		t.Fatalf("negative spread in %+v", out)
	}
	if out.N > 0 && (out.Phase == math.MaxInt64 || out.Phase == math.MinInt64 || out.Dispersion == math.MaxInt64) {
		t.Fatalf("saturated output %+v", out)
	}
}

// Arbitrary sample sequences through the filter and the selection: no
// panic, no NaN or infinity, no saturated estimate.
func FuzzFilter(f *testing.F) {
	seed := make([]byte, 0, 200)
	for i := 0; i < 10; i++ {
		var s [20]byte
		binary.BigEndian.PutUint32(s[0:4], 2000)
		binary.BigEndian.PutUint64(s[4:12], uint64(int64(i*1000+5000)))
		binary.BigEndian.PutUint32(s[12:16], 1780000000)
		binary.BigEndian.PutUint16(s[16:18], uint16(3000+i*7))
		s[19] = 1
		seed = append(seed, s[:]...)
	}
	f.Add(seed)
	f.Add(make([]byte, 40))
	f.Add([]byte("\xff\xff\xff\xff\x7f\xff\xff\xff\xff\xff\xff\xff\x7f\xff\xff\xff\x7f\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		samples := samplesFrom(b)
		filters := make([]filter, 3)
		for i, s := range samples {
			fl := &filters[i%3]
			fl.add(s)
			checkOut(t, fl.output(s.Raw))
			checkOut(t, fl.output(s.Raw+time.Hour))
		}
		var cands []Candidate
		var at time.Duration
		for _, fl := range filters {
			if fl.len() > 0 {
				at = max(at, fl.newest().Raw)
			}
		}
		for _, fl := range filters {
			if fl.len() == 0 {
				continue
			}
			out := fl.output(at)
			checkOut(t, out)
			cands = append(cands, Candidate{Phase: out.Phase, RootDistance: rootDistance(out), Jitter: out.Jitter, Stratum: out.Best.Stratum})
		}
		sel := Select(cands, 1)
		if sel.OK && (sel.Error < 0 || sel.Jitter < 0 || sel.Phase == math.MaxInt64 || sel.Phase == math.MinInt64) {
			t.Fatalf("selection %+v", sel)
		}
	})
}

// fakeClock is a deterministic clock for driving queries in fuzzing.
type fakeClock struct{ t time.Duration }

func (c *fakeClock) Now() time.Time {
	c.t += time.Microsecond
	return time.Unix(1_780_000_000, 0).Add(c.t)
}
func (c *fakeClock) Raw() time.Duration  { c.t += time.Microsecond; return c.t }
func (c *fakeClock) Mono() time.Duration { return c.t }
func (c *fakeClock) Adjtimex(*clock.Timex) (clock.State, error) {
	panic("queries never adjust the clock")
}

// replyConn answers every request with the fuzzer's bytes, optionally
// with the request's transmit timestamp echoed so that beevik takes it.
type replyConn struct {
	reply []byte
	echo  bool
	sent  []byte
}

func (c *replyConn) Write(b []byte) (int, error) {
	c.sent = append([]byte(nil), b...)
	return len(b), nil
}
func (c *replyConn) Read(b []byte) (int, error) {
	r := append([]byte(nil), c.reply...)
	if c.echo && len(r) >= 32 && len(c.sent) >= 48 {
		copy(r[24:32], c.sent[40:48])
	}
	return copy(b, r), nil
}
func (c *replyConn) Close() error                     { return nil }
func (c *replyConn) LocalAddr() net.Addr              { return &net.UDPAddr{} }
func (c *replyConn) RemoteAddr() net.Addr             { return &net.UDPAddr{} }
func (c *replyConn) SetDeadline(time.Time) error      { return nil }
func (c *replyConn) SetReadDeadline(time.Time) error  { return nil }
func (c *replyConn) SetWriteDeadline(time.Time) error { return nil }

// Arbitrary replies from the network through beevik/ntp, the
// classification and the filter: no panic, a sample only from a reply
// that passes every check, and sane filter output.
func FuzzReply(f *testing.F) {
	good := make([]byte, 48)
	good[0] = 0<<6 | 4<<3 | 4
	good[1] = 2
	binary.BigEndian.PutUint64(good[16:], 0xEE00000000000000)
	binary.BigEndian.PutUint64(good[32:], 0xEE00000100000000)
	binary.BigEndian.PutUint64(good[40:], 0xEE00000100001000)
	f.Add(good, true, true)
	kiss := append([]byte(nil), good...)
	kiss[0], kiss[1] = 3<<6|4<<3|4, 0
	copy(kiss[12:16], "RATE")
	f.Add(kiss, true, false)
	f.Add([]byte{0x24}, false, false)
	key, _ := ParseKey("1 SHA256 HEX:0011223344556677")
	f.Fuzz(func(t *testing.T, reply []byte, echo, auth bool) {
		dial := func(string, string) (net.Conn, error) { return &replyConn{reply: reply, echo: echo}, nil }
		p := queryParams{source: "fuzz:123", addr: "192.0.2.1:123", timeout: time.Second, dialer: dial, clock: &fakeClock{}, simulated: true}
		if auth {
			p.auth = &key
		}
		r := query(p)
		if r.kind == replySample {
			if err := validSample(r.sample); err != nil {
				t.Fatalf("sample out of range %+v", r.sample)
			}
			if r.sample.Stratum == 0 || r.sample.Stratum >= 16 || r.sample.Leap == LeapNotInSync {
				t.Fatalf("unsynchronized reply taken as a sample: %+v", r.sample)
			}
			var fl filter
			fl.add(r.sample)
			checkOut(t, fl.output(r.sample.Raw))
		} else if r.detail == "" {
			t.Fatalf("unusable reply %d without a reason", r.kind)
		}
	})
}

// The fuzz corpora in testdata must stay loadable.
func TestFuzzCorporaPresent(t *testing.T) {
	for _, name := range []string{"FuzzParseSource", "FuzzParseKey", "FuzzKeyFile", "FuzzFilter", "FuzzReply", "FuzzAuthReply", "FuzzImportConfig", "FuzzNTSReply", "FuzzNTSKE"} {
		if entries, err := os.ReadDir("testdata/fuzz/" + name); err != nil || len(entries) == 0 {
			t.Errorf("no seed corpus for %s: %v", name, err)
		}
	}
}

// macConn answers a request with an authentic reply (symmetric key,
// SHA256 as RFC 5905 §7.3 has it: the digest of key and packet,
// truncated to 20 bytes in NTPv4), which damage may then change.
type macConn struct {
	key    Key
	clock  *fakeClock
	damage func([]byte) []byte
	reply  []byte
}

func (c *macConn) Write(b []byte) (int, error) {
	h := make([]byte, 48)
	h[0], h[1], h[2], h[3] = 0<<6|4<<3|4, 2, 6, 0xEC
	binary.BigEndian.PutUint32(h[8:], 0x10)
	copy(h[12:16], []byte{192, 0, 2, 99})
	now := c.clock.Now()
	binary.BigEndian.PutUint64(h[16:], ntpStamp(now.Add(-time.Minute)))
	if len(b) >= 48 {
		copy(h[24:32], b[40:48])
	}
	binary.BigEndian.PutUint64(h[32:], ntpStamp(now))
	binary.BigEndian.PutUint64(h[40:], ntpStamp(now.Add(time.Microsecond)))
	sum := sha256.Sum256(append(append([]byte(nil), c.key.Secret...), h...))
	c.reply = binary.BigEndian.AppendUint32(h, c.key.ID)
	c.reply = append(c.reply, sum[:20]...)
	return len(b), nil
}
func (c *macConn) Read(b []byte) (int, error) {
	r := append([]byte(nil), c.reply...)
	if c.damage != nil {
		r = c.damage(r)
	}
	return copy(b, r), nil
}
func (c *macConn) Close() error                     { return nil }
func (c *macConn) LocalAddr() net.Addr              { return &net.UDPAddr{} }
func (c *macConn) RemoteAddr() net.Addr             { return &net.UDPAddr{} }
func (c *macConn) SetDeadline(time.Time) error      { return nil }
func (c *macConn) SetReadDeadline(time.Time) error  { return nil }
func (c *macConn) SetWriteDeadline(time.Time) error { return nil }

// Symmetric-key replies, authentic and then damaged (bytes changed, the
// packet cut, bytes appended): one whose header, key id or digest changed
// is never a sample nor an obeyed kiss; the authentic one always is a
// sample.
func FuzzAuthReply(f *testing.F) {
	f.Add([]byte{}, uint16(0), []byte{})
	f.Add([]byte{0, 1, 0x02}, uint16(0), []byte{})              // stratum
	f.Add([]byte{0, 49, 0x01}, uint16(0), []byte{})             // key id
	f.Add([]byte{0, 60, 0x80}, uint16(0), []byte{})             // digest
	f.Add([]byte{}, uint16(48), []byte{})                       // MAC cut off
	f.Add([]byte{}, uint16(0), []byte{0, 0, 0, 0})              // appended
	f.Add([]byte{0, 1, 0x02, 0, 12, 0x1b}, uint16(0), []byte{}) // stratum 0 kiss, MAC left as it was
	key, _ := ParseKey("5 SHA256 HEX:00112233445566778899aabbccddeeff")
	f.Fuzz(func(t *testing.T, flips []byte, cut uint16, tail []byte) {
		changed := false
		conn := &macConn{key: key, clock: &fakeClock{}}
		conn.damage = func(r []byte) []byte {
			orig := append([]byte(nil), r...)
			r = damageReply(r, flips, int(cut), tail)
			changed = !bytes.Equal(r, orig)
			return r
		}
		dial := func(string, string) (net.Conn, error) { return conn, nil }
		p := queryParams{source: "a:123", addr: "192.0.2.1:123", timeout: time.Second, dialer: dial, clock: conn.clock, simulated: true, auth: &key}
		r := query(p)
		switch {
		case changed && (r.kind == replySample || r.kind == replyKiss):
			t.Fatalf("a damaged authenticated reply was taken: %+v", r)
		case !changed && r.kind != replySample:
			t.Fatalf("the authentic reply was refused: %+v", r)
		case r.kind != replySample && r.detail == "":
			t.Fatalf("unusable reply %d without a reason", r.kind)
		}
	})
}

// damageReply flips the bytes flips names (each 3 bytes: a big-endian
// offset and an XOR mask), cuts the reply at cut (if inside it) and
// appends tail: what the reply fuzz targets do to a server's answer.
func damageReply(r, flips []byte, cut int, tail []byte) []byte {
	for i := 0; i+2 < len(flips); i += 3 {
		if at := int(binary.BigEndian.Uint16(flips[i:])); at < len(r) {
			r[at] ^= flips[i+2]
		}
	}
	if cut > 0 && cut < len(r) {
		r = r[:cut]
	}
	return append(r, tail...)
}
