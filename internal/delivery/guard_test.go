package delivery

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

var loopbackCIDR = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

func TestGuardCheck(t *testing.T) {
	strict := &Guard{}
	open := &Guard{AllowPrivate: true, AllowLoopback: true}
	tests := []struct {
		name   string
		guard  *Guard
		ip     string
		reason string // "" means allowed
	}{
		{"AWS/GCP metadata", strict, "169.254.169.254", reasonMetadata},
		{"metadata under AllowPrivate+AllowLoopback", open, "169.254.169.254", reasonMetadata},
		{"AWS IPv6 metadata under AllowPrivate", open, "fd00:ec2::254", reasonMetadata},
		{"Alibaba metadata under AllowPrivate", open, "100.100.100.200", reasonMetadata},
		{"ECS task metadata", open, "169.254.170.2", reasonMetadata},
		{"EKS Pod Identity agent", open, "169.254.170.23", reasonMetadata},
		{"EKS Pod Identity agent IPv6", open, "fd00:ec2::23", reasonMetadata},
		{"GCP IPv6 metadata under AllowPrivate", open, "fd20:ce::254", reasonMetadata},
		{"GCP IPv6 metadata strict", strict, "fd20:ce::254", reasonMetadata},
		{"Azure WireServer (public range)", strict, "168.63.129.16", reasonMetadata},
		{"Azure WireServer under AllowPrivate", open, "168.63.129.16", reasonMetadata},
		{"Azure WireServer neighbour is public", strict, "168.63.129.17", ""},
		{"Oracle legacy metadata", open, "192.0.0.192", reasonMetadata},
		{"mapped Azure WireServer", open, "::ffff:168.63.129.16", reasonMetadata},
		{"loopback refused under AllowPrivate alone", &Guard{AllowPrivate: true}, "127.0.0.1", reasonLoopback},
		{"IPv6 loopback refused under AllowPrivate alone", &Guard{AllowPrivate: true}, "::1", reasonLoopback},
		{"private refused under AllowLoopback alone", &Guard{AllowLoopback: true}, "10.1.2.3", reasonPrivate},
		{"loopback under AllowLoopback alone", &Guard{AllowLoopback: true}, "127.0.0.1", ""},
		{"metadata under AllowLoopback alone", &Guard{AllowLoopback: true}, "169.254.169.254", reasonMetadata},
		{"mapped metadata", open, "::ffff:169.254.169.254", reasonMetadata},
		{"loopback", strict, "127.0.0.1", reasonLoopback},
		{"loopback elsewhere in 127/8", strict, "127.45.6.7", reasonLoopback},
		{"IPv6 loopback", strict, "::1", reasonLoopback},
		{"IPv4-mapped loopback", strict, "::ffff:127.0.0.1", reasonLoopback},
		{"IPv4-mapped loopback, hex form", strict, "::ffff:7f00:1", reasonLoopback},
		{"unspecified v4", strict, "0.0.0.0", reasonUnspecified},
		{"unspecified v6", strict, "::", reasonUnspecified},
		{"this network 0/8", strict, "0.1.2.3", reasonUnspecified},
		{"link-local v4", strict, "169.254.1.1", reasonLinkLocal},
		{"link-local v4 under AllowPrivate", open, "169.254.1.1", reasonLinkLocal},
		{"link-local v6", strict, "fe80::1", reasonLinkLocal},
		{"link-local v6 with zone", strict, "fe80::1%eth0", reasonLinkLocal},
		{"multicast v4", strict, "224.0.0.251", reasonMulticast},
		{"multicast v6", strict, "ff02::1", reasonMulticast},
		{"broadcast", strict, "255.255.255.255", reasonBroadcast},
		{"class E", strict, "240.1.2.3", reasonReserved},
		{"10/8", strict, "10.1.2.3", reasonPrivate},
		{"172.16/12 low", strict, "172.16.0.1", reasonPrivate},
		{"172.16/12 high", strict, "172.31.255.255", reasonPrivate},
		{"192.168/16", strict, "192.168.1.1", reasonPrivate},
		{"CGNAT", strict, "100.64.0.1", reasonCGNAT},
		{"ULA", strict, "fd12:3456::1", reasonPrivate},
		{"ULA fc00", strict, "fc00::1", reasonPrivate},
		{"IPv4-compatible loopback", strict, "::127.0.0.1", reasonReserved},
		{"NAT64 of loopback", strict, "64:ff9b::7f00:1", "NAT64 address embedding 127.0.0.1: " + reasonLoopback},
		{"NAT64 of metadata", open, "64:ff9b::a9fe:a9fe", "NAT64 address embedding 169.254.169.254: " + reasonMetadata},
		{"NAT64 of 10/8", strict, "64:ff9b::a00:1", "NAT64 address embedding 10.0.0.1: " + reasonPrivate},
		{"6to4 of loopback", strict, "2002:7f00:1::1", "6to4 address embedding 127.0.0.1: " + reasonLoopback},
		{"documentation range", strict, "192.0.2.10", reasonReserved},
		{"invalid", strict, "", reasonInvalid},

		{"public v4", strict, "93.184.215.14", ""},
		{"public v6", strict, "2606:4700:4700::1111", ""},
		{"NAT64 of public", strict, "64:ff9b::808:808", ""},
		{"172.32 is public", strict, "172.32.0.1", ""},
		{"private under AllowPrivate", &Guard{AllowPrivate: true}, "10.1.2.3", ""},
		{"ULA under AllowPrivate", &Guard{AllowPrivate: true}, "fd12::1", ""},
		{"loopback under AllowLoopback", &Guard{AllowLoopback: true}, "127.0.0.1", ""},
		{"::1 under AllowLoopback", &Guard{AllowLoopback: true}, "::1", ""},
		{"loopback under AllowCIDRs", &Guard{AllowCIDRs: loopbackCIDR}, "127.0.0.1", ""},
		{"mapped loopback under AllowCIDRs", &Guard{AllowCIDRs: loopbackCIDR}, "::ffff:127.0.0.1", ""},
		{"metadata only through AllowCIDRs", &Guard{AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("169.254.169.254/32")}}, "169.254.169.254", ""},
		{"AllowCIDRs is not a blanket pass", &Guard{AllowCIDRs: loopbackCIDR}, "10.0.0.1", reasonPrivate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ip netip.Addr
			if tt.ip != "" {
				ip = netip.MustParseAddr(tt.ip)
			}
			err := tt.guard.Check(ip)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Check(%s) = %v, want allowed", tt.ip, err)
				}
				return
			}
			var be *BlockedError
			if !errors.As(err, &be) {
				t.Fatalf("Check(%s) = %v, want *BlockedError", tt.ip, err)
			}
			if be.Reason != tt.reason {
				t.Fatalf("Check(%s) reason = %q, want %q", tt.ip, be.Reason, tt.reason)
			}
		})
	}
}

