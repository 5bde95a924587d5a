// Package rigself checks the rig's own promises inside the guest: extra
// files arrive with their modes, chronyd and its libraries run, the
// loopback interface carries UDP. The host side is test/kernel/rig_test.go.
package rigself

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"slewd/test/kernel/guest"
)

func TestMain(m *testing.M) { guest.Main(m) }

func TestExtraFiles(t *testing.T) {
	guest.Require(t)
	b, err := os.ReadFile("/etc/rigself/hello")
	if err != nil || string(b) != "hello from the host\n" {
		t.Errorf("extra file: %q, %v", b, err)
	}
	for path, want := range map[string]os.FileMode{"/run/chrony": os.ModeDir | 0o750, "/tmp": os.ModeDir | os.ModeSticky | 0o777} {
		st, err := os.Stat(path)
		if err != nil {
			t.Error(err)
			continue
		}
		if st.Mode() != want {
			t.Errorf("%s: mode %v, want %v", path, st.Mode(), want)
		}
	}
}

// TestChronydRuns starts Debian's chronyd only to print its version: it
// reads no clock and changes none.
func TestChronydRuns(t *testing.T) {
	guest.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "/usr/sbin/chronyd", "-v").CombinedOutput()
	if err != nil {
		t.Fatalf("chronyd -v: %v: %s", err, out)
	}
	if !bytes.Contains(out, []byte("chronyd (chrony) version 4.")) {
		t.Errorf("chronyd -v printed %q", out)
	}
	guest.Emit(t, "chronyd-version", string(bytes.TrimSpace(out)))
}

func TestLoopbackUDP(t *testing.T) {
	guest.Require(t)
	srv, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	go func() {
		buf := make([]byte, 64)
		n, from, err := srv.ReadFromUDP(buf)
		if err == nil {
			srv.WriteToUDP(buf[:n], from)
		}
	}()
	c, err := net.DialUDP("udp", nil, srv.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("echo: %q, %v", buf[:n], err)
	}
}
