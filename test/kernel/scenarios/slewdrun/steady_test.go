package slewdrun

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"slewd/clock"
	"slewd/clock/conformance"
	"slewd/ntpclient"
	"slewd/test/kernel/guest"
)

// steady is the clock's error against the truth once a daemon has
// settled, sampled every second.
type steady struct {
	Who      string  `json:"who"`       // "slewd", "chronyd"
	KernelRx bool    `json:"kernel_rx"` // t4 from the kernel
	KernelTx bool    `json:"kernel_tx"` // t1 from the kernel
	ServerRx bool    `json:"server_rx"` // the server's t2 from the kernel (ntptest KernelRx)
	Poll     float64 `json:"poll_s"`
	MeanUS   float64 `json:"mean_us"` // REALTIME − truth: positive is ahead
	RMSUS    float64 `json:"rms_us"`
	MaxUS    float64 `json:"max_us"`
	N        int     `json:"n"`
}

const (
	steadyPoll   = 16 * time.Second
	steadyWarmup = 3 * time.Minute
	steadySpan   = 6 * time.Minute
)

// measureSteady waits out the warm-up, then samples the error every second.
func measureSteady(w *guest.Truth, who string, kernelRx, kernelTx bool) steady {
	serverRx := w.Servers[0].Config().KernelRx
	time.Sleep(steadyWarmup)
	var sum, sq, worst float64
	n := 0
	for end := time.Now().Add(steadySpan); time.Now().Before(end); n++ {
		e := float64(w.ClockError()) / float64(time.Microsecond)
		sum, sq, worst = sum+e, sq+e*e, max(worst, math.Abs(e))
		time.Sleep(time.Second)
	}
	return steady{Who: who, KernelRx: kernelRx, KernelTx: kernelTx, ServerRx: serverRx, Poll: steadyPoll.Seconds(), MeanUS: sum / float64(n),
		RMSUS: math.Sqrt(sq / float64(n)), MaxUS: worst, N: n}
}

// kernelRxServer makes w's server stamp requests with the kernel's
// receive time (as chronyd and ntpd do) or after its wake-up.
func kernelRxServer(w *guest.Truth, on bool) {
	cfg := w.Servers[0].Config()
	cfg.KernelRx = on
	w.Servers[0].SetConfig(cfg)
}

// TestSteadyState holds the clock against one in-guest server with a
// fixed 16 s poll: slewd with the kernel's receive and transmit
// timestamps, with receive timestamps only (SLEWD_NO_KERNEL_TX_TIMESTAMPS=1,
// slewd before it read transmit stamps), with neither (and
// SLEWD_NO_KERNEL_RX_TIMESTAMPS=1), and chronyd, each from a fresh clock,
// twice; slewd (all kernel stamps) and chronyd also against the server
// stamping its receive time in the kernel.
func TestSteadyState(t *testing.T) {
	c := guest.Clock(t)
	for range 2 {
		for _, m := range []struct{ rx, tx, srv bool }{{true, true, true}, {true, true, false}, {true, false, false}, {false, false, false}} {
			w := guest.NewTruth(t, c, 1)
			kernelRxServer(w, m.srv)
			var env []string
			if !m.rx {
				env = append(env, ntpclient.NoKernelRxEnv+"=1")
			}
			if !m.tx {
				env = append(env, ntpclient.NoKernelTxEnv+"=1")
			}
			d := guest.StartSlewdEnv(t, "", env, "--poll", steadyPoll.String(), w.Addrs[0])
			r := measureSteady(w, "slewd", m.rx, m.tx)
			if r.RMSUS > 1000 {
				t.Errorf("slewd rx %v tx %v: RMS %.1f µs", m.rx, m.tx, r.RMSUS)
			}
			d.Stop(t, syscall.SIGTERM)
			guest.Emit(t, "steady", r)
		}
		for _, srv := range []bool{true, false} {
			w := guest.NewTruth(t, c, 1)
			kernelRxServer(w, srv)
			conf := fmt.Sprintf("server 127.0.0.1 port %d iburst minpoll 4 maxpoll 4\ncmdport 0\npidfile /run/chrony/chronyd.pid\n", w.Servers[0].Port())
			if err := os.WriteFile("/tmp/chrony-steady.conf", []byte(conf), 0o644); err != nil {
				t.Fatal(err)
			}
			var log bytes.Buffer
			cmd := exec.Command("/usr/sbin/chronyd", "-d", "-u", "root", "-L", "0", "-f", "/tmp/chrony-steady.conf")
			cmd.Stdout, cmd.Stderr = &log, &log
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			r := measureSteady(w, "chronyd", true, true)
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
			guest.Emit(t, "steady", r)
		}
	}
	conformance.Restore(t.Context(), c, clock.NewSystemLoop(1))
}
