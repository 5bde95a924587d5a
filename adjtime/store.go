package adjtime

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Store keeps slewd's small state files (the drift file, the slew
// journal). Writes are atomic: a crash leaves the old file or the new one.
type Store interface {
	ReadFile(name string) ([]byte, error)
	WriteFile(name string, data []byte) error
}

// DirStore keeps state files in a directory (default /var/lib/slewd).
type DirStore struct{ Dir string }

// ReadFile reads a state file.
func (d DirStore) ReadFile(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join(d.Dir, name))
}

// WriteFile writes a state file atomically and durably: a temporary file,
// fsync, rename over the old one, fsync of the directory.
func (d DirStore) WriteFile(name string, data []byte) error {
	if err := makeDir(d.Dir); err != nil {
		return fmt.Errorf("creating the state directory: %w", err)
	}
	path := filepath.Join(d.Dir, name)
	f, err := os.CreateTemp(d.Dir, "."+name+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	// Readable by all: nothing secret, and `slewd wait` may run unprivileged.
	err = f.Chmod(0o644)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if dir, err := os.Open(d.Dir); err == nil {
		dir.Sync()
		dir.Close()
	}
	return nil
}

// MemStore is a Store in memory, for simulations: it outlives the
// simulated processes that use it, like a disk.
type MemStore struct {
	mu    sync.Mutex
	files map[string][]byte
}

// ReadFile returns a copy of the named file.
func (m *MemStore) ReadFile(name string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.files[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return append([]byte(nil), b...), nil
}

// WriteFile replaces the named file.
func (m *MemStore) WriteFile(name string, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.files == nil {
		m.files = map[string][]byte{}
	}
	m.files[name] = append([]byte(nil), data...)
	return nil
}

// DriftFile is the name of the drift file in a Store.
const DriftFile = "drift"

// Drift is the oscillator's frequency, as remembered across restarts.
type Drift struct {
	FreqPPM  float64 // frequency of true time against RAW
	SigmaPPM float64 // its standard deviation
}

// ReadDrift reads the drift file: "FREQ_PPM SIGMA_PPM". A missing file is
// not an error (ok is false); a malformed one is, naming the file.
func ReadDrift(st Store) (d Drift, ok bool, err error) {
	b, err := st.ReadFile(DriftFile)
	if errors.Is(err, fs.ErrNotExist) {
		return Drift{}, false, nil
	}
	if err != nil {
		return Drift{}, false, fmt.Errorf("reading the drift file: %w", err)
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return Drift{}, false, fmt.Errorf("drift file is empty: delete it and slewd will measure the frequency again")
	}
	d.FreqPPM, err = strconv.ParseFloat(f[0], 64)
	if err == nil && len(f) > 1 {
		d.SigmaPPM, err = strconv.ParseFloat(f[1], 64)
	}
	if err != nil || d.FreqPPM != d.FreqPPM || d.FreqPPM > 100500 || d.FreqPPM < -100500 {
		return Drift{}, false, fmt.Errorf("drift file %q is not \"FREQ_PPM SIGMA_PPM\": delete it and slewd will measure the frequency again", strings.TrimSpace(string(b)))
	}
	return d, true, nil
}

// WriteDrift writes the drift file atomically.
func WriteDrift(st Store, d Drift) error {
	return st.WriteFile(DriftFile, []byte(fmt.Sprintf("%.6f %.6f\n", d.FreqPPM, d.SigmaPPM)))
}

// DirMode is the mode of a state or run directory slewd creates, whatever
// the umask: readable by all, as its files are (0644), so that `slewd
// wait` and `slewd status` may run unprivileged; writable by slewd alone.
// A directory that exists is left as the administrator made it.
const DirMode = 0o755

func makeDir(dir string) error {
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return err
	}
	return os.Chmod(dir, DirMode)
}
