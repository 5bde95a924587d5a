package adjtime

import (
	"os"
	"path/filepath"
	"strings"
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

// The drift file is believed only within its plausible range: |frequency|
// ≤ 500 ppm and a finite, non-negative uncertainty. Outside, the error
// names the file, says what is wrong and what to do.
func TestReadDriftRange(t *testing.T) {
	for _, tc := range []struct {
		text string
		ok   bool
		ppm  float64
	}{
		{"12.5 0.01\n", true, 12.5},
		{"-500 0.1", true, -500},
		{"7", true, 7},
		{"50000 0.01", false, 0}, // would set the tick +5 %
		{"500.1 0", false, 0},
		{"0 NaN", false, 0},
		{"NaN 0", false, 0},
		{"Inf 0", false, 0},
		{"1.5 -3", false, 0},
		{"1 2 3", false, 0},
		{"", false, 0},
		{"abc", false, 0},
	} {
		st := &MemStore{}
		st.WriteFile(DriftFile, []byte(tc.text))
		d, ok, err := ReadDrift(st)
		if ok != tc.ok || (ok && d.FreqPPM != tc.ppm) {
			t.Errorf("drift %q: %+v, %v, %v", tc.text, d, ok, err)
		}
		if !tc.ok && (err == nil || !strings.Contains(err.Error(), "drift file") || !strings.Contains(err.Error(), "delete it")) {
			t.Errorf("drift %q: error %v does not name the file and the fix", tc.text, err)
		}
	}
}

// A state file that is a FIFO is refused at once, not waited on.
func TestDirStoreRefusesFIFO(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, DriftFile), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadDrift(DirStore{Dir: dir}); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("drift FIFO: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "big"), make([]byte, StateFileLimit+1), 0o600)
	if _, err := (DirStore{Dir: dir}).ReadFile("big"); err == nil {
		t.Error("a state file over the limit was read")
	}
}
