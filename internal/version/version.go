// Package version holds the build's version, commit and date, stamped by the
// linker: `make build` and the Dockerfile pass
//
//	-ldflags "-X github.com/mira/mira-operator/internal/version.Version=v1.2.3
//	          -X github.com/mira/mira-operator/internal/version.Commit=<sha>
//	          -X github.com/mira/mira-operator/internal/version.Date=<RFC 3339 UTC>"
//
// A plain `go build` leaves the defaults below; Get then falls back to the
// VCS information Go embeds in the binary, so even an unstamped build says
// which commit it is.
package version

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Set with -ldflags -X at build time.
var (
	// Version is the release, as `git describe --tags --always --dirty` prints it.
	Version = "dev"
	// Commit is the full git commit hash.
	Commit = "unknown"
	// Date is the UTC build time, RFC 3339.
	Date = "unknown"
)

// Info is what `mira-operator version` prints.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Date      string `json:"date"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// Get returns the stamped build information, completed from the VCS
// settings Go records in the binary when the linker did not stamp a commit.
func Get() Info {
	info := Info{Version: Version, Commit: Commit, Date: Date, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if info.Commit != "unknown" {
		return info
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return info
	}
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Commit = s.Value
		case "vcs.time":
			if info.Date == "unknown" {
				info.Date = s.Value
			}
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && info.Commit != "unknown" {
		info.Commit += "-dirty"
	}
	return info
}

// Print writes the build information, one "key: value" per line, or as
// JSON when asJSON.
func Print(w io.Writer, asJSON bool) error {
	i := Get()
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(i)
	}
	_, err := fmt.Fprintf(w, "Version:    %s\nCommit:     %s\nBuild date: %s\nGo:         %s\nPlatform:   %s\n",
		i.Version, i.Commit, i.Date, i.GoVersion, i.Platform)
	return err
}

// BuildInfo is the mira_build_info gauge: always 1, the build in its labels,
// so dashboards can join it to other series and alerts can spot mixed
// versions during a rollout.
func BuildInfo() prometheus.Collector {
	i := Get()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "mira_build_info",
		Help:        "The running build of mira-operator: 1, with its version, commit and Go version as labels.",
		ConstLabels: prometheus.Labels{"version": i.Version, "commit": i.Commit, "go_version": i.GoVersion},
	})
	g.Set(1)
	return g
}

// Register adds mira_build_info to reg (the controller-runtime
// metrics.Registry the manager and the receiver serve). Registering twice
// in one process is not an error.
func Register(reg prometheus.Registerer) error {
	if err := reg.Register(BuildInfo()); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			return nil
		}
		return fmt.Errorf("register mira_build_info: %w", err)
	}
	return nil
}
