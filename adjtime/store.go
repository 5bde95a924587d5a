package adjtime

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"slewd/internal/regfile"
)

// Store keeps slewd's small state files (the drift file, the slew
// journal). Writes are atomic: a crash leaves the old file or the new one.
type Store interface {
	ReadFile(name string) ([]byte, error)
	WriteFile(name string, data []byte) error
}

// DirStore keeps state files in a directory (default /var/lib/slewd).
type DirStore struct{ Dir string }

// ReadFile reads a state file: a regular file of at most 64 KiB (a FIFO
// or device put in its place is refused, never waited on).
func (d DirStore) ReadFile(name string) ([]byte, error) {
	return regfile.Read(filepath.Join(d.Dir, name), StateFileLimit)
}

// StateFileLimit bounds a state file: slewd's are a few hundred bytes.
const StateFileLimit = 64 << 10

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

// MaxDriftPPM is the largest drift file frequency believed: the kernel's
// frequency range, and far beyond any working oscillator (chrony's
// maxdrift is 500 ppm too).
const MaxDriftPPM = 500

// ReadDrift reads the drift file: "FREQ_PPM SIGMA_PPM". A missing file is
// not an error (ok is false); a malformed one, or one outside the
// plausible range (|FREQ_PPM| ≤ MaxDriftPPM, SIGMA_PPM ≥ 0, both finite),
// is, naming the file, what is wrong and what to do.
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
	if err != nil || len(f) > 2 {
		return Drift{}, false, fmt.Errorf("drift file %s: %q is not \"FREQ_PPM SIGMA_PPM\": delete it and slewd will measure the frequency again",
			DriftFile, truncate(string(b), 80))
	}
	switch {
	case math.IsNaN(d.FreqPPM) || math.IsInf(d.FreqPPM, 0) || math.Abs(d.FreqPPM) > MaxDriftPPM:
		err = fmt.Errorf("frequency %g ppm is outside ±%d ppm", d.FreqPPM, MaxDriftPPM)
	case math.IsNaN(d.SigmaPPM) || math.IsInf(d.SigmaPPM, 0) || d.SigmaPPM < 0 || d.SigmaPPM > MaxDriftPPM:
		// An uncertainty wider than any frequency the kernel takes says
		// nothing; NaN or infinite would weigh the frequency as certain or
		// worthless in every later estimate (FuzzDrift).
		err = fmt.Errorf("uncertainty %g ppm is not a number from 0 to %d", d.SigmaPPM, MaxDriftPPM)
	}
	if err != nil {
		return Drift{}, false, fmt.Errorf("drift file %s: %v, which no oscillator has: delete it and slewd will measure the frequency again", DriftFile, err)
	}
	return d, true, nil
}

func truncate(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
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
