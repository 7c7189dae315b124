package delivery

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
)

// BlockedError says that a destination was refused by a Guard.
type BlockedError struct {
	// Addr is the refused address or host as seen by the guard.
	Addr string
	// Reason says which rule refused it, e.g. "loopback".
	Reason string
}

// Error implements error.
func (e *BlockedError) Error() string {
	return fmt.Sprintf("destination %s refused: %s", e.Addr, e.Reason)
}

// Guard refuses outbound connections to addresses a webhook target must not
// reach from inside the cluster: loopback, private and link-local ranges,
// cloud metadata services and other special-purpose addresses.
//
// The zero value is the strict default. AllowPrivate opens the private
// ranges (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7, fec0::/10) and
// AllowLoopback opens 127/8 and ::1. Everything else that is refused
// (unspecified, link-local, metadata, multicast, broadcast, reserved) opens
// only through AllowCIDRs, which wins over every rule: metadata addresses stay
// refused under AllowPrivate and AllowLoopback unless a prefix in AllowCIDRs
// contains them.
//
// Use Control as net.Dialer.Control so the check runs on the address that is
// actually dialled, after DNS resolution. An HTTP proxy would defeat that
// check, so a Sender with a Guard never uses one.
type Guard struct {
	// AllowPrivate lets private and CGNAT addresses through.
	AllowPrivate bool
	// AllowLoopback lets loopback addresses through.
	AllowLoopback bool
	// AllowCIDRs lets every address inside these prefixes through.
	AllowCIDRs []netip.Prefix
}

// Validate reports an invalid entry of AllowCIDRs.
func (g *Guard) Validate() error {
	for i, p := range g.AllowCIDRs {
		if !p.IsValid() {
			return fmt.Errorf("guard: allowed CIDR %d is not a valid prefix", i)
		}
	}
	return nil
}

// rangeRule is a refused range and the reason given for it.
type rangeRule struct {
	prefix netip.Prefix
	reason string
}

// Reasons, also used by tests.
const (
	reasonInvalid      = "invalid address"
	reasonUnspecified  = "unspecified address"
	reasonLoopback     = "loopback"
	reasonMetadata     = "cloud metadata service"
	reasonLinkLocal    = "link-local"
	reasonMulticast    = "multicast"
	reasonBroadcast    = "broadcast"
	reasonPrivate      = "private network"
	reasonCGNAT        = "carrier-grade NAT (shared address space)"
	reasonReserved     = "reserved or special-purpose range"
	reasonNonCanonical = "non-canonical IPv4 literal"
	reasonNumericTLD   = "host name ends in a number"
)

var (
	// metadataAddrs are the cloud metadata and host-agent endpoints,
	// refused under every allowance except AllowCIDRs.
	metadataAddrs = []netip.Addr{
		netip.MustParseAddr("169.254.169.254"), // AWS, GCP, Azure IMDS, OpenStack, Oracle, DigitalOcean
		netip.MustParseAddr("169.254.170.2"),   // AWS ECS task metadata and credentials
		netip.MustParseAddr("169.254.170.23"),  // AWS EKS Pod Identity agent
		netip.MustParseAddr("fd00:ec2::254"),   // AWS IMDS over IPv6 (Nitro)
		netip.MustParseAddr("fd00:ec2::23"),    // AWS EKS Pod Identity agent over IPv6
		netip.MustParseAddr("fd20:ce::254"),    // GCP metadata server over IPv6
		netip.MustParseAddr("168.63.129.16"),   // Azure WireServer (a public address)
		netip.MustParseAddr("100.100.100.200"), // Alibaba Cloud
		netip.MustParseAddr("192.0.0.192"),     // Oracle Cloud (legacy)
	}

	// metadataHosts are metadata services' DNS names, refused by CheckURL
	// before any lookup (they resolve to the addresses above, or to
	// something else behind a resolver the guard does not control).
	metadataHosts = map[string]bool{
		"metadata.google.internal":   true,
		"metadata.goog":              true,
		"metadata":                   true,
		"instance-data":              true,
		"instance-data.ec2.internal": true,
	}

	loopbackRules = []rangeRule{
		{netip.MustParsePrefix("127.0.0.0/8"), reasonLoopback},
		{netip.MustParsePrefix("::1/128"), reasonLoopback},
	}
	privateRules = []rangeRule{
		{netip.MustParsePrefix("10.0.0.0/8"), reasonPrivate},
		{netip.MustParsePrefix("172.16.0.0/12"), reasonPrivate},
		{netip.MustParsePrefix("192.168.0.0/16"), reasonPrivate},
		{netip.MustParsePrefix("100.64.0.0/10"), reasonCGNAT},
		{netip.MustParsePrefix("fc00::/7"), reasonPrivate},
		{netip.MustParsePrefix("fec0::/10"), reasonPrivate}, // deprecated site-local
		{netip.MustParsePrefix("64:ff9b:1::/48"), reasonPrivate},
	}
	// alwaysRules open only through AllowCIDRs.
	alwaysRules = []rangeRule{
		{netip.MustParsePrefix("0.0.0.0/8"), reasonUnspecified},
		{netip.MustParsePrefix("169.254.0.0/16"), reasonLinkLocal},
		{netip.MustParsePrefix("fe80::/10"), reasonLinkLocal},
		{netip.MustParsePrefix("224.0.0.0/4"), reasonMulticast},
		{netip.MustParsePrefix("ff00::/8"), reasonMulticast},
		{netip.MustParsePrefix("255.255.255.255/32"), reasonBroadcast},
		{netip.MustParsePrefix("240.0.0.0/4"), reasonReserved},
		{netip.MustParsePrefix("192.0.0.0/24"), reasonReserved},
		{netip.MustParsePrefix("192.0.2.0/24"), reasonReserved},
		{netip.MustParsePrefix("198.18.0.0/15"), reasonReserved},
		{netip.MustParsePrefix("198.51.100.0/24"), reasonReserved},
		{netip.MustParsePrefix("203.0.113.0/24"), reasonReserved},
		{netip.MustParsePrefix("::/96"), reasonReserved}, // deprecated IPv4-compatible
		{netip.MustParsePrefix("100::/64"), reasonReserved},
		{netip.MustParsePrefix("2001:db8::/32"), reasonReserved},
	}

	nat64Prefix = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour   = netip.MustParsePrefix("2002::/16")
)

