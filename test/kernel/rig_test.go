package kernel_test

import (
	"strings"
	"testing"
	"time"

	"slewd/test/kernel/rig"
)

// TestRigExtras boots the rig's self-test package with chronyd and an
// extra file, in real-time TCG: it proves the options other scenario
// groups rely on, and its wall time is the rig's per-boot overhead.
func TestRigExtras(t *testing.T) {
	res := rig.Boot(t, rig.Config{
		Package: "./test/kernel/scenarios/rigself",
		Chrony:  true,
		Files:   []rig.File{rig.DataFile("/etc/rigself/hello", []byte("hello from the host\n"), 0o644)},
		Timeout: 2 * time.Minute,
	})
	v, err := rig.Decode[string](res, "chronyd-version")
	if err != nil || len(v) != 1 || !strings.Contains(v[0], "4.3") {
		t.Errorf("chronyd version records %q, %v (want Debian 12's chrony 4.3)", v, err)
	}
}
