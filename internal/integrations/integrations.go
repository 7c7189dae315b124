// Package integrations reads the integrations Secret (API token, Recall and
// Stripe keys) and guards the receiver's token-protected routes with it.
package integrations

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Keys of the integrations Secret: names, not credentials.
//
//nolint:gosec // G101: these are the keys' names
const (
	APITokenKey            = "api-token"
	RecallWebhookSecretKey = "recall-webhook-secret"
	RecallAPIKeyKey        = "recall-api-key"
	StripeWebhookSecretKey = "stripe-webhook-secret"
)

// APITokenHeader carries the API token when the Authorization header cannot
// (requests through the Kubernetes API server's service proxy).
const APITokenHeader = "X-Mira-Api-Token" //nolint:gosec // G101: a header name, not a credential

// Secret reads the integrations Secret (through the informer cache, so a
// change applies to the next request without a restart).
type Secret struct {
	Reader client.Reader
	Key    types.NamespacedName
}

// Value returns one key of the Secret, "" when the Secret or key is missing.
func (i *Secret) Value(ctx context.Context, key string) string {
	if i == nil || i.Reader == nil || i.Key.Name == "" {
		return ""
	}
	s := &corev1.Secret{}
	if err := i.Reader.Get(ctx, i.Key, s); err != nil {
		return ""
	}
	return string(s.Data[key])
}

// RequireToken checks "Authorization: Bearer <api-token>" (or
// X-Mira-Api-Token) in constant time against the Secret's api-token.
// Without a configured token the route answers 503.
func (i *Secret) RequireToken(log logr.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := i.Value(r.Context(), APITokenKey)
		if token == "" {
			log.Info("API route refused: the integrations Secret has no api-token", "path", r.URL.Path)
			writeError(w, http.StatusServiceUnavailable, "the API token is not configured")
			return
		}
		// Through the API server's service proxy the Authorization header is
		// consumed by the API server, so the CLI sends X-Mira-Api-Token.
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			got, ok = r.Header.Get(APITokenHeader), r.Header.Get(APITokenHeader) != ""
		}
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			// Refused before the body is read: close rather than drain it.
			w.Header().Set("Connection", "close")
			writeError(w, http.StatusUnauthorized, "unauthorized")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// Optional keys of an integrations Secret.
//
//nolint:gosec // G101: these are the keys' names
const (
	RecallRegionKey = "recall-region"
	StripeAPIKeyKey = "stripe-api-key"
)

// DefaultWorkspaceSecretName is the integrations Secret's name in every
// workspace namespace (--workspace-integrations-secret-name).
const DefaultWorkspaceSecretName = "mira-integrations"

// Workspaces finds each workspace's integrations Secret: Secret
// SecretName in the workspace's namespace, read by name (never listed).
// The default workspace, that of the unscoped routes, reads Default (the
// --integrations-secret), which also holds the legacy api-token.
type Workspaces struct {
	// Reader GETs Secrets by name (internal/secretcache).
	Reader client.Reader
	// SecretName is the integrations Secret's name in a workspace namespace.
	SecretName string
	// DefaultNamespace is the default workspace ("" : none, the unscoped
	// routes answer 401).
	DefaultNamespace string
	// Default is the default workspace's Secret (--integrations-secret).
	Default *Secret
}

// Secret returns workspace ns's integrations Secret.
func (w *Workspaces) Secret(ns string) *Secret {
	if w == nil || ns == "" {
		return &Secret{}
	}
	if ns == w.DefaultNamespace && w.Default != nil && w.Default.Key.Name != "" {
		return w.Default
	}
	name := w.SecretName
	if name == "" {
		name = DefaultWorkspaceSecretName
	}
	return &Secret{Reader: w.Reader, Key: types.NamespacedName{Namespace: ns, Name: name}}
}
