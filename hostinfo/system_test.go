package hostinfo

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

// BenchmarkGatherAuditTail: Gather with an 8 MiB audit log of ordinary
// SYSCALL records (only the last MiB is read).
func BenchmarkGatherAuditTail(b *testing.B) {
	dir := b.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "var/log/audit"), 0o755); err != nil {
		b.Fatal(err)
	}
	var sb strings.Builder
	for i := 0; sb.Len() < 8<<20; i++ {
		fmt.Fprintf(&sb, "type=SYSCALL msg=audit(1781092800.%03d:%d): arch=c000003e syscall=257 success=yes exit=3 a0=ffffff9c pid=%d comm=\"cron\" exe=\"/usr/sbin/cron\"\n", i%1000, i, 100+i%50)
		if i%100 == 0 {
			fmt.Fprintf(&sb, "type=TIME_ADJNTPVAL msg=audit(1781092800.%03d:%d): op=freq old=0 new=1\n", i%1000, i)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "var/log/audit/audit.log"), []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	m := DirMachine(dir)
	for b.Loop() {
		if e := Gather(m); len(e.Audit) == 0 {
			b.Fatal("no audit records")
		}
	}
}
