package ntpclient

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// DefaultPort is the NTP port; DefaultNTSKEPort the NTS-KE port (RFC 8915 §6).
const (
	DefaultPort      = 123
	DefaultNTSKEPort = 4460
)

// ntsScheme marks an NTS source: nts://HOST[:PORT], PORT being NTS-KE's.
const ntsScheme = "nts://"

// Spec is a server or pool as configured: a host name or IP literal and
// a port.
type Spec struct {
	Host string // name or IP address, without brackets
	Port int    // NTP's, or with NTS the key exchange's
	// NTS: authenticate with Network Time Security (RFC 8915). Host and
	// Port are the NTS-KE server's; it names the NTP server to query.
	NTS bool
}

// String is HOST:PORT, with brackets around IPv6 literals, and nts://
// before an NTS source.
func (s Spec) String() string {
	hp := net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
	if s.NTS {
		return ntsScheme + hp
	}
	return hp
}

// IsIP says whether Host is an IP literal (nothing to resolve).
func (s Spec) IsIP() bool {
	_, err := netip.ParseAddr(s.Host)
	return err == nil
}

// ParseSource parses a server or pool as written on the command line or in
// the configuration: HOST, HOST:PORT, an IPv4 address with or without a
// port, an IPv6 address bare or in brackets ([::1] or [::1]:123), any of
// them after nts:// for an NTS source (its port the NTS-KE server's,
// 4460 unless given). The error says what is wrong and what to write
// instead.
func ParseSource(text string) (Spec, error) {
	s := strings.TrimSpace(text)
	if len(s) >= len(ntsScheme) && strings.EqualFold(s[:len(ntsScheme)], ntsScheme) {
		rest := s[len(ntsScheme):]
		if rest == "" || strings.Contains(rest, "://") {
			return Spec{}, fmt.Errorf("%q: write nts://HOST or nts://HOST:PORT (PORT: the NTS-KE server's, default %d)", text, DefaultNTSKEPort)
		}
		sp, err := parseHostPort(rest, text, DefaultNTSKEPort)
		sp.NTS = err == nil
		return sp, err
	}
	return parseHostPort(s, text, DefaultPort)
}

// parseHostPort parses s (trimmed; text as given, for errors) with
// defaultPort when it has none.
func parseHostPort(s, text string, defaultPort int) (Spec, error) {
	const forms = "write HOST, HOST:PORT, an IPv4 address, or an IPv6 address as [ADDR]:PORT"
	switch {
	case s == "":
		return Spec{}, fmt.Errorf("empty server name: %s", forms)
	case strings.Contains(s, "://"):
		return Spec{}, fmt.Errorf("%q looks like a URL: give the host name alone, e.g. pool.ntp.org or time.example.com:123 (nts:// is the only scheme)", text)
	case strings.ContainsAny(s, " \t\r\n/@,;\"'\\"):
		return Spec{}, fmt.Errorf("%q contains a character that cannot be in a host name: %s (one server per argument)", text, forms)
	}

	host, port := s, defaultPort
	switch {
	case s[0] == '[':
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return Spec{}, fmt.Errorf("%q has no closing ']': write [ADDR] or [ADDR]:PORT", text)
		}
		host = s[1:end]
		switch rest := s[end+1:]; {
		case rest == "":
		case rest[0] == ':':
			p, err := parsePort(rest[1:])
			if err != nil {
				return Spec{}, fmt.Errorf("%q: %w", text, err)
			}
			port = p
		default:
			return Spec{}, fmt.Errorf("%q: unexpected %q after ']': write [ADDR]:PORT", text, rest)
		}
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.Is6() || ip.Is4In6() {
			return Spec{}, fmt.Errorf("%q: %q in brackets is not an IPv6 address (brackets are for IPv6 only)", text, host)
		}
		if err := checkZone(ip); err != nil {
			return Spec{}, fmt.Errorf("%q: %w", text, err)
		}
	case strings.Count(s, ":") >= 2:
		ip, err := netip.ParseAddr(s)
		if err != nil || !ip.Is6() {
			return Spec{}, fmt.Errorf("%q is not an IPv6 address: %s", text, forms)
		}
		if err := checkZone(ip); err != nil {
			return Spec{}, fmt.Errorf("%q: %w", text, err)
		}
	case strings.Count(s, ":") == 1:
		h, p, _ := strings.Cut(s, ":")
		pn, err := parsePort(p)
		if err != nil {
			return Spec{}, fmt.Errorf("%q: %w", text, err)
		}
		host, port = h, pn
		if err := checkHost(host); err != nil {
			return Spec{}, fmt.Errorf("%q: %w", text, err)
		}
	default:
		if err := checkHost(host); err != nil {
			return Spec{}, fmt.Errorf("%q: %w", text, err)
		}
	}
	return Spec{Host: host, Port: port}, nil
}

// checkZone accepts an IPv6 zone only if it can be an interface name.
func checkZone(ip netip.Addr) error {
	for _, c := range ip.Zone() {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("zone %q is not an interface name (like eth0)", ip.Zone())
		}
	}
	return nil
}

func parsePort(p string) (int, error) {
	if p == "" {
		return 0, errors.New("empty port after ':': write HOST:PORT with PORT from 1 to 65535, or leave out ':' for port 123")
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", p)
	}
	return n, nil
}

// checkHost accepts an IPv4 address or a DNS name (RFC 1123 labels; '_'
// tolerated as resolvers do).
func checkHost(h string) error {
	if h == "" {
		return errors.New("empty host name before ':'")
	}
	if looksNumeric(h) {
		if ip, err := netip.ParseAddr(h); err != nil || !ip.Is4() {
			return fmt.Errorf("%q is not a valid IPv4 address (four numbers 0-255 separated by dots)", h)
		}
		return nil
	}
	name := strings.TrimSuffix(h, ".")
	if len(name) == 0 || len(name) > 253 {
		return fmt.Errorf("host name %q must be 1 to 253 characters", h)
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("host name %q has an empty or over-long (>63) label", h)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("host name %q: a label cannot start or end with '-'", h)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("host name %q contains %q: only letters, digits, '-' and '.' are allowed", h, c)
			}
		}
	}
	return nil
}

// looksNumeric is true for dotted digits, which must then be an IPv4 address.
func looksNumeric(h string) bool {
	for _, c := range h {
		if !(c >= '0' && c <= '9' || c == '.') {
			return false
		}
	}
	return true
}
