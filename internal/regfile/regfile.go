// Package regfile reads configuration, key and state files, refusing
// what is not a regular file: a FIFO would block the open (and the
// signals that should end the command) until a writer comes, a device
// or /dev/zero never ends, and a directory is a mistake.
package regfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// DefaultLimit bounds what slewd reads from one file: its configuration,
// keys and state are a few KB.
const DefaultLimit = 1 << 20

// ErrTooLarge is returned for a file over the limit.
var ErrTooLarge = errors.New("larger than slewd reads")

// Open opens path for reading if it is a regular file. It never blocks on
// a FIFO: the open is non-blocking and the file is checked before use.
func Open(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf("not a regular file (%s)", kind(fi.Mode()))}
	}
	return f, nil
}

// Read reads a regular file of at most limit bytes (0: DefaultLimit).
func Read(path string, limit int64) ([]byte, error) {
	if limit <= 0 {
		limit = DefaultLimit
	}
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAll(f, path, limit)
}

// readAll reads the open file f, of at most limit bytes.
func readAll(f *os.File, path string, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("%w (%d bytes at most)", ErrTooLarge, limit)}
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

// ErrWorldWritable is returned by ReadTrusted and CheckTrusted for a file
// anyone may write.
var ErrWorldWritable = errors.New("world-writable")

// CheckTrusted refuses a file that tells slewd what to trust (its
// configuration, an imported ntp.conf or chrony.conf, symmetric keys)
// when anyone may write it: whoever writes it picks the servers, or
// forges their answers with the key, and so sets the clock. fi is the
// open file's (a symbolic link is judged by its target).
func CheckTrusted(path string, fi fs.FileInfo) error {
	if perm := fi.Mode().Perm(); perm&0o002 != 0 {
		return &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf(
			"%w (mode %04o): anyone could change what slewd trusts and so set the clock; refusing it (fix: chmod o-w %s)",
			ErrWorldWritable, perm, path)}
	}
	return nil
}

// ReadTrusted is Read for a configuration or key file: also refused when
// CheckTrusted refuses it.
func ReadTrusted(path string, limit int64) ([]byte, error) {
	if limit <= 0 {
		limit = DefaultLimit
	}
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat() // the file read, not the name: no race with a chmod
	if err != nil {
		return nil, err
	}
	if err := CheckTrusted(path, fi); err != nil {
		return nil, err
	}
	return readAll(f, path, limit)
}
