package ntpclient

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"slewd/internal/regfile"
)

// A key file or an imported configuration anyone may write is refused:
// whoever writes it chooses the servers or forges their answers.
func TestWorldWritableRefused(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	conf := filepath.Join(dir, "chrony.conf")
	os.WriteFile(keys, []byte("1 SHA256 HEX:00112233445566778899aabbccddeeff\n"), 0o600)
	os.WriteFile(conf, []byte("server 192.0.2.1 iburst\n"), 0o600)
	for _, mode := range []os.FileMode{0o644, 0o666} {
		os.Chmod(keys, mode)
		os.Chmod(conf, mode)
		_, kerr := ReadKeyFile(keys, 1)
		_, cerr := ReadConfigFile(conf)
		for what, err := range map[string]error{"key file": kerr, "configuration": cerr} {
			if ww := errors.Is(err, regfile.ErrWorldWritable); ww != (mode == 0o666) || (mode == 0o644 && err != nil) {
				t.Errorf("%s, mode %04o: %v", what, mode, err)
			}
		}
	}
}
