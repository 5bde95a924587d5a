package ntpclient

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// ntp.keys (ntpdate -k, ntp.conf's keys): "ID TYPE KEY", M for MD5, ASCII
// up to 20 characters, hex beyond; chrony's keyfile: tab-separated
// fields as well as spaces.
func TestKeyFileFormats(t *testing.T) {
	dir := t.TempDir()
	sha1hex := "0123456789abcdef0123456789abcdef01234567"
	ntpKeys := filepath.Join(dir, "ntp.keys")
	os.WriteFile(ntpKeys, []byte("# ntp.keys\n1 M secret\n2\tSHA1\t"+sha1hex+"  # the SHA1 key\n3 MD5 short\n4 SHA1 "+strings.Repeat("z", 40)+"\n"), 0o600)
	chrony := filepath.Join(dir, "chrony.keys")
	os.WriteFile(chrony, []byte("1\tSHA256\tHEX:"+sha1hex+"\n2  MD5   ASCII:hello\n"), 0o600)
	for _, tc := range []struct {
		path   string
		format KeyFormat
		id     uint32
		typ    string
		secret []byte
		err    string
	}{
		{ntpKeys, KeyFormatNTP, 1, "MD5", []byte("secret"), ""},
		{ntpKeys, KeyFormatNTP, 2, "SHA1", mustHex(sha1hex), ""},
		{ntpKeys, KeyFormatNTP, 3, "MD5", []byte("short"), ""},
		{ntpKeys, KeyFormatNTP, 4, "", nil, "hexadecimal"},
		{ntpKeys, KeyFormatNTP, 9, "", nil, "has no key 9"},
		{chrony, KeyFormatChrony, 1, "SHA256", mustHex(sha1hex), ""},
		{chrony, KeyFormatChrony, 2, "MD5", []byte("hello"), ""},
	} {
		k, err := ReadKeyFileFormat(tc.path, tc.id, tc.format)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s key %d: %v, want %q", tc.format, tc.id, err, tc.err)
			}
			continue
		}
		if err != nil || k.Type != tc.typ || !bytes.Equal(k.Secret, tc.secret) || k.ID != tc.id {
			t.Errorf("%s key %d: %+v, %v; want %s %q", tc.format, tc.id, k, err, tc.typ, tc.secret)
		}
	}
	fifo := filepath.Join(dir, "fifo")
	syscall.Mkfifo(fifo, 0o600)
	if _, err := ReadKeyFile(fifo, 1); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("key FIFO: %v", err)
	}
	if _, err := ReadConfigFile(fifo); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("config FIFO: %v", err)
	}
	conf := filepath.Join(dir, "ntp.conf")
	os.WriteFile(conf, []byte("keys /etc/ntp.keys\nserver a key 1\n"), 0o600)
	if imp, err := ReadConfigFile(conf); err != nil || imp.KeyFormat != KeyFormatNTP || imp.KeyID != 1 {
		t.Errorf("ntp.conf keys: %+v, %v", imp, err)
	}
	os.WriteFile(conf, []byte("keyfile /etc/chrony/chrony.keys\nserver a key 1\n"), 0o600)
	if imp, err := ReadConfigFile(conf); err != nil || imp.KeyFormat != KeyFormatChrony {
		t.Errorf("chrony.conf keyfile: %+v, %v", imp, err)
	}
}

func mustHex(s string) []byte {
	b := make([]byte, len(s)/2)
	for i := range b {
		var v byte
		for _, c := range s[2*i : 2*i+2] {
			v <<= 4
			switch {
			case c >= '0' && c <= '9':
				v |= byte(c - '0')
			default:
				v |= byte(c-'a') + 10
			}
		}
		b[i] = v
	}
	return b
}
