package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
)

// secretSource yields the signing secrets a delivery may be signed with:
// the current one first, then the previous one during a rotation.
type secretSource interface {
	// load reads the secrets from their origin.
	load(ctx context.Context) ([]string, error)
	// describe names the origin, never the value.
	describe() string
}

// staticSecret is --secret.
type staticSecret string

func (s staticSecret) load(context.Context) ([]string, error) { return []string{string(s)}, nil }
func (s staticSecret) describe() string                       { return "--secret" }

// fileSecrets is --secret-file: the current secret on the first non-empty
// line, optionally a previous one on the next. Re-read on every refresh, so
// editing the file applies without a restart.
type fileSecrets string

func (f fileSecrets) load(context.Context) ([]string, error) {
	b, err := os.ReadFile(string(f)) //nolint:gosec // G703: a file the user named with a flag
	if err != nil {
		return nil, fmt.Errorf("read secret file: %w", err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("secret file %s is empty", string(f))
	}
	return out, nil
}

func (f fileSecrets) describe() string { return "file " + string(f) }

// clusterSecrets reads the WebhookEndpoint and its signing Secret.
type clusterSecrets struct {
	c        client.Reader
	endpoint types.NamespacedName
	// secretName is filled by load for describe.
	mu         sync.Mutex
	secretName string
}

func (s *clusterSecrets) load(ctx context.Context) ([]string, error) {
	w := &miraapi.WebhookEndpoint{}
	if err := s.c.Get(ctx, s.endpoint, w); err != nil {
		return nil, fmt.Errorf("read WebhookEndpoint %s: %w", s.endpoint, err)
	}
	name, key := w.SigningSecretName(), w.SigningSecretKey()
	if ref := w.Status.SigningSecretRef; ref != nil && ref.Name != "" {
		name = ref.Name
		if ref.Key != "" {
			key = ref.Key
		}
	}
	s.mu.Lock()
	s.secretName = name
	s.mu.Unlock()
	sec := &corev1.Secret{}
	if err := s.c.Get(ctx, types.NamespacedName{Namespace: w.Namespace, Name: name}, sec); err != nil {
		return nil, fmt.Errorf("read signing Secret %s/%s: %w", w.Namespace, name, err)
	}
	cur := string(sec.Data[key])
	if cur == "" {
		return nil, fmt.Errorf("signing Secret %s/%s has no key %q", w.Namespace, name, key)
	}
	out := []string{cur}
	if prev := string(sec.Data[miraapi.PreviousSigningSecretKey]); prev != "" && prev != cur {
		out = append(out, prev)
	}
	return out, nil
}

func (s *clusterSecrets) describe() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("Secret %s/%s of WebhookEndpoint %s", s.endpoint.Namespace, s.secretName, s.endpoint)
}

// secretCache keeps the last secrets and re-reads them when a delivery
// fails verification (a rotation happened), at most once per minInterval so
// that a stream of bad requests cannot hammer the API server.
type secretCache struct {
	src         secretSource
	minInterval time.Duration
	now         func() time.Time

	mu      sync.Mutex
	secrets []string
	loaded  time.Time
}

func (c *secretCache) get() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.secrets
}

// refresh reloads the secrets; it reports whether they changed.
func (c *secretCache) refresh(ctx context.Context, force bool) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !force && !c.loaded.IsZero() && c.now().Sub(c.loaded) < c.minInterval {
		return false, nil
	}
	c.loaded = c.now()
	s, err := c.src.load(ctx)
	if err != nil {
		return false, err
	}
	if len(s) == 0 {
		return false, errors.New("no signing secret")
	}
	changed := !equalStrings(s, c.secrets)
	c.secrets = s
	return changed, nil
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
