package rig

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// KernelPackage is Debian's metapackage whose dependency is the kernel
// image the rig boots (linux-image-6.1.0-*-cloud-amd64 on Debian 12): a
// small kernel for VMs with the 8250 serial console, devtmpfs and initramfs
// support built in, and HZ=250.
const KernelPackage = "linux-image-cloud-amd64"

// ModuleRoot is the directory of slewd's go.mod, found from the working
// directory (go test runs in the package's directory).
func ModuleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.HasPrefix(string(b), "module slewd\n") {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("kernel rig: cannot find slewd's go.mod above the working directory")
		}
		dir = parent
	}
}

// CacheDir holds fetched packages (kernel, chrony) and console logs:
// $SLEWD_RIG_CACHE, or test/kernel/.cache in the module.
func CacheDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("SLEWD_RIG_CACHE"); d != "" {
		return d
	}
	return filepath.Join(ModuleRoot(t), "test", "kernel", ".cache")
}

// Kernel returns the kernel image to boot: $SLEWD_RIG_KERNEL, else the
// newest vmlinuz-*-cloud-amd64 unpacked in the cache (.ci/run puts one
// there), else it fetches one: the package linux-image-cloud-amd64
// depends on, with apt-get download and dpkg-deb -x (nothing is installed).
func Kernel(t testing.TB) string {
	t.Helper()
	if k := os.Getenv("SLEWD_RIG_KERNEL"); k != "" {
		if _, err := os.Stat(k); err != nil {
			t.Fatalf("kernel rig: SLEWD_RIG_KERNEL: %v", err)
		}
		return k
	}
	dir := filepath.Join(CacheDir(t), "kernel")
	if k := newestKernel(dir); k != "" {
		return k
	}
	unlock := lock(t)
	defer unlock()
	if k := newestKernel(dir); k != "" {
		return k
	}
	pkg, err := kernelPackageName()
	if err != nil {
		t.Fatalf("kernel rig: no kernel in %s and none to fetch: %v "+
			"(run .ci/run, or `apt-get update` on Debian 12, or set SLEWD_RIG_KERNEL to a bzImage)", dir, err)
	}
	if err := fetchDeb(CacheDir(t), pkg, dir); err != nil {
		t.Fatalf("kernel rig: fetching %s: %v (or set SLEWD_RIG_KERNEL to a bzImage)", pkg, err)
	}
	k := newestKernel(dir)
	if k == "" {
		t.Fatalf("kernel rig: %s has no boot/vmlinuz-*", pkg)
	}
	return k
}

func newestKernel(dir string) string {
	ks, _ := filepath.Glob(filepath.Join(dir, "boot", "vmlinuz-*-cloud-amd64"))
	if len(ks) == 0 {
		return ""
	}
	slices.SortFunc(ks, versionCompare)
	return ks[len(ks)-1]
}

// versionCompare orders strings with embedded numbers numerically
// (vmlinuz-6.1.0-9 < vmlinuz-6.1.0-56).
func versionCompare(a, b string) int {
	pa, pb := versionParts.FindAllString(a, -1), versionParts.FindAllString(b, -1)
	for i := 0; i < len(pa) && i < len(pb); i++ {
		x, y := pa[i], pb[i]
		if x == y {
			continue
		}
		if x[0] >= '0' && x[0] <= '9' && y[0] >= '0' && y[0] <= '9' {
			if len(x) != len(y) {
				return len(x) - len(y)
			}
		}
		return strings.Compare(x, y)
	}
	return len(pa) - len(pb)
}

var versionParts = regexp.MustCompile(`\d+|\D+`)

var imageDep = regexp.MustCompile(`^\s*Depends:\s*(linux-image-\d\S*)`)

// kernelPackageName resolves linux-image-cloud-amd64 to the versioned
// image package it depends on: that is the pin.
func kernelPackageName() (string, error) {
	out, err := exec.Command("apt-cache", "depends", KernelPackage).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("apt-cache depends %s: %v: %s", KernelPackage, err, strings.TrimSpace(string(out)))
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if m := imageDep.FindStringSubmatch(sc.Text()); m != nil {
			return m[1], nil
		}
	}
	return "", fmt.Errorf("apt-cache depends %s names no linux-image package", KernelPackage)
}

