package rig

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"slewd/test/kernel/guest"
)

// cpioEntry is what readNewc found.
type cpioEntry struct {
	name       string
	mode       uint32
	rmaj, rmin uint32
	data       []byte
}

// readNewc parses a newc archive (the reader the kernel has, in miniature).
func readNewc(t *testing.T, b []byte) []cpioEntry {
	t.Helper()
	var out []cpioEntry
	off := 0
	align := func() { off = (off + 3) &^ 3 }
	for {
		if off+110 > len(b) || string(b[off:off+6]) != "070701" {
			t.Fatalf("bad header at %d", off)
		}
		field := func(i int) uint32 {
			v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
			if err != nil {
				t.Fatal(err)
			}
			return uint32(v)
		}
		mode, size, rmaj, rmin, namesize := field(1), field(6), field(9), field(10), field(11)
		name := string(b[off+110 : off+110+int(namesize)-1])
		off += 110 + int(namesize)
		align()
		data := b[off : off+int(size)]
		off += int(size)
		align()
		if name == "TRAILER!!!" {
			return out
		}
		out = append(out, cpioEntry{name, mode, rmaj, rmin, data})
	}
}

func TestWriteInitramfs(t *testing.T) {
	src := filepath.Join(t.TempDir(), "bin")
	if err := os.WriteFile(src, []byte("odd length!"), 0o751); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	err := WriteInitramfs(&buf, []File{
		{Path: "/init", Src: src},
		DataFile("/etc/passwd", []byte("root:x:0:0::/root:/bin/sh\n"), 0o644),
		Dir("/run/chrony", 0o750),
		{Path: "/dev/console", Mode: fs.ModeDevice | fs.ModeCharDevice | 0o600, Major: 5, Minor: 1},
		DataFile("/usr/lib/x/a.so", []byte("abc"), 0o644),
		DataFile("/etc/passwd", []byte("replaced\n"), 0o600),
	})
	if err != nil {
		t.Fatal(err)
	}
	if buf.Len()%4 != 0 {
		t.Errorf("archive length %d not a multiple of 4", buf.Len())
	}
	got := map[string]cpioEntry{}
	var order []string
	for _, e := range readNewc(t, buf.Bytes()) {
		got[e.name] = e
		order = append(order, e.name)
	}
	want := []string{"dev", "dev/console", "etc", "etc/passwd", "init", "run", "run/chrony", "usr", "usr/lib", "usr/lib/x", "usr/lib/x/a.so"}
	if !slices.Equal(order, want) {
		t.Errorf("entries %q\nwant    %q", order, want)
	}
	check := func(name string, mode uint32, data string) {
		t.Helper()
		e := got[name]
		if e.mode != mode || string(e.data) != data {
			t.Errorf("%s: mode %o data %q, want %o %q", name, e.mode, e.data, mode, data)
		}
	}
	check("init", 0o100751, "odd length!")
	check("etc/passwd", 0o100600, "replaced\n")
	check("run/chrony", 0o040750, "")
	check("usr/lib", 0o040755, "")
	if c := got["dev/console"]; c.mode != 0o020600 || c.rmaj != 5 || c.rmin != 1 {
		t.Errorf("console %+v", c)
	}
	// The system's cpio agrees, when it is installed.
	if cpio, err := exec.LookPath("cpio"); err == nil {
		cmd := exec.Command(cpio, "-it", "--quiet")
		cmd.Stdin = bytes.NewReader(buf.Bytes())
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("cpio -t: %v", err)
		}
		if l := strings.Fields(string(out)); !slices.Equal(l, want) {
			t.Errorf("cpio -t lists %q", l)
		}
	}
	if err := WriteInitramfs(&buf, []File{DataFile("/", nil, 0)}); err == nil {
		t.Error("accepted / as a file")
	}
}