func TestGuardCheckURL(t *testing.T) {
	strict := &Guard{}
	tests := []struct {
		name    string
		url     string
		wantErr string // "" means allowed
		blocked bool   // want a *BlockedError
	}{
		{"decimal IPv4", "http://2130706433/hook", reasonNonCanonical, true},
		{"octal IPv4", "http://0177.0.0.1/hook", reasonNonCanonical, true},
		{"hex short IPv4", "http://0x7f.1/hook", reasonNonCanonical, true},
		{"hex whole IPv4", "http://0x7f000001/hook", reasonNonCanonical, true},
		{"short IPv4", "http://127.1/hook", reasonNonCanonical, true},
		{"trailing dot IPv4", "http://127.0.0.1./hook", reasonNonCanonical, true},
		{"octal that looks public", "http://010.0.0.1/", reasonNonCanonical, true},
		{"numeric last label", "https://hooks.0x10/", reasonNumericTLD, true},
		{"canonical loopback literal", "http://127.0.0.1:8080/hook", reasonLoopback, true},
		{"bracketed mapped loopback", "http://[::ffff:127.0.0.1]/hook", reasonLoopback, true},
		{"bracketed IPv6 loopback", "http://[::1]:9000/", reasonLoopback, true},
		{"metadata literal", "http://169.254.169.254/latest/meta-data/", reasonMetadata, true},
		{"GCP metadata by name", "http://metadata.google.internal/computeMetadata/v1/", reasonMetadata, true},
		{"GCP metadata by name, trailing dot and case", "http://Metadata.Google.Internal./", reasonMetadata, true},
		{"GCP metadata.goog", "http://metadata.goog/", reasonMetadata, true},
		{"bare metadata name", "http://metadata/computeMetadata/v1/", reasonMetadata, true},
		{"AWS instance-data name", "http://instance-data.ec2.internal/latest/", reasonMetadata, true},
		{"Azure WireServer literal", "http://168.63.129.16/machine?comp=goalstate", reasonMetadata, true},
		{"GCP IPv6 metadata literal", "http://[fd20:ce::254]/", reasonMetadata, true},
		{"unspecified literal", "http://0.0.0.0:80/", reasonUnspecified, true},
		{"file scheme", "file:///etc/passwd", `scheme "file"`, false},
		{"ftp scheme", "ftp://example.com/", `scheme "ftp"`, false},
		{"gopher scheme", "gopher://example.com/", `scheme "gopher"`, false},
		{"userinfo", "https://user:pass@example.com/", "userinfo", false},
		{"no host", "http:///hook", "no host", false},

		{"public name", "https://hooks.example.com/mira?token=x", "", false},
		{"public literal", "http://93.184.215.14:8080/x", "", false},
		{"name with digits", "https://hooks-2.example.com/", "", false},
		{"name starting with digits", "https://1password.example.com/", "", false},
		{"localhost passes here; Control refuses it at dial time", "http://localhost:1/", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := strict.CheckURL(tt.url)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckURL(%s) = %v, want allowed", tt.url, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("CheckURL(%s) = %v, want an error containing %q", tt.url, err, tt.wantErr)
			}
			var be *BlockedError
			if errors.As(err, &be) != tt.blocked {
				t.Fatalf("CheckURL(%s) = %T, want *BlockedError: %v", tt.url, err, tt.blocked)
			}
			if strings.Contains(err.Error(), "pass") {
				t.Fatalf("error echoes userinfo: %v", err)
			}
		})
	}
}

