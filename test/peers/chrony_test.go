package peers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/beevik/ntp"
)

// Paths found by TestMain.
var (
	slewdBin string // slewd built from this tree
	chronyd  string // Debian's chronyd 4.3, unpacked (never installed)
)

const chronyHelp = "fetch it with `make chrony-peers` (apt-get download chrony && dpkg-deb -x into test/peers/.cache; " +
	"nothing is installed), or set SLEWD_CHRONYD to a chronyd 4.3 binary; set SLEWD_SKIP_PEERS=1 to skip this suite"

// findChronyd returns the chronyd to run: $SLEWD_CHRONYD, or the one
// unpacked in $SLEWD_PEERS_CACHE (default test/peers/.cache).
func findChronyd(root string) (string, error) {
	if p := os.Getenv("SLEWD_CHRONYD"); p != "" {
		return p, checkExec(p)
	}
	cache := os.Getenv("SLEWD_PEERS_CACHE")
	if cache == "" {
		cache = filepath.Join(root, "test", "peers", ".cache")
	}
	p := filepath.Join(cache, "chrony", "usr", "sbin", "chronyd")
	return p, checkExec(p)
}

func checkExec(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if st.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not executable", p)
	}
	return nil
}

// chronyServer is a chronyd -x serving NTP on loopback inside a user
// namespace, where the kernel refuses every clock change whatever it
// tries (and -x makes it try none).
type chronyServer struct {
	Port int
	dir  string
	cmd  *exec.Cmd
	stop func()
}

// Stop stops the server before the test's end (it is stopped then anyway).
func (s *chronyServer) Stop() { s.stop() }

// Addr is the server's IPv4 address with its port.
func (s *chronyServer) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.Port) }

// chronyConfig describes a test server.
type chronyConfig struct {
	Stratum  int      // "local stratum N"; 0: no reference at all (never synchronized)
	Upstream int      // follow the chrony server on this port instead of "local"
	Offset   float64  // with Upstream: serve its time shifted by this many seconds
	Keys     []string // keyfile lines
	IPv6     bool     // also listen on [::1]
	Port     int      // the NTP port; 0: a free one
	Extra    []string // further chrony.conf lines (NTS: ntsserverkey, ntsservercert, ntsport)
}

// startChrony starts a server and waits until it serves what it was told
// to (synchronized, and shifted by Offset); it is stopped at the test's end.
func startChrony(t testing.TB, cfg chronyConfig) *chronyServer {
	t.Helper()
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		s, err := tryChrony(t, cfg)
		if err == nil {
			return s
		}
		lastErr = err // most likely the port was taken between probe and bind
	}
	t.Fatalf("chronyd would not start: %v", lastErr)
	return nil
}

func tryChrony(t testing.TB, cfg chronyConfig) (*chronyServer, error) {
	port := cfg.Port
	if port == 0 {
		port = freePort(t, cfg.IPv6)
	}
	dir := t.TempDir()
	var conf bytes.Buffer
	fmt.Fprintf(&conf, "port %d\nbindaddress 127.0.0.1\nallow 127.0.0.1\n", port)
	if cfg.IPv6 {
		conf.WriteString("bindaddress ::1\nallow ::1\n")
	}
	switch {
	case cfg.Upstream != 0:
		// chronyd -x keeps the correction in its virtual clock only, so
		// the time it serves is the upstream's shifted by exactly Offset.
		fmt.Fprintf(&conf, "server 127.0.0.1 port %d iburst minpoll -6 maxpoll -6 offset %g\n", cfg.Upstream, cfg.Offset)
	case cfg.Stratum > 0:
		fmt.Fprintf(&conf, "local stratum %d\n", cfg.Stratum)
	}
	if len(cfg.Keys) > 0 {
		keys := filepath.Join(dir, "chrony.keys")
		if err := os.WriteFile(keys, []byte(strings.Join(cfg.Keys, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&conf, "keyfile %s\n", keys)
	}
	for _, l := range cfg.Extra {
		fmt.Fprintln(&conf, l)
	}
	fmt.Fprintf(&conf, "cmdport 0\nbindcmdaddress /\npidfile %s/chronyd.pid\n", dir)
	confPath := filepath.Join(dir, "chrony.conf")
	if err := os.WriteFile(confPath, conf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "chronyd.log"))
	if err != nil {
		t.Fatal(err)
	}
	// -x: never touch the clock; the user namespace makes sure of it.
	cmd := exec.Command("unshare", "--user", "--map-root-user", chronyd, "-x", "-d", "-u", "root", "-f", confPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start chronyd: %v", err)
	}
	s := &chronyServer{Port: port, dir: dir, cmd: cmd}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logf.Close() }()
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}
	if err := s.waitReady(cfg, exited); err != nil {
		stop()
		log, _ := os.ReadFile(filepath.Join(dir, "chronyd.log"))
		return nil, fmt.Errorf("%v\nchronyd log:\n%s", err, log)
	}
	s.stop = sync.OnceFunc(stop)
	t.Cleanup(s.stop)
	return s, nil
}

