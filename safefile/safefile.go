// Package safefile opens the files that tell slewd what to trust (its
// configuration, an imported ntp.conf or chrony.conf, symmetric keys)
// only if they are what they should be: a regular file (a FIFO would
// block the open, a device never ends), of a sane size, and not
// world-writable, since anyone who can write the file can choose the
// servers, or forge their answers with the key, and so set the clock.
package safefile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// MaxSize is what ReadConfig reads at most when given no limit: slewd's
// configuration and keys are a few KB.
const MaxSize = 1 << 20

var (
	ErrNotRegular    = errors.New("not a regular file")
	ErrWorldWritable = errors.New("world-writable")
	ErrTooLarge      = errors.New("too large")
)

// CheckMode refuses a file anyone may write. fi is the file's own
// information (of the open file, so a symbolic link is judged by its
// target).
func CheckMode(path string, fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf("%w (%s)", ErrNotRegular, kind(fi.Mode()))}
	}
	if perm := fi.Mode().Perm(); perm&0o002 != 0 {
		return &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf(
			"%w (mode %04o): anyone could change what slewd trusts and so set the clock; refusing it (fix: chmod o-w %s)",
			ErrWorldWritable, perm, path)}
	}
	return nil
}

// Open opens path for reading if CheckMode accepts it. The open never
// blocks on a FIFO.
func Open(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil {
		err = CheckMode(path, fi)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// ReadConfig reads a file Open accepts, of at most maxSize bytes (0:
// MaxSize).
func ReadConfig(path string, maxSize int64) ([]byte, error) {
	if maxSize <= 0 {
		maxSize = MaxSize
	}
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSize+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > maxSize {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("%w: more than %d bytes", ErrTooLarge, maxSize)}
	}
	return b, nil
}

func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return m.Type().String()
}
