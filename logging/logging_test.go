package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// On the journal every line starts with its priority, the text stays
// key=value, and the time is left to the journal; elsewhere nothing is
// added.
func TestJournalPrefixes(t *testing.T) {
	var b bytes.Buffer
	log, err := New(&b, Options{Level: slog.LevelDebug, Journal: true})
	if err != nil {
		t.Fatal(err)
	}
	log = log.With("source", "192.0.2.1:123")
	log.Debug("sample", "offset", "1ms")
	log.Info("slewing", "left", "54s")
	log.Log(context.Background(), slog.LevelInfo+2, "notice")
	log.Warn("source unreachable")
	log.WithGroup("g").Error("failed", "err", "boom")
	want := []string{
		`<7>level=DEBUG msg=sample source=192.0.2.1:123 offset=1ms`,
		`<6>level=INFO msg=slewing source=192.0.2.1:123 left=54s`,
		`<5>level=INFO+2 msg=notice source=192.0.2.1:123`,
		`<4>level=WARN msg="source unreachable" source=192.0.2.1:123`,
		`<3>level=ERROR msg=failed source=192.0.2.1:123 g.err=boom`,
	}
	if got := strings.Split(strings.TrimSpace(b.String()), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	b.Reset()
	log, _ = New(&b, Options{})
	log.Warn("plain")
	if s := b.String(); !strings.HasPrefix(s, "time=") || !strings.Contains(s, "level=WARN msg=plain") {
		t.Errorf("not on the journal: %q", s)
	}
}

func TestJSON(t *testing.T) {
	var b bytes.Buffer
	log, err := New(&b, Options{Format: "json", Journal: true})
	if err != nil {
		t.Fatal(err)
	}
	log.Warn("source unreachable", "source", "a")
	line := b.String()
	if !strings.HasPrefix(line, "<4>{") {
		t.Fatalf("%q", line)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(line[3:]), &m); err != nil || m["msg"] != "source unreachable" || m["source"] != "a" || m["level"] != "WARN" {
		t.Errorf("%q: %v %v", line, m, err)
	}
	if _, err := New(&b, Options{Format: "xml"}); err == nil || !strings.Contains(err.Error(), "use text or json") {
		t.Errorf("bad format: %v", err)
	}
}

// JOURNAL_STREAM counts only when it names this very file: a service
// whose stderr was redirected (a pipe, a file) keeps the variable from
// systemd but is not on the journal.
func TestJournalStream(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	sys := st.Sys().(*syscall.Stat_t)
	for env, want := range map[string]bool{
		fmt.Sprintf("%d:%d", sys.Dev, sys.Ino):   true,
		fmt.Sprintf("%d:%d", sys.Dev, sys.Ino+1): false,
		fmt.Sprintf("%d:%d", sys.Dev+1, sys.Ino): false,
		"":                                       false,
		"garbage":                                false,
	} {
		t.Setenv("JOURNAL_STREAM", env)
		if got := JournalStream(f); got != want {
			t.Errorf("JOURNAL_STREAM=%q: %v, want %v", env, got, want)
		}
	}
}
