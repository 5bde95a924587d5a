package regfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A configuration or key file anyone may write is refused with the fix,
// through a link too; group-writable is the administrator's choice.
func TestReadTrusted(t *testing.T) {
	dir := t.TempDir()
	file := func(name string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("server a\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode) // past the umask
		return p
	}
	link := filepath.Join(dir, "link")
	os.Symlink(file("target", 0o666), link)
	for _, tc := range []struct {
		name, path string
		refused    bool
	}{
		{"0644", file("ok", 0o644), false},
		{"0664", file("group", 0o664), false},
		{"0666", file("world", 0o666), true},
		{"0602", file("odd", 0o602), true},
		{"a link to 0666", link, true},
	} {
		b, err := ReadTrusted(tc.path, 0)
		switch {
		case tc.refused && (!errors.Is(err, ErrWorldWritable) || !strings.Contains(err.Error(), "chmod o-w")):
			t.Errorf("%s: %v", tc.name, err)
		case !tc.refused && (err != nil || string(b) != "server a\n"):
			t.Errorf("%s: %q, %v", tc.name, b, err)
		}
	}
	if _, err := ReadTrusted(dir, 0); err == nil || errors.Is(err, ErrWorldWritable) {
		t.Errorf("a directory: %v", err)
	}
}
