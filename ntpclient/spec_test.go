package ntpclient

import (
	"strings"
	"testing"
)

func TestParseSource(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // Spec.String(), or "" for an error
		err  string // substring of the error
	}{
		{"pool.ntp.org", "pool.ntp.org:123", ""},
		{"  time.example.com:1123 ", "time.example.com:1123", ""},
		{"192.0.2.7", "192.0.2.7:123", ""},
		{"127.0.0.1:12300", "127.0.0.1:12300", ""},
		{"[::1]:123", "[::1]:123", ""},
		{"[::1]", "[::1]:123", ""},
		{"::1", "[::1]:123", ""},
		{"2001:db8::1", "[2001:db8::1]:123", ""},
		{"[fe80::1%eth0]:123", "[fe80::1%eth0]:123", ""},
		{"ntp_1.lan.", "ntp_1.lan.:123", ""},
		{"", "", "empty server name"},
		{"ntp://pool.ntp.org", "", "looks like a URL"},
		{"a.org b.org", "", "one server per argument"},
		{"a.org,b.org", "", "one server per argument"},
		{"host:", "", "empty port"},
		{"host:abc", "", "not a number from 1 to 65535"},
		{"host:0", "", "not a number from 1 to 65535"},
		{"host:70000", "", "not a number from 1 to 65535"},
		{":123", "", "empty host name"},
		{"[::1", "", "no closing ']'"},
		{"[::1]x", "", "unexpected"},
		{"[192.0.2.1]:123", "", "brackets are for IPv6 only"},
		{"1.2.3.256", "", "not a valid IPv4 address"},
		{"1.2.3", "", "not a valid IPv4 address"},
		{"-bad.org", "", "cannot start or end with '-'"},
		{"a..b", "", "empty or over-long"},
		{"exa$mple.org", "", "contains"},
		{"1:2:3:zz", "", "not an IPv6 address"},
		{"nts://time.cloudflare.com", "nts://time.cloudflare.com:4460", ""},
		{"NTS://ntp.example.org:4461", "nts://ntp.example.org:4461", ""},
		{"nts://[::1]", "nts://[::1]:4460", ""},
		{"nts://127.0.0.1:12345", "nts://127.0.0.1:12345", ""},
		{"nts://", "", "write nts://HOST"},
		{"nts://nts://a.org", "", "write nts://HOST"},
		{"nts://a.org:0", "", "not a number from 1 to 65535"},
		{"nts://a.org/path", "", "cannot be in a host name"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			sp, err := ParseSource(tc.in)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("got %v, want an error", sp)
				}
				if !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %q does not say %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if sp.String() != tc.want {
				t.Errorf("got %s, want %s", sp, tc.want)
			}
		})
	}
}

func TestParseKey(t *testing.T) {
	for _, tc := range []struct {
		in   string
		typ  string
		n    int
		err  string
		id   uint32
		hide string // text that must not appear in the error (the secret)
	}{
		{in: "7 SHA256 HEX:00112233445566778899aabbccddeeff00112233", typ: "SHA256", n: 20, id: 7},
		{in: "8 aes128 HEX:000102030405060708090a0b0c0d0e0f", typ: "AES128", n: 16, id: 8},
		{in: "1 plaintextkey", typ: "MD5", n: 12, id: 1},
		{in: "2 SHA1 ASCII:abcdefgh", typ: "SHA1", n: 8, id: 2},
		{in: "8 AES128 HEX:0001", err: "exactly 16 bytes"},
		{in: "9 SHA256 HEX:zz", err: "not hexadecimal"},
		{in: "9 BLAKE3 HEX:00112233", err: "unknown type"},
		{in: "0 SHA1 ASCII:abcd", err: "key id"},
		{in: "x SHA1 ASCII:abcd", err: "key id"},
		{in: "5 SHA1 ASCII:secretword extra", err: "want", hide: "secretword"},
		// Fields out of order: what is read as the type is the secret.
		{in: "3 HEX:00112233445566778899 SHA256", err: "unknown type", hide: "00112233"},
		{in: "3 s3cretpw SHA256", err: "unknown type", hide: "s3cretpw"},
		{in: "4 s3cretpw SHA256 extra", err: "want", hide: "s3cretpw"},
		{in: "s3cretpw 4 SHA256", err: "key id", hide: "s3cretpw"},
		{in: "00000000 00000000", err: "key id", hide: "00000000"},
		{in: "s3cretpw SHA256 x y", err: "want", hide: "s3cretpw"},
		{in: "5 SHA1 HEX:s3cretpw", err: "not hexadecimal", hide: "U+"},
		{in: "5 SHA512 HEX:" + strings.Repeat("00", 33), err: "4 to 32 bytes"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			k, err := ParseKey(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				if tc.hide != "" && strings.Contains(err.Error(), tc.hide) {
					t.Errorf("error %q shows the secret", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if k.Type != tc.typ || len(k.Secret) != tc.n || k.ID != tc.id {
				t.Errorf("got %v with %d-byte secret", k, len(k.Secret))
			}
			if strings.Contains(k.String(), string(k.Secret)) {
				t.Errorf("String() %q shows the secret", k)
			}
		})
	}
}
