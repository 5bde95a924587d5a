package kernel_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"slewd/test/kernel/rig"
)

type oneShotRecord struct {
	Scenario     string  `json:"scenario"`
	Code         int     `json:"code"`
	TookS        float64 `json:"took_s"`
	Action       string  `json:"action"`
	OffsetS      float64 `json:"offset_s"`
	ErrorBeforeS float64 `json:"error_before_s"`
	ErrorAfterS  float64 `json:"error_after_s"`
	JumpS        float64 `json:"jump_s"`
	SingleshotUs int64   `json:"singleshot_us"`
	Status       string  `json:"status"`
}

// TestOneShotCommands boots the real slewd boot, sync and wait on the
// guest's real kernel clock (test/kernel/scenarios/oneshot) and prints
// what each did.
func TestOneShotCommands(t *testing.T) {
	rig.Skip(t)
	res := rig.Boot(t, rig.Config{
		Package: "./test/kernel/scenarios/oneshot",
		Slewd:   true,
		ICount:  true, // deadlines and timeouts: idle guest time costs no wall time
		Timeout: 6 * time.Minute,
	})
	recs, err := rig.Decode[oneShotRecord](res, "oneshot")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("| scenario | status | took | action | measured offset | error before → after | REALTIME−RAW moved | singleshot left | kernel status |\n|---|---:|---:|---|---:|---|---:|---:|---|\n")
	for _, r := range recs {
		fmt.Fprintf(&b, "| %s | %d | %.3f s | %s | %+.6f s | %+.6f → %+.6f s | %+.6f s | %d µs | %s |\n",
			r.Scenario, r.Code, r.TookS, r.Action, r.OffsetS, r.ErrorBeforeS, r.ErrorAfterS, r.JumpS, r.SingleshotUs, r.Status)
	}
	fmt.Println(b.String())
	if len(recs) < 7 {
		t.Errorf("%d records from the guest, want 7 (one per scenario step)", len(recs))
	}
}