// fetchDeb downloads pkg with apt-get download into cache/debs and
// unpacks it into dest with dpkg-deb -x (no installation, no root needed).
func fetchDeb(cache, pkg, dest string) error {
	debs := filepath.Join(cache, "debs")
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return err
	}
	cmd := exec.Command("apt-get", "download", pkg)
	cmd.Dir = debs
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get download %s: %v: %s", pkg, err, strings.TrimSpace(string(out)))
	}
	got, _ := filepath.Glob(filepath.Join(debs, pkg+"_*.deb"))
	if len(got) == 0 {
		return fmt.Errorf("apt-get download %s left no .deb in %s", pkg, debs)
	}
	slices.SortFunc(got, versionCompare)
	tmp, err := os.MkdirTemp(cache, "unpack-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if out, err := exec.Command("dpkg-deb", "-x", got[len(got)-1], tmp).CombinedOutput(); err != nil {
		return fmt.Errorf("dpkg-deb -x: %v: %s", err, strings.TrimSpace(string(out)))
	}
	os.RemoveAll(dest)
	return os.Rename(tmp, dest)
}

// lock serialises fetching between test processes (go test runs packages in parallel).
func lock(t testing.TB) func() {
	t.Helper()
	dir := CacheDir(t)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	return func() { f.Close() }
}

// buildGo runs `go <args>` in the module root for the guest: static,
// linux/amd64, output to out.
func buildGo(t testing.TB, out string, args ...string) {
	t.Helper()
	full := append([]string{args[0], "-o", out}, args[1:]...)
	cmd := exec.Command("go", full...)
	cmd.Dir = ModuleRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kernel rig: go %s: %v\n%s", strings.Join(full, " "), err, b)
	}
}

// BuildSlewd builds ./cmd/slewd static for the guest into dir and returns
// it as /usr/sbin/slewd.
func BuildSlewd(t testing.TB, dir string) File {
	t.Helper()
	out := filepath.Join(dir, "slewd")
	buildGo(t, out, "build", "-trimpath", "-ldflags=-s -w", "./cmd/slewd")
	return File{Path: "/usr/sbin/slewd", Src: out, Mode: 0o755}
}

var chronyMu sync.Mutex

// Chrony returns Debian 12's chronyd 4.3 and what it needs in the guest:
// the binary (fetched once into the cache with apt-get download chrony and
// dpkg-deb -x; never installed, so no chronyd ever starts on the host),
// every library ldd resolves for it on the host, /etc/passwd (in every
// guest), /run/chrony 0750 and /var/lib/chrony.
func Chrony(t testing.TB) []File {
	t.Helper()
	chronyMu.Lock()
	defer chronyMu.Unlock()
	dir := filepath.Join(CacheDir(t), "chrony")
	bin := filepath.Join(dir, "usr", "sbin", "chronyd")
	if _, err := os.Stat(bin); err != nil {
		unlock := lock(t)
		if _, err := os.Stat(bin); err != nil {
			if err := fetchDeb(CacheDir(t), "chrony", dir); err != nil {
				unlock()
				t.Fatalf("kernel rig: fetching chrony: %v", err)
			}
		}
		unlock()
	}
	files := []File{
		{Path: "/usr/sbin/chronyd", Src: bin, Mode: 0o755},
		Dir("/run/chrony", 0o750), Dir("/var/lib/chrony", 0o755),
	}
	libs, err := sharedLibraries(bin)
	if err != nil {
		t.Fatalf("kernel rig: chronyd's libraries: %v", err)
	}
	for _, l := range libs {
		files = append(files, File{Path: l, Src: l})
	}
	return files
}

// sharedLibraries lists the absolute paths ldd resolves for bin.
func sharedLibraries(bin string) ([]string, error) {
	out, err := exec.Command("ldd", bin).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %v: %s", bin, err, out)
	}
	var libs, missing []string
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if strings.Contains(line, "not found") {
			missing = append(missing, strings.Fields(line)[0])
			continue
		}
		for _, f := range strings.Fields(line) {
			if strings.HasPrefix(f, "/") {
				libs = append(libs, f)
			}
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("not on this host: %s (on Debian 12: apt-get install --no-install-recommends "+
			"libgnutls30 libnettle8 libcap2 libseccomp2 — libraries only, not chrony)", strings.Join(missing, " "))
	}
	return libs, nil
}
