package ntpclient

import (
	"fmt"
	"strings"
)

// RefIDString formats a reference id as NTP tools do: the kiss code at
// stratum 0, the reference clock's name at stratum 1 (".GPS."), and an
// IPv4 address (or the hash of an IPv6 one) above.
func RefIDString(stratum uint8, refID uint32) string {
	b := []byte{byte(refID >> 24), byte(refID >> 16), byte(refID >> 8), byte(refID)}
	if stratum <= 1 {
		name := strings.TrimRight(string(b), "\x00")
		printable := name != ""
		for _, c := range []byte(name) {
			printable = printable && c >= 32 && c <= 126
		}
		if printable {
			if stratum == 0 {
				return name
			}
			return "." + name + "."
		}
		if refID == 0 {
			return "-"
		}
	}
	return fmt.Sprintf("%d.%d.%d.%d", b[0], b[1], b[2], b[3])
}

// String names a leap indicator.
func (l Leap) String() string {
	switch l {
	case LeapNone:
		return "none"
	case LeapInsert:
		return "insert"
	case LeapDelete:
		return "delete"
	}
	return "unsynchronized"
}
