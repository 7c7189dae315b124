package dashboard

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options configure a Server.
type Options struct {
	// Client reads WebhookEndpoints with the user's credentials.
	Client client.Reader
	// Log reads the delivery log and reports.
	Log Log
	// Actions asks the operator to act.
	Actions Actions
	// DefaultNamespace is used when the user may not list endpoints in every
	// namespace, and as the reports page's default workspace.
	DefaultNamespace string
	// Hosts are the Host header values the server answers (host:port). Any
	// other Host is refused, which stops DNS-rebinding pages from reading
	// the dashboard. Required.
	Hosts []string
	// RefreshSeconds, when positive, lets the optional script reload the
	// live parts of a page this often.
	RefreshSeconds int
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Logger logs failed requests to the cluster.
	Logger logr.Logger
}

// Server is the dashboard's HTTP handler.
type Server struct {
	opts  Options
	pages map[string]*template.Template
	// csrf is the per-process token every form carries.
	csrf  string
	hosts map[string]bool

	mu     sync.Mutex
	notice map[string]notice
}

// notice is a one-time message shown after an action.
type notice struct {
	Text    string
	Warning bool
	at      time.Time
}

// New validates opts and returns a Server.
func New(opts Options) (*Server, error) {
	if opts.Client == nil || opts.Log == nil || opts.Actions == nil {
		return nil, errors.New("dashboard: Client, Log and Actions are required")
	}
	if len(opts.Hosts) == 0 {
		return nil, errors.New("dashboard: at least one allowed Host is required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("dashboard: CSRF token: %w", err)
	}
	s := &Server{opts: opts, csrf: hex.EncodeToString(b), hosts: map[string]bool{}, notice: map[string]notice{}}
	for _, h := range opts.Hosts {
		s.hosts[strings.ToLower(h)] = true
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	s.pages = pages
	return s, nil
}

func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("dashboard: parse %s: %w", n, err)
		}
		out[base] = t
	}
	return out, nil
}

// Handler returns the routes, wrapped in the Host check and security headers.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/endpoints", http.StatusFound)
	})
	mux.HandleFunc("GET /endpoints", s.endpoints)
	mux.HandleFunc("GET /endpoints/{namespace}/{name}", s.endpoint)
	mux.HandleFunc("GET /deliveries/{id}", s.delivery)
	mux.HandleFunc("GET /reports", s.reports)
	mux.HandleFunc("GET /reports/{id}", s.report)
	mux.HandleFunc("POST /actions/{kind}", s.action)
	return s.guard(mux)
}

// guard refuses unknown Hosts and sets headers that keep the pages from
// loading anything but their own assets.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hosts[strings.ToLower(r.Host)] && r.URL.Path != "/healthz" {
			http.Error(w, "unknown Host: the dashboard answers only on its own address", http.StatusMisdirectedRequest)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		// same-origin, not no-referrer: with no-referrer browsers send
		// "Origin: null" on form posts, which checkPost must refuse.
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/static/") {
			h.Set("Cache-Control", "no-cache")
		} else {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// checkPost is the CSRF check: the per-process token, a same-origin Origin
// (when the browser sends one) and no cross-site fetch metadata.
func (s *Server) checkPost(r *http.Request) error {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return fmt.Errorf("cross-site request refused (Sec-Fetch-Site: %s)", site)
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || !s.hosts[strings.ToLower(u.Host)] || !strings.EqualFold(u.Host, r.Host) {
			return fmt.Errorf("request from another origin refused (Origin: %s)", o)
		}
	}
	if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(s.csrf)) != 1 {
		return errors.New("missing or stale form token: reload the page and try again")
	}
	return nil
}

// page is what every template gets.
type page struct {
	Title   string
	Nav     string
	CSRF    string
	Notice  *notice
	Refresh int
	Now     time.Time
	Data    any
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, code int, name, title, nav string, data any) {
	p := page{Title: title, Nav: nav, CSRF: s.csrf, Refresh: s.opts.RefreshSeconds, Now: s.opts.Now(), Data: data}
	if id := r.URL.Query().Get("notice"); id != "" {
		s.mu.Lock()
		if n, ok := s.notice[id]; ok {
			p.Notice = &n
		}
		s.mu.Unlock()
	}
	var buf bytes.Buffer
	if err := s.pages[name].Execute(&buf, p); err != nil {
		s.opts.Logger.Error(err, "render page", "page", name)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// errorData is the error page.
type errorData struct {
	Code    int
	Message string
	Back    string
	// RBAC is set when the API server refused the user's credentials.
	RBAC bool
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error, back string) {
	code := statusOf(err)
	s.opts.Logger.V(1).Info("request failed", "path", r.URL.Path, "error", err.Error())
	s.render(w, r, code, "error", http.StatusText(code), "", errorData{Code: code, Message: err.Error(), Back: back, RBAC: apierrors.IsForbidden(err)})
}

// statusOf maps API server errors to the page's status: Forbidden stays 403,
// NotFound stays 404; anything else is a bad gateway.
func statusOf(err error) int {
	switch {
	case apierrors.IsForbidden(err):
		return http.StatusForbidden
	case apierrors.IsNotFound(err):
		return http.StatusNotFound
	case apierrors.IsUnauthorized(err):
		return http.StatusUnauthorized
	case errors.Is(err, errBadInput):
		return http.StatusBadRequest
	}
	return http.StatusBadGateway
}

var errBadInput = errors.New("bad input")

func badInput(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errBadInput, fmt.Sprintf(format, a...))
}

// addNotice stores a one-time message for the page the action redirects to.
func (s *Server) addNotice(text string, warning bool) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	now := s.opts.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, n := range s.notice {
		if now.Sub(n.at) > 10*time.Minute {
			delete(s.notice, k)
		}
	}
	s.notice[id] = notice{Text: text, Warning: warning, at: now}
	return id
}

// Serve serves h on l until ctx ends, with bounded timeouts, then shuts
// down gracefully.
func Serve(ctx context.Context, l net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		// Actions wait for the operator (up to the plugin's --timeout).
		WriteTimeout: 5 * time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shut down the dashboard: %w", err)
	}
	return nil
}
