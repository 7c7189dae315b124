package v1alpha1

import (
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestNamesFromIDs(t *testing.T) {
	for _, tc := range []struct{ id, name string }{
		{"dlv_0123456789abcdef0123456789", "dlv-0123456789abcdef0123456789"},
		{"rpt_0123456789abcdef01234567", "rpt-0123456789abcdef01234567"},
		{"dlv_00000000000000000000000a01", "dlv-00000000000000000000000a01"},
	} {
		if got := NameFromID(tc.id); got != tc.name {
			t.Errorf("NameFromID(%q) = %q, want %q", tc.id, got, tc.name)
		}
		if errs := validation.IsDNS1123Subdomain(tc.name); len(errs) > 0 {
			t.Errorf("%q is not a valid object name: %v", tc.name, errs)
		}
		if got := IDFromName(tc.name); got != tc.id {
			t.Errorf("IDFromName(%q) = %q, want %q", tc.name, got, tc.id)
		}
	}
	// Names that are not mapped ids come back unchanged.
	for _, n := range []string{"custom-id", "evt-1", "dlv"} {
		if got := IDFromName(n); got != n {
			t.Errorf("IDFromName(%q) = %q", n, got)
		}
	}
}
