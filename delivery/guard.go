package delivery

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
)

// ErrBlockedAddress is matched, with errors.Is, by every error CheckIP
// returns and by a dial refused for the address it was about to connect to.
var ErrBlockedAddress = errors.New("address blocked")

// blockedError says which address was refused and why.
type blockedError struct {
	addr     netip.Addr
	embedded netip.Addr // the IPv4 address judged instead of addr, if any
	reason   string
}

func (e *blockedError) Error() string {
	if e.embedded.IsValid() {
		return fmt.Sprintf("address %s (IPv4 %s) is %s", e.addr, e.embedded, e.reason)
	}
	return fmt.Sprintf("address %s is %s", e.addr, e.reason)
}

func (e *blockedError) Unwrap() error { return ErrBlockedAddress }

// rangeKind says which Config switch, if any, can permit a range.
type rangeKind int

const (
	alwaysBlocked rangeKind = iota
	loopback
	private
	linkLocal
)

// blockedRange is one range of addresses a delivery must not reach.
type blockedRange struct {
	prefix netip.Prefix
	kind   rangeKind
	reason string
}

// blockedRanges are checked in order; the first that contains an address
// decides. IPv6 forms that embed an IPv4 address never get here: CheckIP
// judges their IPv4 address instead.
var blockedRanges = []blockedRange{
	{netip.MustParsePrefix("0.0.0.0/32"), alwaysBlocked, "unspecified"},
	{netip.MustParsePrefix("0.0.0.0/8"), alwaysBlocked, `in 0.0.0.0/8 ("this network")`},
	{netip.MustParsePrefix("10.0.0.0/8"), private, "private"},
	{netip.MustParsePrefix("100.64.0.0/10"), alwaysBlocked, "carrier-grade NAT (100.64.0.0/10)"},
	{netip.MustParsePrefix("127.0.0.0/8"), loopback, "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), linkLocal, "link-local"},
	{netip.MustParsePrefix("172.16.0.0/12"), private, "private"},
	{netip.MustParsePrefix("192.0.0.0/24"), alwaysBlocked,
		"reserved for IETF protocol assignments"},
	{netip.MustParsePrefix("192.0.2.0/24"), alwaysBlocked, "reserved for documentation"},
	{netip.MustParsePrefix("192.88.99.0/24"), alwaysBlocked, "deprecated 6to4 relay anycast"},
	{netip.MustParsePrefix("192.168.0.0/16"), private, "private"},
	{netip.MustParsePrefix("198.18.0.0/15"), alwaysBlocked, "reserved for benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), alwaysBlocked, "reserved for documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), alwaysBlocked, "reserved for documentation"},
	{netip.MustParsePrefix("224.0.0.0/4"), alwaysBlocked, "multicast"},
	{netip.MustParsePrefix("255.255.255.255/32"), alwaysBlocked, "broadcast"},
	{netip.MustParsePrefix("240.0.0.0/4"), alwaysBlocked, "reserved (240.0.0.0/4)"},

	{netip.MustParsePrefix("::/128"), alwaysBlocked, "unspecified"},
	{netip.MustParsePrefix("::1/128"), loopback, "loopback"},
	{netip.MustParsePrefix("64:ff9b::/96"), alwaysBlocked, "NAT64 (64:ff9b::/96)"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), alwaysBlocked, "local-use NAT64 (64:ff9b:1::/48)"},
	{netip.MustParsePrefix("100::/64"), alwaysBlocked, "discard-only (100::/64)"},
	{netip.MustParsePrefix("fc00::/7"), private, "private (unique local)"},
	{netip.MustParsePrefix("fe80::/10"), linkLocal, "link-local"},
	{netip.MustParsePrefix("ff00::/8"), alwaysBlocked, "multicast"},
	{netip.MustParsePrefix("2001::/32"), alwaysBlocked, "Teredo (2001::/32)"},
	{netip.MustParsePrefix("2001:2::/48"), alwaysBlocked, "reserved for benchmarking"},
	{netip.MustParsePrefix("2001:10::/28"), alwaysBlocked, "reserved (ORCHID)"},
	{netip.MustParsePrefix("2001:20::/28"), alwaysBlocked, "reserved (ORCHIDv2)"},
	{netip.MustParsePrefix("2001:db8::/32"), alwaysBlocked, "reserved for documentation"},
	{netip.MustParsePrefix("3fff::/20"), alwaysBlocked, "reserved for documentation"},
}

