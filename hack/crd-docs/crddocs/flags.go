package crddocs

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// Flag is one flag of a command's --help output.
type Flag struct {
	Group   string
	Name    string
	Type    string
	Default string
	Usage   string
}

var (
	groupLine   = regexp.MustCompile(`^(\S.*) flags:$`)
	flagLine    = regexp.MustCompile(`^\s+(?:-\S, )?--(\S+)(?: (\S+))?\s{2,}(.*)$`)
	defaultTail = regexp.MustCompile(`\s*\(default (.*)\)$`)
)

// ParseHelp reads the flags from a command's --help: pflag's FlagUsages
// ("      --name type   usage (default x)") under "<Group> flags:" headings.
func ParseHelp(out string) []Flag {
	var flags []Flag
	group := ""
	for _, line := range strings.Split(out, "\n") {
		if m := groupLine.FindStringSubmatch(line); m != nil {
			group = m[1]
			continue
		}
		m := flagLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		f := Flag{Group: group, Name: m[1], Type: m[2], Usage: strings.TrimSpace(m[3])}
		if f.Type == "" {
			f.Type = "bool"
		}
		if d := defaultTail.FindStringSubmatch(f.Usage); d != nil {
			f.Default = strings.Trim(d[1], `"`)
			f.Usage = strings.TrimSuffix(f.Usage, d[0])
		}
		flags = append(flags, f)
	}
	return flags
}

// FlagTable renders flags as markdown tables, one per group in the order
// of the help text.
func FlagTable(flags []Flag) string {
	var b strings.Builder
	group := "\x00"
	for _, f := range flags {
		if f.Group != group {
			if group != "\x00" {
				b.WriteString("\n")
			}
			group = f.Group
			if group != "" {
				fmt.Fprintf(&b, "**%s flags**\n\n", group)
			}
			b.WriteString("| Flag | Type | Default | Description |\n|---|---|---|---|\n")
		}
		def := ""
		if f.Default != "" {
			def = code(f.Default)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", code("--"+f.Name), f.Type, cell(def), cell(f.Usage))
	}
	return b.String()
}

// BuildBinary builds ./cmd/mira-operator of the module at root into dir.
func BuildBinary(root, dir string) (string, error) {
	bin := filepath.Join(dir, "mira-operator")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/mira-operator")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/mira-operator: %w\n%s", err, out)
	}
	return bin, nil
}

// Help runs "<bin> <command> --help" and returns its output.
func Help(bin, command string) (string, error) {
	cmd := exec.Command(bin, command, "--help")
	cmd.Env = append(os.Environ(), "KUBECONFIG=/nonexistent")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "mira-operator "+command+" [flags]") {
		return "", fmt.Errorf("%s %s --help printed no flag list (%v):\n%s", bin, command, err, out)
	}
	return string(out), nil
}

// FlagCommands are the commands whose flag tables docs/operations.md holds.
var FlagCommands = []string{"manager", "receiver"}

// Block markers in docs/operations.md.
func blockMarkers(name string) (begin, end string) {
	return "<!-- BEGIN GENERATED " + name + " (go run ./hack/crd-docs) -->",
		"<!-- END GENERATED " + name + " -->"
}

// BlockName is the generated block of a command's flags.
func BlockName(command string) string { return command + "-flags" }

// ReplaceBlock replaces the content between the markers of block name in
// doc with content.
func ReplaceBlock(doc []byte, name, content string) ([]byte, error) {
	begin, end := blockMarkers(name)
	i := bytes.Index(doc, []byte(begin))
	j := bytes.Index(doc, []byte(end))
	if i < 0 || j < 0 || j < i {
		return nil, fmt.Errorf("markers %q … %q not found", begin, end)
	}
	var out bytes.Buffer
	out.Write(doc[:i+len(begin)])
	out.WriteString("\n")
	out.WriteString(content)
	out.Write(doc[j:])
	return out.Bytes(), nil
}

// RenderFlagBlocks returns doc with every command's flag table brought up
// to date from the binary bin.
func RenderFlagBlocks(doc []byte, bin string) ([]byte, error) {
	for _, c := range FlagCommands {
		help, err := Help(bin, c)
		if err != nil {
			return nil, err
		}
		flags := ParseHelp(help)
		if len(flags) == 0 {
			return nil, fmt.Errorf("%s -h: no flags parsed", c)
		}
		doc, err = ReplaceBlock(doc, BlockName(c), FlagTable(flags))
		if err != nil {
			return nil, err
		}
	}
	return doc, nil
}
