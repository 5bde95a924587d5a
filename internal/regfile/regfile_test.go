package regfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// FIFOs, devices and directories are refused at once (a FIFO without a
// writer would block the open for ever); files over the limit too.
func TestOnlyRegularFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	os.WriteFile(big, make([]byte, 100), 0o600)
	ok := filepath.Join(dir, "ok")
	os.WriteFile(ok, []byte("server a\n"), 0o600)
	for _, tc := range []struct {
		path, want string
	}{{fifo, "a FIFO"}, {"/dev/zero", "a character device"}, {dir, "a directory"}, {big, "larger than slewd reads"}} {
		done := make(chan error, 1)
		go func() { _, err := Read(tc.path, 10); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.path) {
				t.Errorf("Read(%s) = %v, want %q naming the path", tc.path, err, tc.want)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("Read(%s) blocks", tc.path)
		}
	}
	if b, err := Read(ok, 10); err != nil || string(b) != "server a\n" {
		t.Errorf("Read(regular) = %q, %v", b, err)
	}
	if _, err := Read(filepath.Join(dir, "none"), 0); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNotExist", err)
	}
}