var (
	// ipv6Global is the only IPv6 space handed out for global unicast; an
	// IPv6 address outside it that no range above names is refused too.
	ipv6Global = netip.MustParsePrefix("2000::/3")

	ipv4Compatible = netip.MustParsePrefix("::/96")
	ipv4Translated = netip.MustParsePrefix("::ffff:0:0:0/96")
	sixToFour      = netip.MustParsePrefix("2002::/16")
)

// CheckIP reports whether a delivery may connect to ip under cfg: nil when
// it may, otherwise an error matching ErrBlockedAddress that says why, such
// as "address 10.0.0.1 is private".
//
// Loopback (127.0.0.0/8, ::1), private (RFC 1918, fc00::/7) and link-local
// (169.254.0.0/16 with the cloud metadata address, fe80::/10) addresses are
// refused unless cfg allows them. Always refused: unspecified, multicast,
// broadcast, 0.0.0.0/8, carrier-grade NAT 100.64.0.0/10, NAT64, Teredo,
// documentation and benchmarking ranges, 240.0.0.0/4, 192.0.0.0/24 and any
// IPv6 address outside 2000::/3. IPv4-mapped (::ffff:a.b.c.d),
// IPv4-compatible (::a.b.c.d) and IPv4-translated (::ffff:0:a.b.c.d) forms
// are judged as their IPv4 address; a 6to4 address (2002::/16) is refused
// unless the IPv4 address it embeds is itself allowed with no exceptions.
// A zone (fe80::1%eth0) plays no part in the judgement.
func CheckIP(ip netip.Addr, cfg Config) error {
	if !ip.IsValid() {
		return &blockedError{addr: ip, reason: "not a valid IP address"}
	}

	judged := ip.WithZone("")
	embedded := embeddedIPv4(judged)
	if embedded.IsValid() {
		judged = embedded
	}

	block := func(reason string) error {
		return &blockedError{addr: ip, embedded: embedded, reason: reason}
	}

	for _, r := range blockedRanges {
		if !r.prefix.Contains(judged) {
			continue
		}
		if r.kind == loopback && cfg.AllowLoopback ||
			r.kind == private && cfg.AllowPrivate ||
			r.kind == linkLocal && cfg.AllowLinkLocal {
			return nil
		}
		return block(r.reason)
	}

	if judged.Is6() && !ipv6Global.Contains(judged) {
		return block("outside the global unicast space 2000::/3")
	}

	if sixToFour.Contains(judged) {
		b := judged.As16()
		v4 := netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})
		if err := CheckIP(v4, Config{}); err != nil {
			return block(fmt.Sprintf("6to4 embedding %s, which is refused", v4))
		}
	}

	return nil
}

// embeddedIPv4 returns the IPv4 address an IPv4-mapped, IPv4-compatible or
// IPv4-translated IPv6 address stands for, or the zero Addr. :: and ::1 are
// IPv6 addresses in their own right, not compatible forms.
func embeddedIPv4(ip netip.Addr) netip.Addr {
	if ip.Is4In6() {
		return ip.Unmap()
	}
	if !ip.Is6() {
		return netip.Addr{}
	}

	b := ip.As16()
	v4 := netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	switch {
	case ipv4Translated.Contains(ip):
		return v4
	case ipv4Compatible.Contains(ip) && ip != netip.IPv6Unspecified() &&
		ip != netip.IPv6Loopback():
		return v4
	}
	return netip.Addr{}
}