// waitReady polls the server with beevik/ntp until it answers as configured.
func (s *chronyServer) waitReady(cfg chronyConfig, exited <-chan error) error {
	deadline := time.Now().Add(10 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("chronyd exited: %v", err)
		default:
		}
		r, err := ntp.QueryWithOptions(s.Addr(), ntp.QueryOptions{Timeout: 200 * time.Millisecond})
		switch {
		case err != nil:
			last = err.Error()
		case cfg.Stratum == 0 && cfg.Upstream == 0:
			return nil // answering at all is all an unsynchronized server does
		case r.Validate() != nil:
			last = "not synchronized yet: " + r.Validate().Error()
		case cfg.Upstream != 0 && (r.ClockOffset.Seconds()-cfg.Offset > 0.001 || r.ClockOffset.Seconds()-cfg.Offset < -0.001):
			last = fmt.Sprintf("serves offset %v, want %gs", r.ClockOffset, cfg.Offset)
		default:
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("chronyd on port %d not ready after 10s: %s", s.Port, last)
}

// freePort finds a UDP port free on 127.0.0.1 (and ::1): ports 12300-12310
// on this host may belong to other people's servers.
func freePort(t testing.TB, ipv6 bool) int {
	t.Helper()
	for i := 0; i < 20; i++ {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		port := c.LocalAddr().(*net.UDPAddr).Port
		ok := true
		if ipv6 {
			c6, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback, Port: port})
			if err != nil {
				ok = false
			} else {
				c6.Close()
			}
		}
		c.Close()
		if ok {
			return port
		}
	}
	t.Fatal("no free UDP port on loopback")
	return 0
}

var wrongBy = regexp.MustCompile(`System clock wrong by ([-+0-9.e]+) seconds`)

// chronyQ runs `chronyd -Q` (measure, print, change nothing) against a
// server and returns the offset it reports, NTP sign.
func chronyQ(t testing.TB, addr string, port int) float64 {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("unshare", "--user", "--map-root-user", chronyd, "-Q", "-t", "5", "-u", "root",
		fmt.Sprintf("server %s port %d iburst minpoll -6 maxpoll -6", addr, port),
		"cmdport 0", "bindcmdaddress /", "pidfile "+dir+"/q.pid")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("chronyd -Q: %v\n%s", err, out)
	}
	m := wrongBy.FindSubmatch(out)
	if m == nil {
		t.Fatalf("chronyd -Q printed no offset:\n%s", out)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// queryResult is the part of `slewd query --json` the tests read.
type queryResult struct {
	Estimate *struct {
		OffsetS float64 `json:"offset_s"`
		ErrorS  float64 `json:"error_s"`
		Sources int     `json:"sources"`
	} `json:"estimate"`
	Error   string `json:"error"`
	Sources []struct {
		Address  string   `json:"address"`
		Addr     string   `json:"addr"`
		Reach    int      `json:"reach"`
		OffsetS  *float64 `json:"offset_s"`
		DelayS   *float64 `json:"delay_s"`
		Stratum  int      `json:"stratum"`
		Samples  int      `json:"samples"`
		Selected bool     `json:"selected"`
		Reason   string   `json:"reason"`
	} `json:"sources"`
}

// slewdQuery runs the slewd binary's query without clock rights (inside a
// user namespace) and returns its JSON, its stderr and its exit status.
func slewdQuery(t testing.TB, args ...string) (queryResult, string, int) {
	t.Helper()
	cmd := exec.Command("unshare", append([]string{"--user", "--map-root-user", slewdBin, "query", "--json"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("slewd query: %v", err)
		}
		code = ee.ExitCode()
	}
	var r queryResult
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("slewd query %v: exit %d, bad JSON (%v):\n%s\n%s", args, code, err, stdout.String(), stderr.String())
	}
	return r, stderr.String(), code
}
