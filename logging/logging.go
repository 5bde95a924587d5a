// Package logging makes slewd's loggers: key=value text (or JSON for log
// shippers) on stderr, and, when stderr is the systemd journal, each line
// prefixed with its syslog priority as sd-daemon(3) says (<3> error …
// <7> debug), so that journald files warnings as warnings and
// `journalctl -p warning -u slewd` finds them.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"syscall"
)

// Options say how to log.
type Options struct {
	Level  slog.Leveler
	Format string // "text" (default) or "json"
	// Journal prefixes each line with its sd-daemon priority and leaves
	// out the time, which the journal records itself.
	Journal bool
}

// New returns a logger writing to w.
func New(w io.Writer, o Options) (*slog.Logger, error) {
	h, err := NewHandler(w, o)
	if err != nil {
		return nil, err
	}
	return slog.New(h), nil
}

// NewHandler returns the handler New uses.
func NewHandler(w io.Writer, o Options) (slog.Handler, error) {
	opts := &slog.HandlerOptions{Level: o.Level}
	pw := &prefixWriter{out: w}
	if o.Journal {
		opts.ReplaceAttr = dropTime
		w = pw
	}
	var h slog.Handler
	switch o.Format {
	case "", "text":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return nil, fmt.Errorf("log format %q: use text or json", o.Format)
	}
	if !o.Journal {
		return h, nil
	}
	return &journalHandler{h: h, w: pw}, nil
}

// Priority is the syslog priority of a slog level (sd-daemon(3)): error
// 3, warning 4, notice 5 (between info and warn), info 6, debug 7.
func Priority(l slog.Level) int {
	switch {
	case l >= slog.LevelError:
		return 3
	case l >= slog.LevelWarn:
		return 4
	case l > slog.LevelInfo:
		return 5
	case l >= slog.LevelInfo:
		return 6
	}
	return 7
}

// JournalStream says whether f is the journal's stream: systemd sets
// JOURNAL_STREAM to its "DEVICE:INODE" for the service's stdout and
// stderr, and a program whose output was redirected elsewhere (a pipe, a
// file) must not prefix (systemd.exec(5), sd-daemon(3)).
func JournalStream(f *os.File) bool {
	env := os.Getenv("JOURNAL_STREAM")
	if env == "" || f == nil {
		return false
	}
	var dev, ino uint64
	if n, err := fmt.Sscanf(env, "%d:%d", &dev, &ino); n != 2 || err != nil {
		return false
	}
	st, err := f.Stat()
	if err != nil {
		return false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	return ok && uint64(sys.Dev) == dev && uint64(sys.Ino) == ino
}

// journalHandler formats with the inner handler, which writes to w,
// after setting the priority w puts in front of the line.
type journalHandler struct {
	h slog.Handler
	w *prefixWriter
}

func (j *journalHandler) Enabled(ctx context.Context, l slog.Level) bool { return j.h.Enabled(ctx, l) }

func (j *journalHandler) Handle(ctx context.Context, r slog.Record) error {
	j.w.mu.Lock()
	defer j.w.mu.Unlock()
	j.w.prio = Priority(r.Level)
	return j.h.Handle(ctx, r)
}

func (j *journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &journalHandler{h: j.h.WithAttrs(as), w: j.w}
}

func (j *journalHandler) WithGroup(name string) slog.Handler {
	return &journalHandler{h: j.h.WithGroup(name), w: j.w}
}

// prefixWriter writes each record (slog's handlers write one line per
// Write) with "<prio>" in front, in one write so lines never interleave.
type prefixWriter struct {
	mu   sync.Mutex // held by journalHandler.Handle around the Write
	out  io.Writer
	prio int
	buf  []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.buf = append(p.buf[:0], '<', byte('0'+p.prio), '>')
	p.buf = append(p.buf, b...)
	if _, err := p.out.Write(p.buf); err != nil {
		return 0, err
	}
	return len(b), nil
}

func dropTime(groups []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey && len(groups) == 0 {
		return slog.Attr{}
	}
	return a
}