func TestDecodeExit(t *testing.T) {
	for _, tc := range []struct {
		status  int
		console string
		code    int
		problem string
	}{
		{33, "", 0, ""},
		{35, "", 1, ""},
		{37, "refusing", 2, ""},
		{0, "ok\n" + guest.ExitPrefix + "1 3.5\n", 1, ""},
		{0, "[ 1.2] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100\n", -1, "the guest kernel panicked: Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100"},
		{0, "nothing", -1, "the guest ended without reporting a result"},
		{1, "qemu-system-x86_64: -kernel: could not open", -1, "qemu exited with status 1"},
		{2, "", -1, "qemu exited with status 2"},
	} {
		code, problem := decodeExit(tc.status, tc.console)
		if code != tc.code || problem != tc.problem {
			t.Errorf("decodeExit(%d, %q) = %d, %q; want %d, %q", tc.status, tc.console, code, problem, tc.code, tc.problem)
		}
	}
}

func TestCommandLine(t *testing.T) {
	s, err := commandLine(Config{Run: "TestX/y", Args: []string{"-scenarios=tick"}, KernelArgs: []string{"loglevel=7"}, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	want := "console=ttyS0 panic=-1 quiet clocksource=hpet loglevel=7 " + guest.Marker + " -- -test.v -test.timeout=50s -test.run=TestX/y -scenarios=tick"
	if s != want {
		t.Errorf("command line\n%s\nwant\n%s", s, want)
	}
	if _, err := commandLine(Config{Run: "a b", Timeout: time.Minute}); err == nil {
		t.Error("accepted a space in -test.run")
	}
	if _, err := commandLine(Config{Args: []string{strings.Repeat("x", 2100)}, Timeout: time.Minute}); err == nil {
		t.Error("accepted an overlong command line")
	}
	args := qemuArgs(Config{ICount: true, MemoryMiB: 256}, "k", "i", "c")
	joined := strings.Join(args, " ")
	for _, w := range []string{"-accel tcg", "-icount shift=2,sleep=off", "-device isa-debug-exit,iobase=0xf4,iosize=0x04", "-nic none", "-no-reboot", "-append c"} {
		if !strings.Contains(joined, w) {
			t.Errorf("qemu args lack %q: %s", w, joined)
		}
	}
}

func TestParseConsole(t *testing.T) {
	r := &Result{Console: "SeaBIOS\n" + guest.BootPrefix + `{"kernel":"6.1.0-56-cloud-amd64","clocksource":"hpet","uptime_s":1.5}` + "\n" +
		"=== RUN TestX\n" + guest.ResultPrefix + `{"test":"TestX","kind":"k","data":{"v":1}}` + "\n" +
		"[   3.1] random kernel line\n" + guest.ResultPrefix + `{"test":"TestX","kind":"k","data":{"v":2}}` + "\n" +
		guest.ResultPrefix + `{"test":"TestX","kind":"other","data":7}` + "\n" + guest.ExitPrefix + "0 12.250\n"}
	parse(r)
	if r.Boot.Kernel != "6.1.0-56-cloud-amd64" || r.Boot.Clocksource != "hpet" || r.TestsS != 12.25 || len(r.Records) != 3 {
		t.Fatalf("parsed %+v", r)
	}
	vs, err := Decode[struct{ V int }](r, "k")
	if err != nil || len(vs) != 2 || vs[0].V != 1 || vs[1].V != 2 {
		t.Errorf("Decode: %v %v", vs, err)
	}
	if _, err := Decode[struct{ V int }](r, "other"); err == nil {
		t.Error("decoded 7 into a struct")
	}
}

func TestVersionCompare(t *testing.T) {
	ks := []string{"vmlinuz-6.1.0-56-cloud-amd64", "vmlinuz-6.1.0-9-cloud-amd64", "vmlinuz-6.10.0-1-cloud-amd64", "vmlinuz-6.1.0-100-cloud-amd64"}
	slices.SortFunc(ks, versionCompare)
	want := []string{"vmlinuz-6.1.0-9-cloud-amd64", "vmlinuz-6.1.0-56-cloud-amd64", "vmlinuz-6.1.0-100-cloud-amd64", "vmlinuz-6.10.0-1-cloud-amd64"}
	if !slices.Equal(ks, want) {
		t.Errorf("sorted %v", ks)
	}
}

func TestSkip(t *testing.T) {
	t.Setenv("SLEWD_SKIP_KERNEL", "1")
	skipped := false
	t.Run("inner", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		Skip(t)
	})
	if !skipped {
		t.Error("SLEWD_SKIP_KERNEL=1 did not skip")
	}
}