// Check returns a *BlockedError when ip must not be dialled, nil otherwise.
// IPv4-mapped IPv6 addresses are unmapped first; NAT64 (64:ff9b::/96) and
// 6to4 (2002::/16) addresses are refused when the IPv4 address they embed
// is refused.
func (g *Guard) Check(ip netip.Addr) error {
	if !ip.IsValid() {
		return &BlockedError{Addr: "invalid", Reason: reasonInvalid}
	}
	shown := ip.String()
	ip = ip.WithZone("").Unmap()
	for _, p := range g.AllowCIDRs {
		if p.Contains(ip) {
			return nil
		}
	}
	if reason := g.refusal(ip); reason != "" {
		return &BlockedError{Addr: shown, Reason: reason}
	}
	if ip.Is6() {
		var embedded netip.Addr
		var via string
		b := ip.As16()
		switch {
		case nat64Prefix.Contains(ip):
			embedded, via = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}), "NAT64"
		case sixToFour.Contains(ip):
			embedded, via = netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}), "6to4"
		}
		if embedded.IsValid() {
			if err := g.Check(embedded); err != nil {
				var be *BlockedError
				if errors.As(err, &be) {
					return &BlockedError{Addr: shown, Reason: via + " address embedding " + be.Addr + ": " + be.Reason}
				}
				return err
			}
		}
	}
	return nil
}

// refusal returns why ip (unmapped, without zone) is refused, or "".
func (g *Guard) refusal(ip netip.Addr) string {
	if ip.IsUnspecified() {
		return reasonUnspecified
	}
	for _, m := range metadataAddrs {
		if ip == m {
			return reasonMetadata
		}
	}
	if r := match(loopbackRules, ip); r != "" {
		if !g.AllowLoopback {
			return r
		}
		return "" // ::1 would otherwise fall into ::/96 below
	}
	if !g.AllowPrivate {
		if r := match(privateRules, ip); r != "" {
			return r
		}
	}
	return match(alwaysRules, ip)
}

// match returns the reason of the first rule containing ip, or "".
func match(rules []rangeRule, ip netip.Addr) string {
	for _, r := range rules {
		if r.prefix.Contains(ip) {
			return r.reason
		}
	}
	return ""
}

// Control is a net.Dialer.Control hook: it checks the resolved address about
// to be connected and refuses it with a *BlockedError.
func (g *Guard) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &BlockedError{Addr: address, Reason: "dial address is not an IP and port"}
	}
	return g.Check(ap.Addr())
}

// CheckURL refuses a target URL before any connection: schemes other than
// http and https, userinfo, hosts that are IPv4 addresses in an encoding
// other than dotted-decimal (decimal "2130706433", octal "0177.0.0.1", hex
// "0x7f.1", short "127.1") or that end in a numeric label, and IP literals
// that Check refuses. Host names pass; their addresses are checked at dial
// time by Control.
func (g *Guard) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL itself may carry a token
		}
		return fmt.Errorf("parse target URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("target URL scheme %q is not http or https", u.Scheme)
	}
	if u.User != nil {
		return errors.New("target URL must not contain userinfo")
	}
	host := u.Hostname()
	if host == "" {
		return errors.New("target URL has no host")
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return g.Check(ip)
	}
	if strings.Contains(host, ":") {
		return &BlockedError{Addr: host, Reason: "malformed IPv6 literal"}
	}
	if metadataHosts[strings.ToLower(strings.TrimSuffix(host, "."))] {
		return &BlockedError{Addr: host, Reason: reasonMetadata}
	}
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	allNumeric := true
	for _, l := range labels {
		if !numericLabel(l) {
			allNumeric = false
		}
	}
	switch {
	case allNumeric:
		return &BlockedError{Addr: host, Reason: reasonNonCanonical}
	case numericLabel(labels[len(labels)-1]):
		return &BlockedError{Addr: host, Reason: reasonNumericTLD}
	}
	return nil
}

// numericLabel reports whether l is a number as inet_aton reads one:
// decimal, octal with a leading 0, or hex with 0x.
func numericLabel(l string) bool {
	if l == "" {
		return false
	}
	digits, isHex := l, false
	if len(l) >= 2 && l[0] == '0' && (l[1] == 'x' || l[1] == 'X') {
		digits, isHex = l[2:], true
	}
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		switch {
		case c >= '0' && c <= '9':
		case isHex && (c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'):
		default:
			return false
		}
	}
	return true
}
