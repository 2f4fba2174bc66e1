package outbound

import (
	"net/netip"
)

// refusedPrefixes are the ranges a fetch must never reach even though
// netip calls them global unicast: private networks, CGNAT, documentation,
// benchmarking and reserved space, and the IPv6 transition ranges that embed
// an IPv4 address (so ::ffff:10.0.0.1-style tricks cannot name an internal
// host through a translator).
var refusedPrefixes = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8",          // "this network"
		"10.0.0.0/8",         // private
		"100.64.0.0/10",      // CGNAT
		"127.0.0.0/8",        // loopback
		"169.254.0.0/16",     // link-local, cloud metadata 169.254.169.254
		"172.16.0.0/12",      // private
		"192.0.0.0/24",       // IETF protocol assignments
		"192.0.2.0/24",       // documentation
		"192.88.99.0/24",     // 6to4 relay anycast
		"192.168.0.0/16",     // private
		"198.18.0.0/15",      // benchmarking
		"198.51.100.0/24",    // documentation
		"203.0.113.0/24",     // documentation
		"224.0.0.0/4",        // multicast
		"240.0.0.0/4",        // reserved, broadcast
		"::/96",              // unspecified, loopback, IPv4-compatible
		"::ffff:0:0:0/96",    // SIIT IPv4-translated
		"64:ff9b::/96",       // NAT64
		"64:ff9b:1::/48",     // local NAT64
		"100::/64",           // discard
		"2001::/32",          // Teredo
		"2001:db8::/32",      // documentation
		"2002::/16",          // 6to4
		"fc00::/7",           // unique local, AWS metadata fd00:ec2::254
		"fe80::/10",          // link-local
		"fec0::/10",          // deprecated site-local
		"ff00::/8",           // multicast
		"2001:10::/28",       // ORCHID
		"2001:20::/28",       // ORCHIDv2
		"3fff::/20",          // documentation (RFC 9637)
		"5f00::/16",          // SRv6 SIDs
		"2001:2::/48",        // benchmarking
		"255.255.255.255/32", // limited broadcast (inside 240/4 too)
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// CheckAddress reports whether a fetch may connect to ip: nil for a public
// unicast address, ErrForbiddenAddress otherwise. With allowLoopback,
// 127.0.0.0/8 and ::1 (also in IPv4-mapped form) pass as well. It is the
// check the dialer applies to every socket before it connects, so what is
// checked is the address actually used, not an earlier DNS answer.
func CheckAddress(ip netip.Addr, allowLoopback bool) error {
	if !ip.IsValid() {
		return ErrForbiddenAddress
	}
	// ::ffff:a.b.c.d is a.b.c.d on a dual-stack socket; judge it as such.
	ip = ip.Unmap().WithZone("")
	if allowLoopback && ip.IsLoopback() {
		return nil
	}
	if !ip.IsGlobalUnicast() || ip.IsPrivate() {
		return ErrForbiddenAddress
	}
	for _, p := range refusedPrefixes {
		if p.Contains(ip) {
			return ErrForbiddenAddress
		}
	}
	return nil
}
