package integrations

import (
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

// Each workspace reads mira-integrations (or the configured name) in its
// own namespace; the default workspace reads --integrations-secret.
func TestWorkspaceSecrets(t *testing.T) {
	def := &Secret{Key: types.NamespacedName{Namespace: "mira-system", Name: "legacy-integrations"}}
	w := &Workspaces{DefaultNamespace: "mira-system", Default: def}
	for ns, want := range map[string]types.NamespacedName{
		"mira-system": {Namespace: "mira-system", Name: "legacy-integrations"},
		"team-a":      {Namespace: "team-a", Name: DefaultWorkspaceSecretName},
		"":            {},
	} {
		if got := w.Secret(ns).Key; got != want {
			t.Errorf("Secret(%q) = %v, want %v", ns, got, want)
		}
	}
	w.SecretName = "team-secrets"
	if got := w.Secret("team-b").Key; got != (types.NamespacedName{Namespace: "team-b", Name: "team-secrets"}) {
		t.Errorf("with a configured name: %v", got)
	}
	// Without --integrations-secret the default workspace reads its own
	// namespace's Secret like any other.
	w = &Workspaces{DefaultNamespace: "team-c"}
	if got := w.Secret("team-c").Key; got != (types.NamespacedName{Namespace: "team-c", Name: DefaultWorkspaceSecretName}) {
		t.Errorf("default workspace without --integrations-secret: %v", got)
	}
}
