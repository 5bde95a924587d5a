//go:build linux && (arm || 386)

package main

import "golang.org/x/sys/unix"

// The 32-bit ids' system calls (the old 16-bit ones would truncate).
const (
	sysSetgroups = unix.SYS_SETGROUPS32
	sysSetresgid = unix.SYS_SETRESGID32
	sysSetresuid = unix.SYS_SETRESUID32
)
