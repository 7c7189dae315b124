package version

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// stamp sets the linker variables for one test, as -ldflags -X would.
func stamp(t *testing.T, v, c, d string) {
	t.Helper()
	ov, oc, od := Version, Commit, Date
	Version, Commit, Date = v, c, d
	t.Cleanup(func() { Version, Commit, Date = ov, oc, od })
}

func TestPrint(t *testing.T) {
	stamp(t, "v1.2.3", "0123456789abcdef0123456789abcdef01234567", "2026-11-30T21:00:00Z")
	var text bytes.Buffer
	if err := Print(&text, false); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Version:    v1.2.3\n", "Commit:     0123456789abcdef0123456789abcdef01234567\n", "Build date: 2026-11-30T21:00:00Z\n", "Go:         go1."} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("Print output lacks %q:\n%s", want, text.String())
		}
	}
	var js bytes.Buffer
	if err := Print(&js, true); err != nil {
		t.Fatal(err)
	}
	var got Info
	if err := json.Unmarshal(js.Bytes(), &got); err != nil {
		t.Fatalf("Print JSON: %v\n%s", err, js.String())
	}
	if got.Version != "v1.2.3" || got.Commit != "0123456789abcdef0123456789abcdef01234567" || got.Date != "2026-11-30T21:00:00Z" {
		t.Errorf("Print JSON = %+v", got)
	}
}

func TestBuildInfoMetric(t *testing.T) {
	stamp(t, "v1.2.3", "abc123", "2026-11-30T21:00:00Z")
	reg := prometheus.NewRegistry()
	if err := Register(reg); err != nil {
		t.Fatal(err)
	}
	if err := Register(reg); err != nil {
		t.Fatalf("a second Register in one process: %v", err)
	}
	want := `# HELP mira_build_info The running build of mira-operator: 1, with its version, commit and Go version as labels.
# TYPE mira_build_info gauge
mira_build_info{commit="abc123",go_version="` + Get().GoVersion + `",version="v1.2.3"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "mira_build_info"); err != nil {
		t.Error(err)
	}
}
