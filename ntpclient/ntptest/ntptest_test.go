package ntptest

import (
	"context"
	"encoding/hex"
	"errors"
	"math"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/beevik/ntp"

	"slewd/clock"
	"slewd/clock/simclock"
	"slewd/ntpclient"
)

// RFC 4493 §4 test vectors.
func TestCMACVectors(t *testing.T) {
	key, _ := hex.DecodeString("2b7e151628aed2a6abf7158809cf4f3c")
	msg, _ := hex.DecodeString("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710")
	for _, tc := range []struct {
		n    int
		want string
	}{
		{0, "bb1d6929e95937287fa37d129b756746"},
		{16, "070a16b46b4d4144f79bdd9dd04a287c"},
		{40, "dfa66747de9ae63030ca32611497c827"},
		{64, "51f0bebf7e3b9d92fc49741779363cfe"},
	} {
		got, err := cmac(key, msg[:tc.n])
		if err != nil {
			t.Fatal(err)
		}
		if hex.EncodeToString(got) != tc.want {
			t.Errorf("CMAC of %d bytes = %x, want %s", tc.n, got, tc.want)
		}
	}
}

func TestParseRequestFraming(t *testing.T) {
	hdr := make([]byte, HeaderLen)
	hdr[0] = 4<<3 | ModeClient
	ext := make([]byte, 28)
	ext[3] = 28 // length
	mac := make([]byte, 24)
	mac[3] = 9 // key id
	for _, tc := range []struct {
		name    string
		pkt     []byte
		wantErr bool
		ext     int
		keyID   uint32
	}{
		{"header only", hdr, false, 0, 0},
		{"short", hdr[:47], true, 0, 0},
		{"mac", cat(hdr, mac), false, 0, 9},
		{"extension then mac", cat(hdr, ext, mac), false, 28, 9},
		{"extension only", cat(hdr, ext), false, 28, 0},
		{"odd trailer", cat(hdr, []byte{1, 2, 3}), true, 0, 0},
		{"bad extension length", cat(hdr, make([]byte, 40)), true, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseRequest(tc.pkt)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if len(r.Extensions) != tc.ext || r.KeyID != tc.keyID || r.HasMAC != (tc.keyID != 0) {
				t.Errorf("extensions %d key %d mac %v", len(r.Extensions), r.KeyID, r.HasMAC)
			}
		})
	}
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func beevikKey(k ntpclient.Key) ntp.AuthOptions {
	typ := map[string]ntp.AuthType{"MD5": ntp.AuthMD5, "SHA1": ntp.AuthSHA1, "SHA256": ntp.AuthSHA256,
		"SHA512": ntp.AuthSHA512, "AES128": ntp.AuthAES128, "AES256": ntp.AuthAES256}[k.Type]
	return ntp.AuthOptions{Type: typ, KeyID: k.ID, Key: "HEX:" + hex.EncodeToString(k.Secret)}
}

