package testenv

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// FrontProxyClientName is the common name of the client certificate the
// kube-apiserver's aggregator presents to aggregated API servers.
const FrontProxyClientName = "front-proxy-client"

// AggregatorFlags writes a front-proxy CA and a client certificate it signs
// into dir and returns the kube-apiserver flags that turn on the API
// aggregation layer with them (request-header authentication for
// aggregated API servers such as the receiver's data.platform.mira.io).
// The CA lands in kube-system/extension-apiserver-authentication, where
// delegating servers read it.
func AggregatorFlags(dir string) (map[string]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	caFile, proxyCert, proxyKey := filepath.Join(dir, "front-proxy-ca.crt"), filepath.Join(dir, "front-proxy-client.crt"), filepath.Join(dir, "front-proxy-client.key")
	if err := writeFrontProxyCerts(caFile, proxyCert, proxyKey); err != nil {
		return nil, err
	}
	return map[string]string{
		"requestheader-client-ca-file":       caFile,
		"requestheader-allowed-names":        FrontProxyClientName,
		"requestheader-username-headers":     "X-Remote-User",
		"requestheader-uid-headers":          "X-Remote-Uid",
		"requestheader-group-headers":        "X-Remote-Group",
		"requestheader-extra-headers-prefix": "X-Remote-Extra-",
		"proxy-client-cert-file":             proxyCert,
		"proxy-client-key-file":              proxyKey,
		// The aggregator reaches the APIService's Service; in tests and
		// `make run` that is an ExternalName Service naming localhost.
		"enable-aggregator-routing": "false",
	}, nil
}

// StartAggregating is Start with the aggregation layer turned on (see
// AggregatorFlags); the certificates live in a temporary directory that
// is removed by the returned cleanup.
func StartAggregating() (*envtest.Environment, func(), error) {
	dir, err := os.MkdirTemp("", "mira-aggregator-")
	if err != nil {
		return nil, nil, fmt.Errorf("aggregator cert dir: %w", err)
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	flags, err := AggregatorFlags(dir)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	env := newEnvironment()
	args := env.ControlPlane.GetAPIServer().Configure()
	for k, v := range flags {
		args.Set(k, v)
	}
	return env, cleanup, nil
}

func writeFrontProxyCerts(caFile, certFile, keyFile string) error {
	ca, err := newCA("front-proxy-ca")
	if err != nil {
		return err
	}
	cert, key, err := ca.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: FrontProxyClientName},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return err
	}
	return writeFiles(map[string][]byte{caFile: ca.certPEM, certFile: cert, keyFile: key})
}

// WriteServingCert writes tls.crt and tls.key for hosts, signed by a new
// CA, into dir and returns the CA's PEM (an APIService's caBundle).
func WriteServingCert(dir string, hosts []string) ([]byte, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	ca, err := newCA("mira-data-api-ca")
	if err != nil {
		return nil, err
	}
	cert, key, err := ca.issue(&x509.Certificate{
		Subject: pkix.Name{CommonName: hosts[0]}, DNSNames: hosts,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return nil, err
	}
	err = writeFiles(map[string][]byte{filepath.Join(dir, "tls.crt"): cert, filepath.Join(dir, "tls.key"): key})
	return ca.certPEM, err
}

// ca is a throw-away certificate authority for local control planes.
type ca struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
}

func newCA(name string) (*ca, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("%s key: %w", name, err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(10 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", name, err)
	}
	return &ca{cert: cert, key: key, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// issue signs tmpl (subject, names and usages set by the caller) and
// returns the certificate and key as PEM.
func (c *ca) issue(tmpl *x509.Certificate) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("key for %s: %w", tmpl.Subject.CommonName, err)
	}
	now := time.Now()
	tmpl.SerialNumber = big.NewInt(now.UnixNano())
	tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(10*365*24*time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate for %s: %w", tmpl.Subject.CommonName, err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode key of %s: %w", tmpl.Subject.CommonName, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}

func writeFiles(files map[string][]byte) error {
	for path, b := range files {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	return nil
}

// RegisterLocalAPIService registers an aggregated API served on this
// machine: an ExternalName Service ns/name whose externalName is localhost
// (Endpoints cannot hold loopback addresses) on port, and the APIService
// v1alpha1.<group> pointing at it, verified with caBundle. The serving
// certificate must name <name>.<ns>.svc. Existing objects are updated.
func RegisterLocalAPIService(ctx context.Context, c client.Client, ns, name, group string, port int, caBundle []byte) error {
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", ns, err)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	if _, err := controllerutil.CreateOrUpdate(ctx, c, svc, func() error {
		svc.Spec = corev1.ServiceSpec{
			Type: corev1.ServiceTypeExternalName, ExternalName: "localhost",
			Ports: []corev1.ServicePort{{Name: "https", Port: int32(port)}}, //nolint:gosec // a port number
		}
		return nil
	}); err != nil {
		return fmt.Errorf("register Service %s/%s: %w", ns, name, err)
	}
	api := &unstructured.Unstructured{}
	api.SetAPIVersion("apiregistration.k8s.io/v1")
	api.SetKind("APIService")
	api.SetName("v1alpha1." + group)
	if _, err := controllerutil.CreateOrUpdate(ctx, c, api, func() error {
		api.Object["spec"] = map[string]any{
			"group": group, "version": "v1alpha1",
			"service":  map[string]any{"namespace": ns, "name": name, "port": int64(port)},
			"caBundle": base64.StdEncoding.EncodeToString(caBundle), "groupPriorityMinimum": int64(1000), "versionPriority": int64(15),
		}
		return nil
	}); err != nil {
		return fmt.Errorf("register APIService v1alpha1.%s: %w", group, err)
	}
	return nil
}

// APIServiceAvailable reports whether the APIService is Available, with
// its conditions' message otherwise.
func APIServiceAvailable(ctx context.Context, c client.Client, name string) (bool, string, error) {
	api := &unstructured.Unstructured{}
	api.SetAPIVersion("apiregistration.k8s.io/v1")
	api.SetKind("APIService")
	if err := c.Get(ctx, client.ObjectKey{Name: name}, api); err != nil {
		return false, "", fmt.Errorf("get APIService %s: %w", name, err)
	}
	conds, _, _ := unstructured.NestedSlice(api.Object, "status", "conditions")
	for _, cond := range conds {
		m, _ := cond.(map[string]any)
		if m["type"] == "Available" {
			msg, _ := m["message"].(string)
			return m["status"] == "True", msg, nil
		}
	}
	return false, "no Available condition yet", nil
}