func TestGuardControl(t *testing.T) {
	g := &Guard{}
	tests := []struct {
		network, address string
		blocked          bool
	}{
		{"tcp4", "127.0.0.1:80", true},
		{"tcp6", "[::1]:443", true},
		{"tcp6", "[::ffff:169.254.169.254]:80", true},
		{"tcp4", "10.0.0.1:443", true},
		{"tcp4", "not-an-address", true},
		{"tcp4", "93.184.215.14:443", false}, // checked, never dialled
	}
	for _, tt := range tests {
		err := g.Control(tt.network, tt.address, nil)
		var be *BlockedError
		if errors.As(err, &be) != tt.blocked {
			t.Errorf("Control(%s, %s) = %v, want blocked %v", tt.network, tt.address, err, tt.blocked)
		}
	}
}

// A name that resolves to loopback passes CheckURL and is refused on the
// resolved address at dial time.
func TestGuardRefusesLocalhostAtDialTime(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	d := &net.Dialer{Timeout: 5 * time.Second, Control: (&Guard{}).Control}
	conn, err := d.DialContext(context.Background(), "tcp", net.JoinHostPort("localhost", port))
	if err == nil {
		_ = conn.Close()
		t.Fatal("dial to localhost succeeded through the default guard")
	}
	var be *BlockedError
	if !errors.As(err, &be) || be.Reason != reasonLoopback {
		t.Fatalf("dial error = %v, want a loopback *BlockedError", err)
	}

	allowed := &net.Dialer{Timeout: 5 * time.Second, Control: (&Guard{AllowCIDRs: loopbackCIDR}).Control}
	conn, err = allowed.DialContext(context.Background(), "tcp4", net.JoinHostPort("localhost", port))
	if err != nil {
		t.Fatalf("dial with 127.0.0.0/8 allowed: %v", err)
	}
	_ = conn.Close()
}

func TestGuardValidate(t *testing.T) {
	if err := (&Guard{AllowCIDRs: []netip.Prefix{{}}}).Validate(); err == nil {
		t.Fatal("zero prefix accepted")
	}
	if err := (&Guard{AllowCIDRs: loopbackCIDR}).Validate(); err != nil {
		t.Fatal(err)
	}
}
