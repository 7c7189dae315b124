package receiver_test

import (
	"net/netip"
	"testing"

	"github.com/mira/mira-operator/internal/receiver"
)

// --allow-private-targets no longer opens loopback; --allow-loopback-targets
// does, and neither opens cloud metadata.
func TestGuardFlags(t *testing.T) {
	tests := []struct {
		args    []string
		ip      string
		allowed bool
	}{
		{nil, "10.1.2.3", false},
		{nil, "127.0.0.1", false},
		{[]string{"--allow-private-targets"}, "10.1.2.3", true},
		{[]string{"--allow-private-targets"}, "127.0.0.1", false},
		{[]string{"--allow-private-targets"}, "::1", false},
		{[]string{"--allow-loopback-targets"}, "127.0.0.1", true},
		{[]string{"--allow-loopback-targets"}, "::1", true},
		{[]string{"--allow-loopback-targets"}, "10.1.2.3", false},
		{[]string{"--allow-private-targets", "--allow-loopback-targets"}, "169.254.169.254", false},
		{[]string{"--allow-private-targets", "--allow-loopback-targets"}, "168.63.129.16", false},
		{[]string{"--allowed-cidrs=127.0.0.0/8"}, "127.0.0.1", true},
		{[]string{"--allowed-cidrs=168.63.129.16/32"}, "168.63.129.16", true},
	}
	for _, tc := range tests {
		var o receiver.Options
		fs := flagSetForDefaults()
		o.BindFlags(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		g, err := o.Guard()
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Check(netip.MustParseAddr(tc.ip)); (err == nil) != tc.allowed {
			t.Errorf("%v: %s allowed %v (%v), want %v", tc.args, tc.ip, err == nil, err, tc.allowed)
		}
	}
}
