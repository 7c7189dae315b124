package main

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Suite is one named benchmark. A suite lives in its own file of this package
// and registers itself from init():
//
//	func init() {
//		Register(Suite{Name: "delivery", Title: "Delivery throughput", Run: runDelivery})
//	}
//
// Run measures and returns the section that replaces the suite's part of the
// output file; returning an error keeps the section of the previous run.
type Suite struct {
	// Name selects the suite with -only and names its markers in the
	// output file; lower case letters, digits and dashes.
	Name string
	// Title is the section's heading.
	Title string
	// Run performs the measurement. ctx is cancelled on Ctrl-C.
	Run func(ctx context.Context) (Section, error)
}

// Section is what a suite reports.
type Section struct {
	// Body is markdown: the settings used, a table of figures (see Table)
	// and a short interpretation.
	Body string
	// Goals are the targets the figures are held against.
	Goals []Goal
}

// Goal is one target and whether this run met it.
type Goal struct {
	// Text states the target, e.g. "1,000 endpoints Ready in ≤ 10 s".
	Text string
	// Measured is the figure it was judged on, e.g. "7.3 s".
	Measured string
	Pass     bool
}

var (
	suites     = map[string]Suite{}
	validName  = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	reservedID = headerName
)

// Register adds a suite; it panics on a duplicate or malformed name so the
// mistake shows at the first run.
func Register(s Suite) {
	if !validName.MatchString(s.Name) || s.Name == reservedID {
		panic(fmt.Sprintf("bench: invalid suite name %q", s.Name))
	}
	if s.Run == nil {
		panic(fmt.Sprintf("bench: suite %q has no Run", s.Name))
	}
	if _, dup := suites[s.Name]; dup {
		panic(fmt.Sprintf("bench: suite %q registered twice", s.Name))
	}
	if s.Title == "" {
		s.Title = s.Name
	}
	suites[s.Name] = s
}

// suiteNames returns the registered names, sorted.
func suiteNames() []string {
	names := make([]string, 0, len(suites))
	for n := range suites {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Table renders a markdown table. Cells are used as given.
func Table(header []string, rows [][]string) string {
	var b strings.Builder
	line := func(cells []string) {
		b.WriteString("|")
		for _, c := range cells {
			b.WriteString(" " + strings.ReplaceAll(c, "|", `\|`) + " |")
		}
		b.WriteString("\n")
	}
	line(header)
	sep := make([]string, len(header))
	for i := range sep {
		sep[i] = "---"
	}
	line(sep)
	for _, r := range rows {
		line(r)
	}
	return b.String()
}
