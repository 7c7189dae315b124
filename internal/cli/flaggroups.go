package cli

import (
	"fmt"
	"io"

	"github.com/spf13/pflag"
)

// flagGroupAnnotation names a flag's group in the help text (the server
// commands use the same key).
const flagGroupAnnotation = "mira.platform.mira.io/flag-group"

// inGroup puts the named flags of fs in a help group.
func inGroup(fs *pflag.FlagSet, group string, names ...string) {
	for _, n := range names {
		_ = fs.SetAnnotation(n, flagGroupAnnotation, []string{group})
	}
}

// printFlagGroups prints fs's flags in their groups, in the order each
// group first appears; flags without a group come first under "Flags:".
func printFlagGroups(w io.Writer, fs *pflag.FlagSet) {
	sets := map[string]*pflag.FlagSet{}
	order := []string{""}
	fs.VisitAll(func(f *pflag.Flag) {
		g := ""
		if v := f.Annotations[flagGroupAnnotation]; len(v) > 0 {
			g = v[0]
		}
		if sets[g] == nil {
			sets[g] = pflag.NewFlagSet(g, pflag.ContinueOnError)
			sets[g].SortFlags = false
			if g != "" {
				order = append(order, g)
			}
		}
		sets[g].AddFlag(f)
	})
	for _, g := range order {
		if sets[g] == nil {
			continue
		}
		heading := "Flags:"
		if g != "" {
			heading = g + " flags:"
		}
		fmt.Fprintf(w, "\n%s\n%s", heading, sets[g].FlagUsages())
	}
}
