package boot

import (
	"fmt"
	"strings"
	"testing"

	"slewd/ntpclient"
)

// 500 unreachable servers make one short line, and a one-shot command
// does not say it is retrying.
func TestSummaryBounded(t *testing.T) {
	none := &ntpclient.NoEstimateError{Reason: "no source gave a usable sample"}
	for i := range 500 {
		none.Details = append(none.Details, ntpclient.SourceReport{Source: fmt.Sprintf("192.0.2.%d:123", i), Reason: "unreachable: no reply within 2s"})
	}
	for i := range 20 {
		none.Details = append(none.Details, ntpclient.SourceReport{Source: fmt.Sprintf("h%d.example:123", i),
			Reason: fmt.Sprintf("DNS lookup of h%d.example failed: no such host (retrying in 4s)", i)})
	}
	s := Summary(none)
	if len(s) > 600 || !strings.Contains(s, "and 497 more: unreachable") || strings.Contains(s, "retrying") ||
		!strings.Contains(s, "and 15 more source(s) for other reasons") {
		t.Errorf("%d bytes: %s", len(s), s)
	}
	if long := none.Error(); len(long) < 10000 {
		t.Errorf("the client's own message is only %d bytes: the test no longer shows the problem", len(long))
	}
}