// guardControl is the net.Dialer ControlContext hook: it runs after DNS,
// on the address the socket is about to connect to, so a host name that
// resolves (or rebinds) to a refused address never gets a connection.
func (c *Client) guardControl(_ context.Context, _, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("cannot check dial address %q: %w", address, ErrBlockedAddress)
	}
	return CheckIP(ap.Addr(), c.cfg)
}

// parseHostIP interprets a URL host (without brackets or port) as an IP
// address. ok is false for a host name to be resolved by DNS.
//
// IPv4 hosts are read with the inet_aton rules browsers use too: one to
// four dot-separated parts, each decimal, octal (leading 0) or hex (0x),
// the last filling the remaining bytes, so 2130706433, 0177.0.0.1, 0x7f.1
// and 127.1 all mean 127.0.0.1. A host whose last label is a number but
// which is not a valid address in that sense (1.2.3.256, 08.1, a.1) is an
// error rather than a name for DNS.
func parseHostIP(host string) (ip netip.Addr, ok bool, err error) {
	if strings.Contains(host, ":") {
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return netip.Addr{}, true, fmt.Errorf("invalid IPv6 address %q", host)
		}
		return ip, true, nil
	}

	parts := strings.Split(strings.TrimSuffix(host, "."), ".")
	if !isNumberPart(parts[len(parts)-1]) {
		return netip.Addr{}, false, nil
	}

	ip, err = parseIPv4Parts(parts)
	if err != nil {
		return netip.Addr{}, true, fmt.Errorf("invalid IPv4 address %q: %w", host, err)
	}
	return ip, true, nil
}

// isNumberPart reports whether s is spelled as a number: decimal digits, or
// 0x followed by hex digits (possibly none).
func isNumberPart(s string) bool {
	digits, base := s, 10
	if len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		digits, base = s[2:], 16
	} else if s == "" {
		return false
	}

	for _, r := range digits {
		if base == 10 && !('0' <= r && r <= '9') {
			return false
		}
		if base == 16 && !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return false
		}
	}
	return true
}

func parseIPv4Parts(parts []string) (netip.Addr, error) {
	if len(parts) > 4 {
		return netip.Addr{}, errors.New("more than four parts")
	}

	values := make([]uint64, len(parts))
	for i, p := range parts {
		v, err := parseIPv4Number(p)
		if err != nil {
			return netip.Addr{}, err
		}
		values[i] = v
	}

	var addr uint64
	for i, v := range values[:len(values)-1] {
		if v > 255 {
			return netip.Addr{}, fmt.Errorf("part %q is above 255", parts[i])
		}
		addr |= v << (24 - 8*i)
	}

	last := values[len(values)-1]
	if limit := uint64(1)<<(8*(5-len(values))) - 1; last > limit {
		return netip.Addr{}, fmt.Errorf("part %q is above %d", parts[len(parts)-1], limit)
	}
	addr |= last

	return netip.AddrFrom4([4]byte{
		byte(addr >> 24), byte(addr >> 16), byte(addr >> 8), byte(addr),
	}), nil
}

// parseIPv4Number reads one part of an IPv4 address: hex after 0x, octal
// after a leading 0, decimal otherwise.
func parseIPv4Number(s string) (uint64, error) {
	digits, base := s, 10
	switch {
	case s == "":
		return 0, errors.New("empty part")
	case len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'):
		digits, base = s[2:], 16
		if digits == "" {
			return 0, nil
		}
	case len(s) >= 2 && s[0] == '0':
		digits, base = s[1:], 8
	}

	v, err := strconv.ParseUint(digits, base, 64)
	if errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Errorf("part %q is out of range", s)
	}
	if err != nil {
		return 0, fmt.Errorf("part %q is not a number", s)
	}
	return v, nil
}