func mustKey(t *testing.T, line string) ntpclient.Key {
	t.Helper()
	k, err := ntpclient.ParseKey(line)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// The UDP server, seen through the client library the project uses.
func TestUDPServerWithBeevik(t *testing.T) {
	sha := mustKey(t, "7 SHA256 HEX:00112233445566778899aabbccddeeff00112233")
	aes := mustKey(t, "8 AES128 HEX:000102030405060708090a0b0c0d0e0f")
	wrong := mustKey(t, "7 SHA256 HEX:ffffffffffffffffffffffffffffffffffffffff")
	for _, tc := range []struct {
		name  string
		cfg   ServerConfig
		auth  *ntpclient.Key
		check func(t *testing.T, r *ntp.Response, err error)
	}{
		{"offset", ServerConfig{Offset: 1500 * time.Millisecond, Stratum: 3}, nil, func(t *testing.T, r *ntp.Response, err error) {
			if err != nil || r.Validate() != nil {
				t.Fatalf("err %v validate %v", err, r.Validate())
			}
			if d := r.ClockOffset - 1500*time.Millisecond; d.Abs() > 5*time.Millisecond || r.Stratum != 3 {
				t.Errorf("offset %v stratum %d", r.ClockOffset, r.Stratum)
			}
		}},
		{"kiss RATE", ServerConfig{Kiss: "RATE"}, nil, func(t *testing.T, r *ntp.Response, err error) {
			// What pitfall 3 says real servers do: no error, garbage offset.
			if err != nil || !r.IsKissOfDeath() || r.KissCode != "RATE" {
				t.Fatalf("err %v kod %v code %q", err, r.IsKissOfDeath(), r.KissCode)
			}
			if r.ClockOffset.Abs() < time.Hour {
				t.Errorf("offset %v: the kiss should make a naive client's offset garbage", r.ClockOffset)
			}
		}},
		{"unsynchronized", ServerConfig{Unsynchronized: true}, nil, func(t *testing.T, r *ntp.Response, err error) {
			if err != nil || r.Leap != ntp.LeapNotInSync || r.Stratum != 0 || r.KissCode != "" || !errors.Is(r.Validate(), ntp.ErrKissOfDeath) {
				t.Fatalf("err %v leap %v stratum %d code %q validate %v", err, r.Leap, r.Stratum, r.KissCode, r.Validate())
			}
		}},
		{"wrong origin", ServerConfig{WrongOrigin: true}, nil, func(t *testing.T, r *ntp.Response, err error) {
			if !errors.Is(err, ntp.ErrServerResponseMismatch) {
				t.Fatalf("err %v", err)
			}
		}},
		{"zero transmit", ServerConfig{ZeroTransmit: true}, nil, func(t *testing.T, r *ntp.Response, err error) {
			if !errors.Is(err, ntp.ErrInvalidTransmitTime) {
				t.Fatalf("err %v", err)
			}
		}},
		{"SHA256 key", ServerConfig{Keys: []ntpclient.Key{sha, aes}}, &sha, func(t *testing.T, r *ntp.Response, err error) {
			if err != nil || r.Validate() != nil {
				t.Fatalf("err %v", err)
			}
		}},
		{"AES128 key", ServerConfig{Keys: []ntpclient.Key{sha, aes}}, &aes, func(t *testing.T, r *ntp.Response, err error) {
			if err != nil || r.Validate() != nil {
				t.Fatalf("err %v", err)
			}
		}},
		{"wrong key is dropped", ServerConfig{Keys: []ntpclient.Key{sha}}, &wrong, func(t *testing.T, r *ntp.Response, err error) {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("err %v, want a timeout", err)
			}
		}},
		{"unauthenticated refused", ServerConfig{Keys: []ntpclient.Key{sha}, RequireAuth: true}, nil, func(t *testing.T, r *ntp.Response, err error) {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("err %v, want a timeout", err)
			}
		}},
		{"silent", ServerConfig{Drop: true}, nil, func(t *testing.T, r *ntp.Response, err error) {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("err %v, want a timeout", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewServer(tc.cfg)
			defer s.Close()
			opt := ntp.QueryOptions{Timeout: 200 * time.Millisecond}
			if tc.auth != nil {
				opt.Auth = beevikKey(*tc.auth)
			}
			r, err := ntp.QueryWithOptions(s.Addr(), opt)
			tc.check(t, r, err)
			c := s.Counters()
			if c.Received != 1 || c.Answered+c.Dropped != 1 {
				t.Errorf("counters %+v", c)
			}
			if tc.name == "wrong key is dropped" && c.AuthFail != 1 {
				t.Errorf("counters %+v: the failed MAC should be counted", c)
			}
		})
	}
}

