// Package metricsendpoint configures how the manager and the receiver
// serve /metrics: as the kubebuilder v4 scaffold does, over HTTPS with
// Kubernetes authentication (TokenReview) and authorization
// (SubjectAccessReview for "get" on the non-resource URL /metrics), with
// --metrics-secure=false as the documented opt-out (plain HTTP, no auth).
package metricsendpoint

import (
	"crypto/tls"

	"github.com/spf13/pflag"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// Flags are the metrics endpoint's flags.
type Flags struct {
	// Secure serves HTTPS with authentication and authorization.
	Secure bool
	// CertDir holds tls.crt and tls.key; empty: a self-signed certificate
	// generated at start.
	CertDir string
}

// Bind registers --metrics-secure and --metrics-cert-dir.
func (f *Flags) Bind(fs *pflag.FlagSet) {
	fs.BoolVar(&f.Secure, "metrics-secure", true, "serve /metrics over HTTPS, allowing only callers whose token may get the non-resource URL /metrics (ClusterRole mira-metrics-reader); false serves plain HTTP without authentication")
	fs.StringVar(&f.CertDir, "metrics-cert-dir", "", "directory with tls.crt and tls.key for the metrics endpoint (default: a self-signed certificate generated at start)")
}

// Names of the flags, for flag groups.
var Names = []string{"metrics-secure", "metrics-cert-dir"}

// Options returns the controller-runtime metrics server options for addr.
func (f Flags) Options(addr string) metricsserver.Options {
	o := metricsserver.Options{BindAddress: addr}
	if f.Secure {
		o.SecureServing = true
		o.FilterProvider = filters.WithAuthenticationAndAuthorization
		o.CertDir = f.CertDir
		// As the scaffold: HTTP/1.1 only (HTTP/2 Rapid Reset, CVE-2023-44487).
		o.TLSOpts = []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }}
	}
	return o
}
