package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"slewd/clock"
	"slewd/kernelstatus"
)

// TestStatusUnprivileged runs the built binary in a user namespace, where
// the kernel refuses every clock change (no CAP_SYS_TIME over the real
// clock): status must work there, reading the host's clock.
func TestStatusUnprivileged(t *testing.T) {
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("unshare (util-linux) not installed")
	}
	bin := filepath.Join(t.TempDir(), "slewd")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if out, err := exec.Command(unshare, "--user", "--map-root-user", "true").CombinedOutput(); err != nil {
		t.Skipf("user namespaces unavailable here: %v: %s", err, out)
	}
	// Proof that the namespace has no clock rights: the probe gets EPERM.
	for _, args := range [][]string{{"status", "--json"}, {"status"}} {
		cmd := exec.Command(unshare, sandboxArgs(bin, args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("slewd %v: %v\n%s", args, err, stderr.String())
		}
		if args[len(args)-1] == "--json" {
			var s kernelstatus.Status
			if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
				t.Fatalf("slewd status --json: %v\n%s", err, stdout.String())
			}
			if s.TickUs < clock.MinTick || s.TickUs > clock.MaxTick || s.Verdict == "" {
				t.Errorf("implausible status: %+v", s)
			}
			if s.Virtualization == "" || s.Container == "" || !s.UserNamespace {
				t.Errorf("virtualization %q container %q user namespace %v: want both named and the namespace seen", s.Virtualization, s.Container, s.UserNamespace)
			}
			t.Logf("here: virtualization %s, container %s, PHCs %v", s.Virtualization, s.Container, s.PHCs)
		} else if !strings.Contains(stdout.String(), "verdict:") {
			t.Errorf("slewd status printed:\n%s", stdout.String())
		}
	}
}
