package boot

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"slewd/clock"
	"slewd/ntpclient"
	"slewd/ntpclient/ntptest"
)

// hostReadOnly is the host's clock for benchmarks and tests that measure
// for real: reads pass, any change fails loudly before reaching the kernel.
type hostReadOnly struct {
	clock.System
	tb testing.TB
}

func (c hostReadOnly) Adjtimex(tx *clock.Timex) (clock.State, error) {
	if !tx.ReadOnly() {
		c.tb.Fatalf("adjtimex(%s) on the host clock", clock.ModeString(tx.Modes))
	}
	return c.System.Adjtimex(tx)
}

// BenchmarkBootDryRunFourLoopback is `slewd boot --dry-run` against four
// NTP servers on 127.0.0.1 (real UDP, the host's clock read-only): from
// the first query to the plan. The bar is 0.5 s; chronyd -q takes
// 0.3–5 s.
func BenchmarkBootDryRunFourLoopback(b *testing.B) {
	var servers []string
	for range 4 {
		s := ntptest.NewServer(ntptest.ServerConfig{Offset: 300 * time.Millisecond})
		b.Cleanup(s.Close)
		servers = append(servers, s.Addr())
	}
	clk := hostReadOnly{tb: b}
	b.ResetTimer()
	for b.Loop() {
		env := Env{Net: ntpclient.Env{Clock: clk, Loop: clock.NewSystemLoop(64), Logger: slog.New(slog.DiscardHandler)}}
		rep, err := Run(context.Background(), Config{Client: ntpclient.Config{Servers: servers}, DryRun: true}, env)
		if err != nil || rep.ExitCode != ExitOK || rep.Action != ActionStep {
			b.Fatal(fmt.Sprintf("exit %d action %s: %v", rep.ExitCode, rep.Action, err))
		}
	}
}
