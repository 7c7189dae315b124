// Command crd-docs writes docs/crd-reference.md from the CRDs in
// config/crd/bases, and the flag tables in docs/operations.md from
// `mira-operator manager -h` and `mira-operator receiver -h`. Run it from
// the repository root after `make manifests`:
//
//	go run ./hack/crd-docs
//
// test/docs fails while either file is stale.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"

	"github.com/mira/mira-operator/hack/crd-docs/crddocs"
)

func main() {
	crdDir := flag.String("crd-dir", "config/crd/bases", "directory of the generated CRD manifests")
	out := flag.String("out", "docs/crd-reference.md", "CRD reference to write")
	ops := flag.String("operations", "docs/operations.md", "operations guide whose generated flag tables to update (empty: skip)")
	flag.Parse()
	if err := run(*crdDir, *out, *ops); err != nil {
		fmt.Fprintln(os.Stderr, "crd-docs:", err)
		os.Exit(1)
	}
}

func run(crdDir, out, ops string) error {
	ref, err := crddocs.Render(crdDir)
	if err != nil {
		return err
	}
	if err := writeIfChanged(out, ref); err != nil {
		return err
	}
	if ops == "" {
		return nil
	}
	doc, err := os.ReadFile(ops)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "crd-docs-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	bin, err := crddocs.BuildBinary(".", tmp)
	if err != nil {
		return err
	}
	updated, err := crddocs.RenderFlagBlocks(doc, bin)
	if err != nil {
		return fmt.Errorf("%s: %w", ops, err)
	}
	return writeIfChanged(ops, updated)
}

func writeIfChanged(path string, b []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
		return nil
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return err
	}
	fmt.Println("wrote", path)
	return nil
}
