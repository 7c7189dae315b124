package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// LocalURLAnnotation on the receiver's Service names a loopback URL where a
// receiver that runs as a local process (`make run`) answers. The API server
// refuses to proxy to loopback addresses, so the plugin calls that URL
// directly. Development only: URLs that are not loopback are refused, so
// that whoever can annotate the Service cannot redirect the API token.
const LocalURLAnnotation = "platform.mira.io/local-url"

// APITokenHeader carries the API token on requests through the API server's
// Service proxy: the API server consumes and removes the Authorization
// header after authenticating the caller, so it never reaches the receiver.
const APITokenHeader = "X-Mira-Api-Token" //nolint:gosec // G101: a header name, not a credential

// apiTokenKey is the key of the API token in the integrations Secret.
const apiTokenKey = "api-token"

// maxAPIAnswer bounds what the plugin reads from the receiver.
const maxAPIAnswer = 16 << 20

// ServiceProxyPath returns the API server path that proxies to path on a
// Service: /api/v1/namespaces/<ns>/services/[<scheme>:]<name>[:<port>]/proxy/<path>.
// scheme "" or "http" is the default; port "" uses the Service's only port.
func ServiceProxyPath(namespace, scheme, service, port, path string) string {
	ref := service
	if scheme == "https" {
		ref = "https:" + ref
	} else if port != "" {
		ref = "http:" + ref
	}
	if port != "" {
		ref += ":" + port
	}
	return "/api/v1/namespaces/" + url.PathEscape(namespace) + "/services/" + url.PathEscape(ref) + "/proxy/" + strings.TrimPrefix(path, "/")
}

// receiverAPI calls the receiver's HTTP API.
type receiverAPI struct {
	// base ends without a slash; paths are appended.
	base   string
	client *http.Client
	header http.Header
	via    string
}

// receiverFlags say how to reach the receiver.
type receiverFlags struct {
	URL                string
	Namespace          string
	Service            string
	Port               string
	Scheme             string
	IntegrationsSecret string
}

// connect finds the receiver: --receiver-url, else the Service's local-url
// annotation, else the API server's Service proxy.
func (f *receiverFlags) connect(ctx context.Context, cfg *rest.Config, c client.Reader) (*receiverAPI, error) {
	token, err := f.token(ctx, c)
	if err != nil {
		return nil, err
	}
	direct := func(raw, via string) (*receiverAPI, error) {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("%s: want an http:// or https:// URL", via)
		}
		h := http.Header{}
		h.Set("Authorization", "Bearer "+token)
		return &receiverAPI{base: strings.TrimSuffix(u.String(), "/"), client: &http.Client{Timeout: time.Minute}, header: h, via: via}, nil
	}
	if f.URL != "" {
		return direct(f.URL, "--receiver-url")
	}
	svc := &corev1.Service{}
	key := types.NamespacedName{Namespace: f.Namespace, Name: f.Service}
	if err := c.Get(ctx, key, svc); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("receiver Service %s not found: set --receiver-namespace/--receiver-service, or --receiver-url", key)
		}
		return nil, fmt.Errorf("read receiver Service %s: %w", key, err)
	}
	if raw := svc.Annotations[LocalURLAnnotation]; raw != "" {
		if !isLoopbackURL(raw) {
			return nil, fmt.Errorf("the Service %s: annotation %s must be a loopback URL such as http://127.0.0.1:8080", key, LocalURLAnnotation)
		}
		return direct(raw, "Service "+key.String()+" annotation "+LocalURLAnnotation)
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("create API server client: %w", err)
	}
	h := http.Header{}
	h.Set(APITokenHeader, token)
	host := strings.TrimSuffix(cfg.Host, "/")
	if !strings.Contains(host, "://") {
		host = "https://" + host
	}
	base := host + strings.TrimSuffix(ServiceProxyPath(f.Namespace, f.Scheme, f.Service, f.Port, ""), "/")
	return &receiverAPI{base: base, client: hc, header: h, via: "the API server's proxy to Service " + key.String()}, nil
}

// token reads the API token from the integrations Secret.
func (f *receiverFlags) token(ctx context.Context, c client.Reader) (string, error) {
	ns, name, ok := strings.Cut(f.IntegrationsSecret, "/")
	if !ok || ns == "" || name == "" {
		return "", fmt.Errorf("--integrations-secret %q: want <namespace>/<name>", f.IntegrationsSecret)
	}
	s := &corev1.Secret{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, s); err != nil {
		return "", fmt.Errorf("read the API token from Secret %s/%s: %w", ns, name, err)
	}
	t := strings.TrimSpace(string(s.Data[apiTokenKey]))
	if t == "" {
		return "", fmt.Errorf("the Secret %s/%s has no key %s", ns, name, apiTokenKey)
	}
	return t, nil
}

func isLoopbackURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// do sends a body-less request to path and decodes the JSON answer; a non-2xx
// answer becomes an error with the receiver's message.
func (r *receiverAPI) do(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, r.base+path, nil)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		// Drop the URL from the error: keep only the cause and the route.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("reach the receiver through %s: %w", r.via, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIAnswer))
	if err != nil {
		return fmt.Errorf("read the receiver's answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error   string `json:"error"`
			Message string `json:"message"`
		}
		_ = json.Unmarshal(body, &e)
		msg := e.Error
		if msg == "" {
			msg = e.Message
		}
		if msg == "" {
			msg = strings.TrimSpace(string(body))
			if len(msg) > 200 {
				msg = msg[:200] + "…"
			}
		}
		return fmt.Errorf("receiver answered %d through %s: %s", resp.StatusCode, r.via, msg)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decode the receiver's answer: %w", err)
	}
	return nil
}
