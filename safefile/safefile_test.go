package safefile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestReadConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, mode os.FileMode, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		return p
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(write("target", 0o666, "server a\n"), link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path string
		max        int64
		want       error // nil: read
		msg        string
	}{
		{"0644", write("ok", 0o644, "server a\n"), 0, nil, ""},
		{"0640 group-writable", write("group", 0o660, "server a\n"), 0, nil, ""},
		{"world-writable", write("ww", 0o666, "server a\n"), 0, ErrWorldWritable, "chmod o-w"},
		{"world-writable through a link", link, 0, ErrWorldWritable, "mode 0666"},
		{"a FIFO", fifo, 0, ErrNotRegular, "a FIFO"},
		{"a directory", dir, 0, ErrNotRegular, "a directory"},
		{"a device", "/dev/zero", 0, ErrNotRegular, "a character device"},
		{"over the limit", write("big", 0o644, strings.Repeat("x", 101)), 100, ErrTooLarge, "more than 100 bytes"},
		{"at the limit", write("full", 0o644, strings.Repeat("x", 100)), 100, nil, ""},
	} {
		b, err := ReadConfig(tc.path, tc.max)
		switch {
		case tc.want == nil && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want == nil && len(b) == 0:
			t.Errorf("%s: read nothing", tc.name)
		case tc.want != nil && !errors.Is(err, tc.want):
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.want)
		case tc.want != nil && !strings.Contains(err.Error(), tc.msg):
			t.Errorf("%s: %q does not say %q", tc.name, err, tc.msg)
		}
	}
}
