package controllers_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/mira/mira-operator/internal/testenv"
)

func timeParse(s string) (*metav1.Duration, error) {
	d, err := time.ParseDuration(s)
	return &metav1.Duration{Duration: d}, err
}

// TestSamplesAreAccepted creates every object of config/samples.
func TestSamplesAreAccepted(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), "config", "samples", "platform_*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples found: %v", err)
	}
	created := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
		for {
			u := &unstructured.Unstructured{}
			if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if len(u.Object) == 0 {
				continue
			}
			u.SetNamespace(ns)
			if err := k8s.Create(ctx, u); err != nil {
				t.Fatalf("%s: %s %s refused: %v", filepath.Base(f), u.GetKind(), u.GetName(), err)
			}
			created++
		}
	}
	if created < 4 {
		t.Fatalf("created %d sample objects, want at least 4", created)
	}
	waitReady(t, ns, "coaching-dashboard", metav1.ConditionTrue, "Valid")
	waitReady(t, ns, "crm-sync", metav1.ConditionTrue, "Valid")
}
