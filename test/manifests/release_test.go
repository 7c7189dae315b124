package manifests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// installYAML renders dist/install.yaml the way `make release` does
// (hack/release.sh install IMAGE), into a file.
func installYAML(t *testing.T, img string) string {
	t.Helper()
	cmd := exec.Command("bash", filepath.Join(root, "hack", "release.sh"), "install", img)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "BIN="+filepath.Join(root, "bin"))
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("hack/release.sh install %s: %v\n%s", img, err, stderr)
	}
	path := filepath.Join(t.TempDir(), "install.yaml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// dist/install.yaml pins the release image in both Deployments, holds
// everything an install needs, and kubectl accepts it with a server-side
// dry run against the real API server, without warnings.
func TestInstallYAMLDryRun(t *testing.T) {
	for _, img := range []string{"ghcr.io/mira/mira-operator:v9.8.7", "registry.example.com:5000/mira/operator:v9.8.7@" + digest} {
		t.Run(img, func(t *testing.T) {
			path := installYAML(t, img)
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := decode(raw)
			if err != nil {
				t.Fatal(err)
			}
			got := kindNames(objs, false)
			for _, want := range []string{"Namespace/mira-system", "CustomResourceDefinition/webhookendpoints.platform.mira.io",
				"CustomResourceDefinition/scoringtemplates.platform.mira.io", "ClusterRole/mira-manager", "ClusterRole/mira-view",
				"ClusterRole/mira-edit", "Deployment/mira-manager", "Deployment/mira-receiver", "Service/mira-receiver"} {
				if !got[want] {
					t.Errorf("install.yaml has no %s", want)
				}
			}
			for _, name := range []string{"mira-manager", "mira-receiver"} {
				if got := image(t, find(t, objs, "Deployment", name)); got != img {
					t.Errorf("install.yaml %s image = %s, want %s", name, got, img)
				}
			}
			// Namespaced objects need their namespace to exist even in a dry run.
			ensureNamespace(t, objs)
			cmd := exec.Command("kubectl", "--kubeconfig", kubeconfig, "apply", "--server-side", "--dry-run=server",
				"--field-manager=manifests-test", "--force-conflicts", "-f", path)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("kubectl apply --server-side --dry-run=server -f install.yaml: %v\n%s", err, out)
			}
			if strings.Contains(string(out), "Warning") {
				t.Errorf("kubectl apply warned:\n%s", out)
			}
			if n := strings.Count(string(out), "(server dry run)"); n != len(objs) {
				t.Errorf("kubectl applied %d of the %d objects:\n%s", n, len(objs), out)
			}
		})
	}
}
