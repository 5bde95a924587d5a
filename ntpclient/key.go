package ntpclient

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"slewd/internal/regfile"
)

// Key is a symmetric key for NTP authentication (RFC 5905 §7.3 MAC,
// RFC 8573 AES-CMAC), written as in chrony's keyfile: "ID TYPE KEY".
type Key struct {
	ID     uint32
	Type   string // MD5, SHA1, SHA256, SHA512, AES128 or AES256
	Secret []byte
}

// KeyTypes lists the MAC algorithms, with the digest length each puts on
// the wire in NTPv4 (truncated to 20 bytes, RFC 7822 §7.5) and the key
// lengths accepted.
var KeyTypes = map[string]struct {
	MACLen         int // NTPv4 digest length in bytes
	MinKey, MaxKey int
}{
	"MD5":    {16, 4, 32},
	"SHA1":   {20, 4, 32},
	"SHA256": {20, 4, 32},
	"SHA512": {20, 4, 32},
	"AES128": {16, 16, 16},
	"AES256": {16, 32, 32},
}

// String names the key without its secret.
func (k Key) String() string { return fmt.Sprintf("key %d (%s)", k.ID, k.Type) }

// ParseKey parses one chrony keyfile line: "ID [TYPE] KEY", where KEY is
// "HEX:…", "ASCII:…" or plain ASCII, and TYPE defaults to MD5 (as chrony).
func ParseKey(line string) (Key, error) {
	f := strings.Fields(line)
	if len(f) < 2 || len(f) > 3 {
		return Key{}, fmt.Errorf("key %q: want \"ID TYPE KEY\", e.g. \"7 SHA256 HEX:0011…\" (chrony keyfile format)", redact(line))
	}
	id, ok := keyID(f[0])
	if !ok {
		return Key{}, errBadKeyID
	}
	typ, text := "MD5", f[len(f)-1]
	if len(f) == 3 {
		typ = strings.ToUpper(f[1])
	}
	spec, ok := KeyTypes[typ]
	if !ok {
		// Not quoted: in a line with its fields out of order, the field
		// read as the type is the secret.
		return Key{}, fmt.Errorf("key %d: unknown type (the field after the id; not shown, in case it is the secret): use one of MD5, SHA1, SHA256, SHA512, AES128, AES256", id)
	}
	var secret []byte
	switch {
	case strings.HasPrefix(text, "HEX:"):
		var err error
		if secret, err = hex.DecodeString(text[4:]); err != nil {
			// Not %w: hex's error quotes the offending byte of the secret.
			return Key{}, fmt.Errorf("key %d: the HEX: value is not hexadecimal (an odd number of digits, or a character other than 0-9, a-f)", id)
		}
	case strings.HasPrefix(text, "ASCII:"):
		secret = []byte(text[6:])
	default:
		secret = []byte(text)
	}
	if len(secret) < spec.MinKey || len(secret) > spec.MaxKey {
		if spec.MinKey == spec.MaxKey {
			return Key{}, fmt.Errorf("key %d: %s needs a key of exactly %d bytes, got %d", id, typ, spec.MinKey, len(secret))
		}
		return Key{}, fmt.Errorf("key %d: %s key must be %d to %d bytes, got %d (longer keys are truncated by beevik/ntp and would not match the server)",
			id, typ, spec.MinKey, spec.MaxKey, len(secret))
	}
	return Key{ID: id, Type: typ, Secret: secret}, nil
}

// KeyFormat is a key file's format.
type KeyFormat int

const (
	// KeyFormatChrony is chrony's keyfile: "ID [TYPE] KEY", KEY as
	// HEX:…, ASCII:… or plain ASCII (slewd's --keyfile).
	KeyFormatChrony KeyFormat = iota
	// KeyFormatNTP is ntpd's ntp.keys: "ID TYPE KEY", TYPE M (MD5) or a
	// digest name, KEY up to 20 ASCII characters or hex beyond (ntpdate's -k).
	KeyFormatNTP
)

func (f KeyFormat) String() string {
	if f == KeyFormatNTP {
		return "ntp.keys"
	}
	return "chrony keyfile"
}

