package rig

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
)

// File is one entry of the guest's initramfs.
type File struct {
	// Path is the absolute path inside the guest, e.g. "/usr/sbin/slewd".
	Path string
	// Src is a host file to copy (symlinks followed); or else Data is the content.
	Src  string
	Data []byte
	// Mode holds the permission bits, plus fs.ModeDir for a directory or
	// fs.ModeDevice|fs.ModeCharDevice for a character device (Major, Minor).
	Mode         fs.FileMode
	Major, Minor uint32
}

// HostFile copies the host file src to dst in the guest, keeping its permissions.
func HostFile(src, dst string) File { return File{Path: dst, Src: src} }

// DataFile puts data at dst with permissions perm.
func DataFile(dst string, data []byte, perm fs.FileMode) File {
	return File{Path: dst, Data: data, Mode: perm}
}

// Dir makes a directory with permissions perm (parents are made 0755).
func Dir(dst string, perm fs.FileMode) File { return File{Path: dst, Mode: fs.ModeDir | perm} }

// Linux file type bits in a cpio mode.
const (
	sIFDIR = 0o040000
	sIFCHR = 0o020000
	sIFREG = 0o100000
)

// WriteInitramfs writes files as an uncompressed newc cpio archive, the
// format the kernel unpacks into its initial root filesystem. Parent
// directories are added (0755) and come before their contents; a later
// File for the same path replaces an earlier one.
func WriteInitramfs(w io.Writer, files []File) error {
	byPath := map[string]File{}
	for _, f := range files {
		p := path.Clean("/" + f.Path)
		if p == "/" {
			return fmt.Errorf("initramfs: bad path %q", f.Path)
		}
		f.Path = p
		byPath[p] = f
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			if _, ok := byPath[d]; !ok {
				byPath[d] = Dir(d, 0o755)
			}
		}
	}
	paths := make([]string, 0, len(byPath))
	for p := range byPath {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	bw := bufio.NewWriterSize(w, 1<<20)
	cw := &cpioWriter{w: bw}
	for i, p := range paths {
		if err := cw.add(uint32(i+1), byPath[p]); err != nil {
			return err
		}
	}
	if err := cw.header(0, "TRAILER!!!", 0, 1, 0, 0, 0); err != nil {
		return err
	}
	return bw.Flush()
}

type cpioWriter struct {
	w   *bufio.Writer
	off int64
}

func (c *cpioWriter) add(ino uint32, f File) error {
	name := strings.TrimPrefix(f.Path, "/")
	switch {
	case f.Mode&fs.ModeDir != 0:
		return c.header(ino, name, sIFDIR|uint32(f.Mode.Perm()), 2, 0, 0, 0)
	case f.Mode&fs.ModeDevice != 0:
		return c.header(ino, name, sIFCHR|uint32(f.Mode.Perm()), 1, 0, f.Major, f.Minor)
	case f.Src != "":
		src, err := os.Open(f.Src)
		if err != nil {
			return fmt.Errorf("initramfs: %w", err)
		}
		defer src.Close()
		st, err := src.Stat()
		if err != nil {
			return fmt.Errorf("initramfs: %w", err)
		}
		perm := st.Mode().Perm()
		if f.Mode.Perm() != 0 {
			perm = f.Mode.Perm()
		}
		if err := c.header(ino, name, sIFREG|uint32(perm), 1, st.Size(), 0, 0); err != nil {
			return err
		}
		n, err := io.Copy(c.w, src)
		if err != nil {
			return fmt.Errorf("initramfs: copying %s: %w", f.Src, err)
		}
		if n != st.Size() {
			return fmt.Errorf("initramfs: %s changed size while copying", f.Src)
		}
		c.off += n
		return c.pad()
	default:
		if err := c.header(ino, name, sIFREG|uint32(f.Mode.Perm()), 1, int64(len(f.Data)), 0, 0); err != nil {
			return err
		}
		n, err := c.w.Write(f.Data)
		c.off += int64(n)
		if err != nil {
			return err
		}
		return c.pad()
	}
}

// header writes a newc header and the name, padded to 4 bytes.
func (c *cpioWriter) header(ino uint32, name string, mode, nlink uint32, size int64, rmajor, rminor uint32) error {
	if size > 0xffffffff {
		return fmt.Errorf("initramfs: %s is too large for newc", name)
	}
	h := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, mode, 0, 0, nlink, 0, size, 0, 0, rmajor, rminor, len(name)+1, 0)
	n, err := c.w.WriteString(h + name + "\x00")
	c.off += int64(n)
	if err != nil {
		return err
	}
	return c.pad()
}

func (c *cpioWriter) pad() error {
	for c.off%4 != 0 {
		if err := c.w.WriteByte(0); err != nil {
			return err
		}
		c.off++
	}
	return nil
}
