package v1alpha1

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
)

// ServiceURL is the in-cluster URL of a spec.service target:
// <scheme>://<name>.<namespace>.svc:<port><path>. The controller shows it
// and the receiver posts to it; both build it here.
func ServiceURL(w *WebhookEndpoint) string {
	svc := w.Spec.Service
	if svc == nil {
		return ""
	}
	scheme := svc.Scheme
	if scheme == "" {
		scheme = "https"
	}
	port := int32(443)
	if scheme == "http" {
		port = 80
	}
	if svc.Port != nil {
		port = *svc.Port
	}
	path := svc.Path
	if path == "" {
		path = "/"
	}
	u := url.URL{Scheme: scheme, Host: svc.Name + "." + w.ServiceNamespace() + ".svc:" + strconv.Itoa(int(port)), Path: path}
	return u.String()
}

// Target is the URL deliveries are POSTed to, derived from the spec alone
// (spec.url or spec.service). status.targetURL is for display only: anyone
// who may patch status could rewrite it.
func (w *WebhookEndpoint) Target() (string, error) {
	if w.Spec.Service != nil {
		return ServiceURL(w), nil
	}
	if w.Spec.URL == "" {
		return "", errors.New("endpoint has neither url nor service")
	}
	u, err := url.Parse(w.Spec.URL)
	if err != nil {
		return "", errors.New("target URL does not parse") // never echo it: it may hold a token
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("target URL scheme %q is not http or https", u.Scheme)
	}
	return u.String(), nil
}

// RedactURL returns a URL fit to show (status, conditions, Events, logs,
// the delivery log): userinfo is replaced by "redacted" and every query
// value by "redacted", keeping the names, so a token in the URL never
// appears. A string that does not parse is replaced entirely.
func RedactURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	if u.User != nil {
		u.User = url.User("redacted")
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			for i := range q[k] {
				q[k][i] = "redacted"
			}
		}
		u.RawQuery = q.Encode()
	}
	if u.Fragment != "" {
		u.Fragment, u.RawFragment = "redacted", ""
	}
	return u.String()
}
