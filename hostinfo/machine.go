// Package hostinfo tells what machine slewd runs on (hypervisor, container)
// and who else may move its clock (hypervisor agents, other time daemons,
// cron jobs, network hooks), and picks the likely culprit of a foreign step
// or slew with the change that stops it.
//
// It is pure logic over a read-only view of the filesystem (fs.FS), so tests
// run it against fake roots. It never execs programs and never writes. Every
// read is bounded: files are capped in size, non-regular files are skipped,
// and the real-root view opens with O_NONBLOCK so a FIFO cannot block it.
package hostinfo

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
)

// Machine is a read-only view of a host.
type Machine struct {
	// FS is the root filesystem, paths without a leading slash
	// ("proc/1/environ"). /proc and /sys are read through it.
	FS fs.FS
	// CPUID runs the CPUID instruction, or is nil where it cannot
	// (not amd64, or a fake root). Leaf 1 ECX bit 31 says a hypervisor is
	// present; leaf 0x40000000 EBX,ECX,EDX spell its vendor.
	CPUID func(leaf, subleaf uint32) (eax, ebx, ecx, edx uint32)
}

// System is the real machine: the root filesystem (with /proc and /sys) and,
// on amd64, the CPU's CPUID.
func System() Machine {
	return Machine{FS: rootFS{dir: "/"}, CPUID: cpuidFunc}
}

// DirMachine is the machine rooted at dir (a copy of a root, for tests and
// for inspecting an image), read as System reads "/", without CPUID.
func DirMachine(dir string) Machine {
	return Machine{FS: rootFS{dir: dir}}
}

// rootFS reads the tree under dir. Unlike os.DirFS it opens with O_NONBLOCK and
// O_NOCTTY, so opening a FIFO or a tty found by a scan neither blocks nor
// takes a controlling terminal; readers then skip non-regular files.
type rootFS struct{ dir string }

func (r rootFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	f, err := os.OpenFile(path.Join(r.dir, name), os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// ReadLink makes rootFS an fs.ReadLinkFS, for /proc/PID/exe.
func (r rootFS) ReadLink(name string) (string, error) {
	if !fs.ValidPath(name) {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	return os.Readlink(path.Join(r.dir, name))
}

func (r rootFS) Lstat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "lstat", Path: name, Err: fs.ErrInvalid}
	}
	return os.Lstat(path.Join(r.dir, name))
}

// Read limits. A config file or script bigger than this is not one a person
// wrote by hand; /proc files are far smaller.
const (
	maxSmallFile = 64 << 10 // /proc, /sys, cron files, units, scripts
	maxAuditTail = 1 << 20  // the end of audit.log
	maxDirItems  = 4096     // entries read from one config directory
	maxProcs     = 32768    // PIDs looked at in /proc
)

var errNotRegular = errors.New("not a regular file")

// openRegular opens name if it is a regular file.
func openRegular(fsys fs.FS, name string) (fs.File, fs.FileInfo, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, nil, &fs.PathError{Op: "read", Path: name, Err: errNotRegular}
	}
	return f, st, nil
}

// readFile reads at most limit bytes of a regular file.
func readFile(fsys fs.FS, name string, limit int64) ([]byte, error) {
	f, _, err := openRegular(fsys, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}

// readTail reads the last limit bytes of a regular file, from the start of
// a line, when the file can seek; else its first limit bytes.
func readTail(fsys fs.FS, name string, limit int64) ([]byte, error) {
	f, st, err := openRegular(fsys, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	skipped := false
	if s, ok := f.(io.Seeker); ok && st.Size() > limit {
		if _, err := s.Seek(st.Size()-limit, io.SeekStart); err == nil {
			skipped = true
		}
	}
	b, err := io.ReadAll(io.LimitReader(f, limit))
	if skipped {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return b, err
}

// readLine is the first line of a small file, trimmed; "" when unreadable.
func readLine(fsys fs.FS, name string) (string, bool) {
	b, err := readFile(fsys, name, 4096)
	if err != nil {
		return "", false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(line), true
}

// exists says whether name exists (any type), without opening it.
func exists(fsys fs.FS, name string) bool {
	if l, ok := fsys.(fs.ReadLinkFS); ok {
		_, err := l.Lstat(name)
		return err == nil
	}
	_, err := fs.Stat(fsys, name)
	return err == nil
}

// listDir names up to maxDirItems entries of dir, in directory order, with
// the error met (fs.ErrPermission matters to the caller: it says a place
// could not be looked at).
func listDir(fsys fs.FS, dir string, limit int) ([]fs.DirEntry, error) {
	f, err := fsys.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	d, ok := f.(fs.ReadDirFile)
	if !ok {
		return nil, &fs.PathError{Op: "readdir", Path: dir, Err: errors.New("not a directory")}
	}
	var out []fs.DirEntry
	for len(out) < limit {
		es, err := d.ReadDir(min(256, limit-len(out)))
		out = append(out, es...)
		if err != nil {
			if err == io.EOF {
				break
			}
			return out, err
		}
		if len(es) == 0 {
			break
		}
	}
	return out, nil
}

// lines splits text into lines, bounded by the caller's read limit.
func lines(b []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), maxSmallFile)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

func join(dir, name string) string { return path.Join(dir, name) }
