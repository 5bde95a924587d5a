package kernel_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"slewd/test/kernel/rig"
)

type runSteady struct {
	Who      string  `json:"who"`
	KernelRx bool    `json:"kernel_rx"`
	KernelTx bool    `json:"kernel_tx"`
	ServerRx bool    `json:"server_rx"`
	Poll     float64 `json:"poll_s"`
	MeanUS   float64 `json:"mean_us"`
	RMSUS    float64 `json:"rms_us"`
	MaxUS    float64 `json:"max_us"`
	N        int     `json:"n"`
}

// TestSlewdSteadyState measures the clock's error in steady state on the
// guest's real kernel clock: slewd with and without the kernel's receive
// timestamps, and chronyd, against the same in-guest server
// (docs/performance.md).
func TestSlewdSteadyState(t *testing.T) {
	rig.Skip(t)
	res := rig.Boot(t, rig.Config{
		Package: "./test/kernel/scenarios/slewdrun",
		Run:     "TestSteadyState",
		Slewd:   true,
		Chrony:  true,
		ICount:  true,
		Timeout: 150 * time.Minute, // also the guest test timeout, in guest time: 108 min of it (under a minute wall)
	})
	rows, err := rig.Decode[runSteady](res, "steady")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Steady state, real kernel %s in qemu (icount, clocksource %s), one in-guest server, poll 16 s, error = REALTIME − truth sampled every 1 s for 6 min after 3 min:\n\n",
		res.Boot.Kernel, res.Boot.Clocksource)
	b.WriteString("| daemon | t4 (receive) | t1 (transmit) | server's t2 | mean error | RMS | max \\|error\\| | samples |\n|---|---|---|---|---:|---:|---:|---:|\n")
	stamp := map[bool]string{true: "kernel", false: "user space"}
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %+.2f µs | %.2f µs | %.1f µs | %d |\n", r.Who, stamp[r.KernelRx], stamp[r.KernelTx], stamp[r.ServerRx], r.MeanUS, r.RMSUS, r.MaxUS, r.N)
	}
	fmt.Println(b.String())
	if len(rows) != 12 {
		t.Errorf("expected 12 steady-state records, got %d", len(rows))
	}
}
