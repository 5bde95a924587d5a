package ntptest

import (
	"testing"
	"time"

	"slewd/ntpclient"
)

// Arbitrary request packets: the parser and the reply builder never
// panic, a reply is always a well-formed server packet answering the
// request, and authentication is never bypassed.
func FuzzRespond(f *testing.F) {
	req := make([]byte, HeaderLen)
	req[0] = 4<<3 | ModeClient
	f.Add(req, uint8(0))
	f.Add(append(append([]byte{}, req...), make([]byte, 24)...), uint8(1))
	f.Add([]byte{0x1b}, uint8(2))
	key, _ := ntpclient.ParseKey("1 AES128 HEX:000102030405060708090a0b0c0d0e0f")
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, b []byte, mode uint8) {
		cfg := ServerConfig{Offset: time.Second}
		switch mode % 4 {
		case 1:
			cfg.Keys, cfg.RequireAuth = []ntpclient.Key{key}, true
		case 2:
			cfg.Kiss = "RATE"
		case 3:
			cfg.Unsynchronized = true
		}
		q, perr := ParseRequest(b)
		reply, out := Respond(cfg, b, now, now)
		if (reply != nil) != (out == Answered) {
			t.Fatalf("reply %v with outcome %v", reply != nil, out)
		}
		if reply == nil {
			return
		}
		if perr != nil {
			t.Fatalf("answered an unparsable request: %v", perr)
		}
		if len(reply) < HeaderLen || reply[0]&7 != ModeServer || (reply[0]>>3)&7 != q.Version {
			t.Fatalf("malformed reply %x", reply)
		}
		if cfg.RequireAuth && !q.HasMAC {
			t.Fatal("unauthenticated request answered")
		}
		if q.HasMAC {
			want, err := MAC(key, q.Version, q.Signed)
			if err != nil || !equal(want, q.Digest) {
				t.Fatal("request with a bad MAC answered")
			}
		}
	})
}