// On the simulated network a query takes virtual time only: the delay is
// what the link says, the offset what the server and the clock say.
func TestNetworkQuery(t *testing.T) {
	w := simclock.New(simclock.Config{Seed: 1, Kernel: simclock.KernelConfig{ClockError: -3 * time.Second}})
	n := NewNetwork(w)
	srv := n.AddServer("10.0.0.1:123", ServerConfig{Offset: 250 * time.Millisecond, Delay: 20 * time.Millisecond, Asymmetry: 4 * time.Millisecond})
	n.AddServer("10.0.0.2", ServerConfig{Loss: 1})
	var r *ntp.Response
	var qerr, lossErr error
	var lossTook time.Duration
	w.Spawn("client", false, func(ctx context.Context, p *simclock.Process) error {
		opt := ntp.QueryOptions{Timeout: time.Second, Dialer: n.Dialer(p), GetSystemTime: p.Now}
		r, qerr = ntp.QueryWithOptions("10.0.0.1", opt)
		m0 := p.Mono()
		_, lossErr = ntp.QueryWithOptions("10.0.0.2:123", opt)
		lossTook = p.Mono() - m0
		return nil
	})
	w.Run(10 * time.Second)
	if qerr != nil {
		t.Fatal(qerr)
	}
	// Offset: server +250 ms, clock 3 s behind; the asymmetry biases by −2 ms.
	want := 3*time.Second + 250*time.Millisecond - 2*time.Millisecond
	if d := r.ClockOffset - want; d.Abs() > time.Microsecond {
		t.Errorf("offset %v, want %v", r.ClockOffset, want)
	}
	if d := r.RTT - 44*time.Millisecond; d.Abs() > time.Microsecond {
		t.Errorf("delay %v, want 44ms", r.RTT)
	}
	var ne net.Error
	if !errors.As(lossErr, &ne) || !ne.Timeout() {
		t.Errorf("lossy query: %v, want a timeout", lossErr)
	}
	if d := lossTook - time.Second; d.Abs() > time.Millisecond {
		t.Errorf("timeout took %v of simulated MONOTONIC, want 1s", lossTook)
	}
	if c := srv.Counters(); c.Received != 1 || c.Answered != 1 {
		t.Errorf("counters %+v", c)
	}
	if c := n.Server("10.0.0.2").Counters(); c.Received != 0 || c.Lost != 1 {
		t.Errorf("lossy counters %+v", c)
	}
}

// Same seed, same delays: jitter comes from per-server streams.
func TestNetworkDeterministic(t *testing.T) {
	run := func(seed uint64) []time.Duration {
		w := simclock.New(simclock.Config{Seed: seed})
		n := NewNetwork(w)
		n.AddServer("10.0.0.1", ServerConfig{Delay: 10 * time.Millisecond, Jitter: 5 * time.Millisecond, Loss: 0.2})
		n.AddServer("10.0.0.2", ServerConfig{Delay: 30 * time.Millisecond, Jitter: 1 * time.Millisecond})
		var rtts []time.Duration
		w.Spawn("client", false, func(ctx context.Context, p *simclock.Process) error {
			opt := ntp.QueryOptions{Timeout: time.Second, Dialer: n.Dialer(p), GetSystemTime: p.Now}
			for i := 0; i < 20; i++ {
				for _, a := range []string{"10.0.0.1", "10.0.0.2"} {
					r, err := ntp.QueryWithOptions(a, opt)
					if err != nil {
						rtts = append(rtts, -1)
						continue
					}
					rtts = append(rtts, r.RTT)
				}
			}
			return nil
		})
		w.Run(time.Minute)
		return rtts
	}
	a, b, c := run(5), run(5), run(6)
	if len(a) != 40 {
		t.Fatalf("%d results", len(a))
	}
	same, lost := true, 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("run differs at %d: %v vs %v", i, a[i], b[i])
		}
		if a[i] != c[i] {
			same = false
		}
		if a[i] < 0 {
			lost++
		}
		if i%2 == 1 && a[i] >= 0 && (a[i] < 60*time.Millisecond || a[i] > 80*time.Millisecond) {
			t.Errorf("rtt %v outside 60ms + jitter", a[i])
		}
	}
	if same {
		t.Error("seeds 5 and 6 gave identical runs")
	}
	if lost == 0 || lost > 15 {
		t.Errorf("%d of 20 lost at 20 %% loss each way", lost)
	}
}

