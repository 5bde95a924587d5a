package boot

import (
	"fmt"
	"regexp"
	"strings"

	"slewd/ntpclient"
)

// A one-shot command exits: the client's "(retrying in 4s)" is not what
// happens next, so its messages drop it.
var retrying = regexp.MustCompile(`\s*\(retrying in [^)]*\)`)

// OneShotWords is a source's reason as a command that exits says it.
func OneShotWords(reason string) string { return retrying.ReplaceAllString(reason, "") }

// Summary words why there is no estimate in one bounded line: the
// selection's reason, then each distinct source reason once with the
// sources that share it (a few named, the rest counted), so that 500
// servers do not make a line of tens of KB.
func Summary(none *ntpclient.NoEstimateError) string {
	const names, groups = 3, 6
	var order []string
	by := map[string][]string{}
	for _, d := range none.Details {
		if d.Selected {
			continue
		}
		r := OneShotWords(d.Reason)
		if _, ok := by[r]; !ok {
			order = append(order, r)
		}
		by[r] = append(by[r], d.Source)
	}
	var b strings.Builder
	b.WriteString("no estimate: ")
	b.WriteString(OneShotWords(none.Reason))
	for i, r := range order {
		if i == groups {
			rest := 0
			for _, r := range order[groups:] {
				rest += len(by[r])
			}
			fmt.Fprintf(&b, "; and %d more source(s) for other reasons", rest)
			break
		}
		srcs := by[r]
		shown := strings.Join(srcs[:min(names, len(srcs))], ", ")
		if len(srcs) > names {
			shown += fmt.Sprintf(" and %d more", len(srcs)-names)
		}
		fmt.Fprintf(&b, "; %s: %s", shown, r)
	}
	return b.String()
}
