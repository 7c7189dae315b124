package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// actionTimeout bounds one action; it includes waiting for the operator.
const actionTimeout = 3 * time.Minute

// safeReturn keeps the redirect on this server: a path, never a URL.
func safeReturn(v, fallback string) string {
	if !strings.HasPrefix(v, "/") || strings.HasPrefix(v, "//") || strings.Contains(v, "\\") {
		return fallback
	}
	u, err := url.Parse(v)
	if err != nil || u.Host != "" || u.Scheme != "" {
		return fallback
	}
	return v
}

func (s *Server) action(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := s.checkPost(r); err != nil {
		s.render(w, r, http.StatusForbidden, "error", "Forbidden", "", errorData{Code: http.StatusForbidden, Message: err.Error()})
		return
	}
	a := Action{Kind: r.PathValue("kind"), Namespace: r.PostFormValue("namespace"), Endpoint: r.PostFormValue("endpoint")}
	back := safeReturn(r.PostFormValue("return"), endpointPath(a.Namespace, a.Endpoint))
	if a.Namespace == "" || a.Endpoint == "" {
		s.fail(w, r, badInput("namespace and endpoint are required"), back)
		return
	}
	switch a.Kind {
	case ActionRedeliver:
		a.DeliveryID = strings.TrimSpace(r.PostFormValue("id"))
		if a.DeliveryID == "" {
			s.fail(w, r, badInput("a delivery id is required"), back)
			return
		}
	case ActionRedeliverFailed:
		t, err := parseSince(strings.TrimSpace(r.PostFormValue("since")), s.opts.Now())
		if err != nil {
			s.fail(w, r, badInput("since: %v", err), back)
			return
		}
		a.Since = t
	case ActionTest, ActionEnable, ActionRotateSecret:
	default:
		s.fail(w, r, badInput("unknown action %q", a.Kind), back)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), actionTimeout)
	defer cancel()
	res, err := s.opts.Actions.Do(ctx, a)
	if err != nil {
		s.fail(w, r, fmt.Errorf("%s %s/%s: %w", a.Kind, a.Namespace, a.Endpoint, err), back)
		return
	}
	text := fmt.Sprintf("%s=%s handled on %s/%s.", res.Annotation, res.Value, a.Namespace, a.Endpoint)
	if res.EventReason != "" {
		text = res.EventReason + ": " + res.EventMessage
	}
	id := s.addNotice(text, res.EventType == "Warning")
	u, _ := url.Parse(back) // safeReturn parsed it already
	q := u.Query()
	q.Set("notice", id)
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusSeeOther) //nolint:gosec // G710: back passed safeReturn (a path on this server)
}
