//go:build !(linux && amd64)

package guest

import "errors"

// debugExit needs x86 port I/O; the rig's guest is always linux/amd64.
// This stub keeps the package building (and vetted) on arm and arm64.
func debugExit(code int) error {
	return errors.New("isa-debug-exit needs linux/amd64")
}
