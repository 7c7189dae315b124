package metricsendpoint

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/spf13/pflag"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/mira/mira-operator/internal/testenv"
)

var cfg *rest.Config

func TestMain(m *testing.M) {
	env, c, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cfg = c
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}

// serve starts a controller-runtime manager serving only metrics.
func serve(t *testing.T, f Flags) string {
	t.Helper()
	addr := freeAddr(t)
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Metrics: f.Options(addr), HealthProbeBindAddress: "0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = mgr.Start(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return addr
}

func scrape(t *testing.T, url, token string) int {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // G402: the endpoint serves a self-signed certificate generated at start
	var code int
	testenv.Eventually(t, "metrics endpoint answers", 30*time.Second, func() error {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		code = resp.StatusCode
		return nil
	})
	return code
}

func token(t *testing.T, cs kubernetes.Interface, ns, sa string) string {
	t.Helper()
	ctx := context.Background()
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

// Secure (the default): no token 401, a token without the
// mira-metrics-reader role 403, with it 200.
func TestSecureMetricsNeedAuthorizedToken(t *testing.T) {
	ctx := context.Background()
	cs := kubernetes.NewForConfigOrDie(cfg)
	ns := "default"
	reader := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "mira-metrics-reader"},
		Rules: []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}}
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, reader, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	allowed, denied := token(t, cs, ns, "scraper"), token(t, cs, ns, "stranger")
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "scraper-metrics"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "mira-metrics-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "scraper", Namespace: ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var f Flags
	f.Bind(newFlagSet())
	if !f.Secure {
		t.Fatal("--metrics-secure is not the default")
	}
	url := "https://" + serve(t, f) + "/metrics"
	if code := scrape(t, url, ""); code != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", code)
	}
	// controller-runtime's filter answers a token the TokenReview rejects
	// with an error as 500 ("Authentication failed"): refused either way.
	if code := scrape(t, url, "not-a-token"); code != http.StatusUnauthorized && code != http.StatusInternalServerError {
		t.Errorf("bad token: %d, want 401 or 500", code)
	}
	if code := scrape(t, url, denied); code != http.StatusForbidden {
		t.Errorf("token without mira-metrics-reader: %d, want 403", code)
	}
	if code := scrape(t, url, allowed); code != http.StatusOK {
		t.Errorf("token with mira-metrics-reader: %d, want 200", code)
	}
}

// The documented opt-out: plain HTTP without authentication.
func TestInsecureOptOut(t *testing.T) {
	var f Flags
	fs := newFlagSet()
	f.Bind(fs)
	if err := fs.Parse([]string{"--metrics-secure=false"}); err != nil {
		t.Fatal(err)
	}
	if code := scrape(t, "http://"+serve(t, f)+"/metrics", ""); code != http.StatusOK {
		t.Errorf("plain metrics: %d, want 200", code)
	}
}

func newFlagSet() *pflag.FlagSet { return pflag.NewFlagSet("test", pflag.ContinueOnError) }
