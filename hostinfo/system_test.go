package hostinfo

import (
	"testing"
	"time"
)

// TestSystem runs on the real root of this host and prints what it finds;
// it asserts only that the answers are well-formed and quick.
func TestSystem(t *testing.T) {
	start := time.Now()
	v := Detect(System())
	e := Gather(System())
	took := time.Since(start)
	if v.Virtualization == "" || v.Container == "" {
		t.Fatalf("empty answer: %+v", v)
	}
	t.Logf("virtualization=%s container=%s user_namespace=%v why=%q", v.Virtualization, v.Container, v.UserNamespace, v.Why)
	t.Logf("kernel=%s modules=%v processes=%d jobs=%d audit=%d (seen %v) unreadable=%v",
		e.KernelRelease, e.Modules, len(e.Processes), len(e.Jobs), len(e.Audit), e.AuditSeen, e.Unreadable)
	for _, s := range Rank(e, Observation{Kind: Step, Offset: -2 * time.Second, At: time.Now()}) {
		t.Logf("  suspect %3d %s: %s", s.Score, s.Who, s.Why)
	}
	t.Logf("Detect+Gather took %v", took)
}

func BenchmarkDetect(b *testing.B) {
	m := System()
	for b.Loop() {
		Detect(m)
	}
}

func BenchmarkFindSuspects(b *testing.B) {
	m := System()
	obs := Observation{Kind: Step, Offset: time.Second, At: time.Now()}
	for b.Loop() {
		FindSuspects(m, obs)
	}
}
