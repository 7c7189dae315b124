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

// Flag is one flag of a command's -h output.
type Flag struct {
	Name    string
	Type    string
	Default string
	Usage   string
}

var (
	flagLine    = regexp.MustCompile(`^  -(\S+)(?: (\S+))?$`)
	defaultTail = regexp.MustCompile(`\s*\(default (.*)\)$`)
)

// ParseHelp reads the flags from the output of a Go flag.FlagSet's
// PrintDefaults ("  -name type" and "    \tusage" lines).
func ParseHelp(out string) []Flag {
	var flags []Flag
	for _, line := range strings.Split(out, "\n") {
		if m := flagLine.FindStringSubmatch(line); m != nil {
			typ := m[2]
			if typ == "" {
				typ = "bool"
			}
			flags = append(flags, Flag{Name: m[1], Type: typ})
			continue
		}
		if strings.HasPrefix(line, "    \t") && len(flags) > 0 {
			f := &flags[len(flags)-1]
			u := strings.TrimSpace(line)
			if f.Usage != "" {
				u = f.Usage + " " + u
			}
			f.Usage = u
		}
	}
	for i := range flags {
		if m := defaultTail.FindStringSubmatch(flags[i].Usage); m != nil {
			flags[i].Default = strings.Trim(m[1], `"`)
			flags[i].Usage = strings.TrimSuffix(flags[i].Usage, m[0])
		}
	}
	return flags
}

// FlagTable renders flags as a markdown table.
func FlagTable(flags []Flag) string {
	var b strings.Builder
	b.WriteString("| Flag | Type | Default | Description |\n|---|---|---|---|\n")
	for _, f := range flags {
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

// Help runs "<bin> <command> -h" and returns its output; -h exits non-zero
// by design, so only a missing flag list is an error.
func Help(bin, command string) (string, error) {
	cmd := exec.Command(bin, command, "-h")
	cmd.Env = append(os.Environ(), "KUBECONFIG=/nonexistent")
	out, _ := cmd.CombinedOutput()
	if !strings.Contains(string(out), "Usage of "+command) {
		return "", fmt.Errorf("%s %s -h printed no flag list:\n%s", bin, command, out)
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