// ParseNTPKey parses one ntp.keys line: "ID TYPE KEY". TYPE is M or MD5,
// SHA1, SHA256, SHA512, AES128CMAC; KEY is printable ASCII of up to 20
// characters, or longer hex (a 40-digit SHA1 key is 20 bytes).
func ParseNTPKey(line string) (Key, error) {
	f := strings.Fields(line)
	if len(f) != 3 {
		return Key{}, fmt.Errorf("key %q: want \"ID TYPE KEY\", e.g. \"1 M secret\" or \"2 SHA1 <40 hex digits>\" (ntp.keys format)", redact(line))
	}
	id, ok := keyID(f[0])
	if !ok {
		return Key{}, errBadKeyID
	}
	typ := strings.ToUpper(f[1])
	if t, ok := ntpKeyTypes[typ]; ok {
		typ = t
	}
	text := f[2]
	key := "ASCII:" + text
	if len(text) > 20 {
		if _, err := hex.DecodeString(text); err != nil {
			return Key{}, fmt.Errorf("key %d: a key longer than 20 characters is hexadecimal in ntp.keys, and this one is not", id)
		}
		key = "HEX:" + text
	}
	return ParseKey(fmt.Sprintf("%d %s %s", id, typ, key))
}

// ReadKeyFile returns key id from a chrony keyfile (comments start with
// '#', '!' or ';'; fields are separated by any white space).
func ReadKeyFile(path string, id uint32) (Key, error) {
	return ReadKeyFileFormat(path, id, KeyFormatChrony)
}

// ReadKeyFileFormat returns key id from a key file of the given format.
// The file must be a regular file (a FIFO is refused, not waited on).
func ReadKeyFileFormat(path string, id uint32, format KeyFormat) (Key, error) {
	b, err := regfile.ReadTrusted(path, regfile.DefaultLimit)
	if err != nil {
		return Key{}, fmt.Errorf("read key file: %w", err)
	}
	parse := ParseKey
	if format == KeyFormatNTP {
		parse = ParseNTPKey
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 && format == KeyFormatNTP {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" || strings.ContainsAny(line[:1], "#!;") {
			continue
		}
		first := strings.Fields(line)[0]
		if v, err := strconv.ParseUint(first, 10, 32); err != nil || uint32(v) != id {
			continue
		}
		k, err := parse(line)
		if err != nil {
			return Key{}, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		return k, nil
	}
	if err := sc.Err(); err != nil {
		return Key{}, fmt.Errorf("read key file %s: %w", path, err)
	}
	return Key{}, fmt.Errorf("%s has no key %d (read as %s format)", path, id, format)
}

// redact hides the secret of a malformed key line in error messages.
// Only a valid id and a field that names a type are shown: any other field
// may be the secret, whatever its position in a malformed line.
func redact(line string) string {
	f := strings.Fields(line)
	var shown []string
	for i, field := range f {
		if _, ok := keyID(field); i == 0 && ok || i == 1 && knownKeyType(field) {
			shown = append(shown, field)
			continue
		}
		shown = append(shown, "…")
		break
	}
	return strings.Join(shown, " ")
}

// errBadKeyID does not quote the field: in a line with its fields out of
// order, it may be the secret.
var errBadKeyID = errors.New("the key id (the first field) is not a number from 1 to 4294967295")

// keyID parses a key id: 1 to 4294967295.
func keyID(s string) (uint32, bool) {
	id, err := strconv.ParseUint(s, 10, 32)
	return uint32(id), err == nil && id != 0
}

// knownKeyType says whether s names a key type in either key file format.
func knownKeyType(s string) bool {
	s = strings.ToUpper(s)
	_, ntp := ntpKeyTypes[s]
	_, ok := KeyTypes[s]
	return ok || ntp
}

// ntpKeyTypes are ntp.keys' names for types KeyTypes names otherwise.
var ntpKeyTypes = map[string]string{"M": "MD5", "SHA": "SHA1", "AES128CMAC": "AES128", "AES-128-CMAC": "AES128", "CMAC": "AES128"}
