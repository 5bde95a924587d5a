package ntptest

import (
	"crypto/aes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"slewd/ntpclient"
)

// HeaderLen is the length of the NTP header (RFC 5905 §7.3).
const HeaderLen = 48

// NTP modes (RFC 5905 §7.3).
const (
	ModeClient = 3
	ModeServer = 4
)

// Request is a parsed NTP client request.
type Request struct {
	Leap      ntpclient.Leap
	Version   uint8
	Mode      uint8
	Poll      int8
	Precision int8
	// Transmit is the raw transmit timestamp: the server echoes it as
	// the reply's origin timestamp (clients put a random cookie here).
	Transmit uint64
	// Extensions holds the raw NTPv4 extension fields (RFC 7822), if any.
	Extensions []byte
	// HasMAC says a MAC trails the packet: KeyID and Digest.
	HasMAC bool
	KeyID  uint32
	Digest []byte
	// Signed is the part of the packet the MAC covers.
	Signed []byte
}

// Errors from ParseRequest.
var (
	ErrShort     = errors.New("shorter than the 48-byte NTP header")
	ErrTrailer   = errors.New("bytes after the header are neither extension fields nor a MAC")
	ErrExtension = errors.New("malformed extension field")
)

// maxV4MAC is the longest MAC (key id + digest) in an NTPv4 packet;
// anything longer after the header must be extension fields (RFC 7822 §7.5).
const maxV4MAC = 4 + 20

// ParseRequest parses a client packet. It checks only the framing; the
// caller decides whether version and mode are acceptable.
func ParseRequest(b []byte) (Request, error) {
	if len(b) < HeaderLen {
		return Request{}, ErrShort
	}
	r := Request{
		Leap:      ntpclient.Leap(b[0] >> 6),
		Version:   (b[0] >> 3) & 7,
		Mode:      b[0] & 7,
		Poll:      int8(b[2]),
		Precision: int8(b[3]),
		Transmit:  binary.BigEndian.Uint64(b[40:48]),
	}
	rest := b[HeaderLen:]
	end := HeaderLen
	if r.Version >= 4 {
		for len(rest) > maxV4MAC {
			if len(rest) < 16 {
				return Request{}, ErrExtension
			}
			n := int(binary.BigEndian.Uint16(rest[2:4]))
			if n < 16 || n%4 != 0 || n > len(rest) {
				return Request{}, fmt.Errorf("%w: length %d with %d bytes left", ErrExtension, n, len(rest))
			}
			rest = rest[n:]
			end += n
		}
		r.Extensions = b[HeaderLen:end]
	}
	switch {
	case len(rest) == 0:
	case len(rest) >= 4+16 && len(rest)%4 == 0:
		r.HasMAC = true
		r.KeyID = binary.BigEndian.Uint32(rest[:4])
		r.Digest = rest[4:]
	default:
		return Request{}, fmt.Errorf("%w (%d bytes)", ErrTrailer, len(rest))
	}
	r.Signed = b[:end]
	return r, nil
}

// ntpEpochOffset is the number of seconds from 1900 (NTP era 0) to 1970.
const ntpEpochOffset = 2208988800

// Timestamp converts t to the 64-bit NTP timestamp format (era-relative).
func Timestamp(t time.Time) uint64 {
	sec := uint64(t.Unix() + ntpEpochOffset)
	frac := (uint64(t.Nanosecond())<<32 + 500_000_000) / 1_000_000_000
	return sec<<32 + frac
}

// short converts d to the 32-bit NTP short format (16.16 seconds).
func short(d time.Duration) uint32 {
	v := math.Round(d.Seconds() * 65536)
	switch {
	case v < 0:
		return 0
	case v > math.MaxUint32:
		return math.MaxUint32
	}
	return uint32(v)
}

// MAC computes the digest of payload with k as NTP symmetric-key
// authentication does: hash(key ‖ payload) for the digest types (RFC 5905
// §7.3), AES-CMAC (RFC 4493) for AES128/AES256 (RFC 8573), truncated to
// 20 bytes in NTPv4 packets as chrony and beevik/ntp do.
func MAC(k ntpclient.Key, version uint8, payload []byte) ([]byte, error) {
	var sum []byte
	in := append(append([]byte{}, k.Secret...), payload...)
	switch k.Type {
	case "MD5":
		s := md5.Sum(in)
		sum = s[:]
	case "SHA1":
		s := sha1.Sum(in)
		sum = s[:]
	case "SHA256":
		s := sha256.Sum256(in)
		sum = s[:]
	case "SHA512":
		s := sha512.Sum512(in)
		sum = s[:]
	case "AES128", "AES256":
		var err error
		if sum, err = cmac(k.Secret, payload); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown key type %q", k.Type)
	}
	if version >= 4 && len(sum) > 20 {
		sum = sum[:20]
	}
	return sum, nil
}

// cmac is AES-CMAC (RFC 4493 §2.4).
func cmac(key, msg []byte) ([]byte, error) {
	c, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	// Subkeys (RFC 4493 §2.3): L = AES(0); K1 = L<<1 (^0x87 on carry); K2 = K1<<1 likewise.
	var l, k1, k2 [16]byte
	c.Encrypt(l[:], l[:])
	dbl(k1[:], l[:])
	dbl(k2[:], k1[:])

	n := (len(msg) + 15) / 16
	complete := n > 0 && len(msg)%16 == 0
	if n == 0 {
		n = 1
	}
	var last [16]byte
	tail := msg[(n-1)*16:]
	if complete {
		for i := range last {
			last[i] = tail[i] ^ k1[i]
		}
	} else {
		copy(last[:], tail)
		last[len(tail)] = 0x80
		for i := range last {
			last[i] ^= k2[i]
		}
	}
	var x [16]byte
	for b := 0; b < n-1; b++ {
		for i := range x {
			x[i] ^= msg[b*16+i]
		}
		c.Encrypt(x[:], x[:])
	}
	for i := range x {
		x[i] ^= last[i]
	}
	c.Encrypt(x[:], x[:])
	return x[:], nil
}

// dbl is multiplication by x in GF(2^128): a left shift by one bit, with
// the reduction constant 0x87 folded in when the top bit falls off.
func dbl(dst, src []byte) {
	carry := src[0] >> 7
	for i := 0; i < 15; i++ {
		dst[i] = src[i]<<1 | src[i+1]>>7
	}
	dst[15] = src[15] << 1
	if carry != 0 {
		dst[15] ^= 0x87
	}
}
