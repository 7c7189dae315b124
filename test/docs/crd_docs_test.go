package docs

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/hack/crd-docs/crddocs"
)

// root is the repository root, relative to this package.
const root = "../.."

func TestCRDReferenceIsCurrent(t *testing.T) {
	want, err := crddocs.Render(filepath.Join(root, "config/crd/bases"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, "docs/crd-reference.md"))
	if err != nil {
		t.Fatalf("read docs/crd-reference.md: %v; %s", err, crddocs.RegenerateHint)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("docs/crd-reference.md is stale: %s\n%s", crddocs.RegenerateHint, firstDiff(got, want))
	}
}

// TestOperatorDefaultsMatchCode checks the "Default X." the API doc comments
// announce (and the CRD reference shows) against the defaults the code applies.
func TestOperatorDefaultsMatchCode(t *testing.T) {
	got, err := crddocs.OperatorDefaults(filepath.Join(root, "config/crd/bases"), "WebhookEndpoint")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		".spec.delivery.timeout":          short(miraapi.DefaultTimeout),
		".spec.delivery.maxAttempts":      fmt.Sprint(miraapi.DefaultMaxAttempts),
		".spec.delivery.maxRetryDuration": short(miraapi.DefaultMaxRetryDuration),
		".spec.delivery.backoff.initial":  short(miraapi.DefaultBackoffInitial),
		".spec.delivery.backoff.max":      short(miraapi.DefaultBackoffMax),
		".spec.delivery.backoff.jitter":   fmt.Sprint(miraapi.DefaultJitterPercent),
		".spec.delivery.maxConcurrency":   fmt.Sprint(miraapi.DefaultMaxConcurrency),
		".spec.delivery.disableAfter":     short(miraapi.DefaultDisableAfter),
	}
	for path, w := range want {
		if got[path] != w {
			t.Errorf("%s: the description says Default %q, the code applies %q", path, got[path], w)
		}
	}
	for path, g := range got {
		if _, ok := want[path]; !ok {
			t.Errorf("%s: the description announces Default %q that this test does not check against the code", path, g)
		}
	}
}

func TestFlagTablesAreCurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	path := filepath.Join(root, "docs/operations.md")
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bin, err := crddocs.BuildBinary(root, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	want, err := crddocs.RenderFlagBlocks(doc, bin)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(doc, want) {
		t.Fatalf("the flag tables in docs/operations.md are stale: %s\n%s", crddocs.RegenerateHint, firstDiff(doc, want))
	}
}

// short formats a duration as the API comments do: 15s, 1h, 72h.
func short(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}

// firstDiff describes the first line where got and want differ.
func firstDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("first difference at line %d:\n  committed: %q\n  generated: %q", i+1, gl, wl)
		}
	}
	return "the files differ"
}
