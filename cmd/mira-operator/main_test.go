package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/mira/mira-operator/internal/version"
)

// The binary built the way `make build` stamps it reports the stamped
// values, as `mira-operator version` and as `kubectl mira version`.
func TestVersionStampedByLdflags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "mira-operator")
	const pkg = "github.com/mira/mira-operator/internal/version"
	ldflags := "-X " + pkg + ".Version=v9.8.7-test -X " + pkg + ".Commit=0123abcd -X " + pkg + ".Date=2026-11-30T21:00:00Z"
	build := exec.Command("go", "build", "-ldflags", ldflags, "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	plugin := filepath.Join(dir, "kubectl-mira")
	if err := os.Symlink(bin, plugin); err != nil {
		t.Fatal(err)
	}
	for _, argv := range [][]string{{bin, "version", "-o", "json"}, {plugin, "version", "-o", "json"}} {
		out, err := exec.Command(argv[0], argv[1:]...).Output()
		if err != nil {
			t.Fatalf("%s %v: %v", filepath.Base(argv[0]), argv[1:], err)
		}
		var got version.Info
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%s version -o json printed %q: %v", filepath.Base(argv[0]), out, err)
		}
		if got.Version != "v9.8.7-test" || got.Commit != "0123abcd" || got.Date != "2026-11-30T21:00:00Z" {
			t.Errorf("%s version = %+v, want the stamped v9.8.7-test, 0123abcd, 2026-11-30T21:00:00Z", filepath.Base(argv[0]), got)
		}
	}
}
