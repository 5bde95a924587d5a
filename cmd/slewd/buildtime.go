package main

import (
	"os"
	"runtime/debug"
	"time"
)

// buildTime is when this binary was built: the commit time Go stamps into
// it (vcs.time), else the executable's modification time (at least its
// build time's lower bound in practice: installs copy it). Zero if
// neither is known. It bounds the high-water mark
// (statefile.CheckHighWater).
func buildTime() time.Time {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.time" {
				if t, err := time.Parse(time.RFC3339, s.Value); err == nil {
					return t
				}
			}
		}
	}
	if exe, err := os.Executable(); err == nil {
		if fi, err := os.Stat(exe); err == nil {
			return fi.ModTime()
		}
	}
	return time.Time{}
}