func TestResolver(t *testing.T) {
	w := simclock.New(simclock.Config{})
	n := NewNetwork(w)
	n.SetHost("pool.test", "10.0.1.1", "10.0.1.2")
	r := n.Resolver()
	if a, err := r.LookupHost(context.Background(), "pool.test"); err != nil || len(a) != 2 {
		t.Errorf("%v %v", a, err)
	}
	n.SetHostError("pool.test", nil)
	_, err := r.LookupHost(context.Background(), "pool.test")
	var de *net.DNSError
	if !errors.As(err, &de) || !de.IsTemporary {
		t.Errorf("err %v", err)
	}
	if _, err := r.LookupHost(context.Background(), "nowhere.test"); !errors.As(err, &de) || !de.IsNotFound {
		t.Errorf("err %v", err)
	}
	if n.Lookups("pool.test") != 2 {
		t.Errorf("lookups %d", n.Lookups("pool.test"))
	}
}

func TestTimestamp(t *testing.T) {
	tm := time.Date(2026, 1, 5, 3, 0, 0, 500_000_000, time.UTC)
	ts := Timestamp(tm)
	if frac := ts & 0xffffffff; math.Abs(float64(frac)-float64(1<<31)) > 1 {
		t.Errorf("fraction %x", frac)
	}
	if sec := ts >> 32; sec != uint64(tm.Unix()+ntpEpochOffset)&0xffffffff {
		t.Errorf("seconds %d", sec)
	}
}

// fakeClock is a clock whose REALTIME is being slewed away from RAW.
type fakeClock struct {
	raw  time.Duration
	real time.Time
}

func (c *fakeClock) Now() time.Time      { return c.real }
func (c *fakeClock) Raw() time.Duration  { return c.raw }
func (c *fakeClock) Mono() time.Duration { return c.raw }
func (c *fakeClock) Adjtimex(*clock.Timex) (clock.State, error) {
	panic("RawTruth must never touch the clock")
}

// RawTruth follows RAW, not the clock being disciplined.
func TestRawTruth(t *testing.T) {
	c := &fakeClock{raw: 100 * time.Second, real: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	truth := RawTruth(c)
	start := truth()
	c.raw += 10 * time.Second
	c.real = c.real.Add(11 * time.Second) // slewing fast
	if got := truth().Sub(start); got != 10*time.Second {
		t.Errorf("truth advanced %v, want 10s (RAW)", got)
	}
}

// KernelRx stamps a request's arrival with the kernel's receive time:
// before the server's wake-up, so further from its transmit time than a
// stamp taken after it, and still inside the exchange.
func TestUDPServerKernelRx(t *testing.T) {
	median := func(cfg ServerConfig) time.Duration {
		s := NewServer(cfg)
		defer s.Close()
		var gaps []time.Duration
		for range 21 {
			r, err := ntp.QueryWithOptions(s.Addr(), ntp.QueryOptions{Timeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			ts := r.Timestamps
			// NTP timestamps resolve 233 ps; allow a nanosecond of rounding.
			if ts.ServerRecv.Before(ts.ClientXmit.Add(-time.Nanosecond)) || ts.ClientRecv.Before(ts.ServerXmit.Add(-time.Nanosecond)) {
				t.Fatalf("kernel rx %v: stamps out of order %+v", cfg.KernelRx, ts)
			}
			gaps = append(gaps, ts.ServerXmit.Sub(ts.ServerRecv))
		}
		slices.Sort(gaps)
		return gaps[len(gaps)/2]
	}
	user, kernel := median(ServerConfig{}), median(ServerConfig{KernelRx: true})
	if kernel <= user {
		t.Errorf("median receive-to-transmit %v with kernel stamps, %v without: want longer", kernel, user)
	}
	t.Logf("median receive-to-transmit: %v with the kernel's receive stamp, %v with the server's", kernel, user)
}
