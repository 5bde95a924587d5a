package adjtime

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// State files and their directory get their modes whatever the umask:
// 0644 and 0755.
func TestDirStoreModes(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "a", "state")
	if err := (DirStore{Dir: dir}).WriteFile("drift", []byte("0 0\n")); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{dir: 0o755, filepath.Join(dir, "drift"): 0o644} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v %v, want %04o", p, fi.Mode(), err, want)
		}
	}
}
