package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/types"

	"github.com/mira/mira-operator/internal/signing"
)

// Limits of the listen server.
const (
	DefaultListenAddr      = "127.0.0.1:4000"
	DefaultMaxBodyBytes    = 1 << 20
	listenHeaderBytes      = 64 << 10
	listenReadHeader       = 5 * time.Second
	listenReadTimeout      = 30 * time.Second
	listenWriteTimeout     = 60 * time.Second
	listenShutdownDeadline = 5 * time.Second
	// DefaultSecretRefreshInterval bounds the re-reads of the signing
	// secret that failed verifications trigger.
	DefaultSecretRefreshInterval = time.Second
)

// ListenOptions are the flags of `mira-operator listen`.
type ListenOptions struct {
	Endpoint       string
	Addr           string
	ForwardTo      string
	Secret         string
	SecretFile     string
	PrintJSON      bool
	MaxBodyBytes   int64
	Tolerance      time.Duration
	ForwardTimeout time.Duration
	// SecretRefreshInterval is the least time between two re-reads of the
	// signing secret after failed verifications.
	SecretRefreshInterval time.Duration
	kube                  kubeFlags
}

func (o *ListenOptions) bind(fs *pflag.FlagSet) {
	fs.StringVar(&o.Endpoint, "endpoint", "", "namespace/name of the WebhookEndpoint whose signing secret verifies deliveries")
	fs.StringVar(&o.Addr, "addr", DefaultListenAddr, "address to serve on; point the endpoint's url at it")
	fs.StringVar(&o.ForwardTo, "forward-to", "", "relay verified deliveries (same body and headers) to this URL and answer with its status")
	fs.StringVar(&o.Secret, "secret", "", "verify with this signing secret instead of reading it from the cluster (visible in the process list: prefer --secret-file)")
	fs.StringVar(&o.SecretFile, "secret-file", "", "verify with the secret in this file (first line current, optional second line previous); re-read when verification fails")
	fs.BoolVar(&o.PrintJSON, "print-json", false, "print one JSON object per line instead of text")
	fs.Int64Var(&o.MaxBodyBytes, "max-body-bytes", DefaultMaxBodyBytes, "largest body accepted (413 past it); also bounds the forwarded app's answer")
	fs.DurationVar(&o.Tolerance, "tolerance", signing.DefaultTolerance, "how far webhook-timestamp may be from now")
	fs.DurationVar(&o.ForwardTimeout, "forward-timeout", 30*time.Second, "timeout of one forwarded request")
	fs.DurationVar(&o.SecretRefreshInterval, "secret-refresh-interval", DefaultSecretRefreshInterval, "a failed verification re-reads the signing secret (a rotation applies without a restart), at most once per this interval")
	o.kube.bind(fs, false)
	inGroup(fs, "Verification", "endpoint", "secret", "secret-file", "secret-refresh-interval", "tolerance")
	inGroup(fs, "Server", "addr", "max-body-bytes", "forward-to", "forward-timeout", "print-json")
}

// Listen is `mira-operator listen`.
func Listen(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return RunListen(ctx, args, os.Stdout, os.Stderr, nil)
}

// RunListen parses args and serves until ctx ends. ready, when set, is
// called with the bound address once the server accepts connections.
func RunListen(ctx context.Context, args []string, stdout, stderr io.Writer, ready func(addr string)) error {
	fs := pflag.NewFlagSet("listen", pflag.ContinueOnError)
	fs.SortFlags = false
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: mira-operator listen --endpoint <namespace>/<name> [--addr %s] [--forward-to <url>]\n       mira-operator listen --secret-file <file> [...]\n", DefaultListenAddr)
		printFlagGroups(stderr, fs)
	}
	var o ListenOptions
	o.bind(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	src, err := o.source()
	if err != nil {
		return err
	}
	l, err := NewListener(o, src, stdout, stderr)
	if err != nil {
		return err
	}
	return l.Run(ctx, ready)
}

// source picks where the signing secrets come from.
func (o *ListenOptions) source() (secretSource, error) {
	set := 0
	for _, v := range []string{o.Endpoint, o.Secret, o.SecretFile} {
		if v != "" {
			set++
		}
	}
	if set != 1 {
		return nil, errors.New("give exactly one of --endpoint <namespace>/<name>, --secret-file or --secret")
	}
	switch {
	case o.Secret != "":
		return staticSecret(o.Secret), nil
	case o.SecretFile != "":
		return fileSecrets(o.SecretFile), nil
	}
	ns, name, ok := strings.Cut(o.Endpoint, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return nil, fmt.Errorf("--endpoint %q: want <namespace>/<name>", o.Endpoint)
	}
	cfg, _, err := o.kube.load()
	if err != nil {
		return nil, err
	}
	c, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	return &clusterSecrets{c: c, endpoint: types.NamespacedName{Namespace: ns, Name: name}}, nil
}

// Listener is a local webhook consumer that verifies, prints and forwards.
type Listener struct {
	opts    ListenOptions
	secrets *secretCache
	forward *url.URL
	client  *http.Client
	now     func() time.Time

	outMu  sync.Mutex
	stdout io.Writer
	stderr io.Writer
}

// NewListener validates the options; it does not read the secrets yet.
func NewListener(o ListenOptions, src secretSource, stdout, stderr io.Writer) (*Listener, error) {
	if src == nil {
		return nil, errors.New("no signing secret source")
	}
	if o.Addr == "" {
		o.Addr = DefaultListenAddr
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.Tolerance <= 0 {
		o.Tolerance = signing.DefaultTolerance
	}
	if o.ForwardTimeout <= 0 {
		o.ForwardTimeout = 30 * time.Second
	}
	l := &Listener{
		opts:    o,
		secrets: &secretCache{src: src, minInterval: o.SecretRefreshInterval, now: time.Now},
		now:     time.Now,
		stdout:  stdout,
		stderr:  stderr,
	}
	if o.ForwardTo != "" {
		u, err := url.Parse(o.ForwardTo)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("--forward-to %q: want an http:// or https:// URL", o.ForwardTo)
		}
		l.forward = u
		l.client = &http.Client{
			Timeout: o.ForwardTimeout,
			// Relay redirects as they are: the app's answer goes back to Mira.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return l, nil
}

// Run reads the secrets, serves until ctx ends, then shuts down gracefully.
func (l *Listener) Run(ctx context.Context, ready func(addr string)) error {
	if _, err := l.secrets.refresh(ctx, true); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", l.opts.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", l.opts.Addr, err)
	}
	srv := &http.Server{
		Handler:           l,
		MaxHeaderBytes:    listenHeaderBytes,
		ReadHeaderTimeout: listenReadHeader,
		ReadTimeout:       listenReadTimeout,
		WriteTimeout:      listenWriteTimeout,
	}
	addr := ln.Addr().String()
	msg := fmt.Sprintf("Ready: listening on http://%s, verifying with %s", addr, l.secrets.src.describe())
	if l.forward != nil {
		msg += ", forwarding to " + l.forward.Redacted()
	}
	fmt.Fprintln(l.stderr, msg+" (Ctrl-C to stop)")
	if ready != nil {
		ready(addr)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), listenShutdownDeadline)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	return nil
}

// errSignature is the generic answer to every verification failure.
var errSignature = errors.New("signature verification failed")

// Verify checks both signatures of a delivery over the raw body:
// X-Mira-Signature under any of secrets, and the Standard Webhooks
// signature with its timestamp tolerance.
func Verify(secrets []string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	sig := h.Get("X-Mira-Signature")
	if sig == "" {
		return errors.New("X-Mira-Signature missing")
	}
	ok := false
	for _, s := range secrets {
		// No early exit: the time taken does not say which secret matched.
		if signing.VerifyMira(s, body, sig) {
			ok = true
		}
	}
	if !ok {
		return errors.New("X-Mira-Signature does not match")
	}
	if err := signing.VerifyStandard(secrets, signing.StandardFromHeaders(h), body, now, tolerance); err != nil {
		return fmt.Errorf("webhook-signature: %w", err)
	}
	return nil
}

// ListenEvent is one line of --print-json.
type ListenEvent struct {
	Time          time.Time       `json:"time"`
	Event         string          `json:"event"`
	WebhookID     string          `json:"webhook_id"`
	Verified      bool            `json:"verified"`
	Error         string          `json:"error,omitempty"`
	ForwardStatus int             `json:"forward_status,omitempty"`
	ForwardError  string          `json:"forward_error,omitempty"`
	Body          json.RawMessage `json:"body,omitempty"`
}

// ServeHTTP verifies one delivery, prints it and answers (or forwards).
func (l *Listener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "only POST", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, l.opts.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, fmt.Sprintf("body larger than %d bytes", l.opts.MaxBodyBytes), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	ev := ListenEvent{
		Time:      l.now().UTC(),
		Event:     r.Header.Get("X-Mira-Event"),
		WebhookID: r.Header.Get("webhook-id"),
		Body:      compactJSON(body),
	}
	err = Verify(l.secrets.get(), r.Header, body, l.now(), l.opts.Tolerance)
	if err != nil {
		// Maybe the secret rotated: re-read it (rate-limited) and try again.
		if changed, rerr := l.secrets.refresh(r.Context(), false); rerr != nil {
			l.logf("re-read the signing secret: %v", rerr)
		} else if changed {
			err = Verify(l.secrets.get(), r.Header, body, l.now(), l.opts.Tolerance)
		}
	}
	if err != nil {
		ev.Error = err.Error()
		l.print(ev)
		http.Error(w, errSignature.Error(), http.StatusUnauthorized)
		return
	}
	ev.Verified = true
	if l.forward == nil {
		l.print(ev)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	code, ferr := l.relay(w, r, body)
	ev.ForwardStatus = code
	if ferr != nil {
		ev.ForwardError = ferr.Error()
	}
	l.print(ev)
}

// hopHeaders are not relayed in either direction.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Host", "Content-Length"}

// relay forwards a verified delivery and copies the app's answer back.
func (l *Listener) relay(w http.ResponseWriter, r *http.Request, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, l.forward.String(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, "forward: build request", http.StatusBadGateway)
		return http.StatusBadGateway, err
	}
	req.Header = r.Header.Clone()
	for _, h := range hopHeaders {
		req.Header.Del(h)
	}
	resp, err := l.client.Do(req)
	if err != nil {
		// The error names the URL, which the user chose: fine to show locally.
		http.Error(w, "forward: the local app did not answer", http.StatusBadGateway)
		return http.StatusBadGateway, fmt.Errorf("forward: %w", err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, l.opts.MaxBodyBytes))
	if err != nil {
		http.Error(w, "forward: read the local app's answer", http.StatusBadGateway)
		return http.StatusBadGateway, fmt.Errorf("forward: read answer: %w", err)
	}
	for k, vs := range resp.Header {
		w.Header()[k] = append([]string(nil), vs...)
	}
	for _, h := range hopHeaders {
		w.Header().Del(h)
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(answer)
	return resp.StatusCode, nil
}

func (l *Listener) print(ev ListenEvent) {
	l.outMu.Lock()
	defer l.outMu.Unlock()
	if l.opts.PrintJSON {
		b, _ := json.Marshal(ev)
		fmt.Fprintf(l.stdout, "%s\n", b)
		return
	}
	verdict := "verified"
	if !ev.Verified {
		verdict = "REJECTED (" + ev.Error + ") -> 401"
	}
	if ev.ForwardStatus != 0 {
		verdict += fmt.Sprintf(" -> %s %d", l.forward.Redacted(), ev.ForwardStatus)
	}
	if ev.ForwardError != "" {
		verdict += " (" + ev.ForwardError + ")"
	}
	fmt.Fprintf(l.stdout, "%s  %-24s  %-36s  %s  %s\n", ev.Time.Format(time.RFC3339), orDash(ev.Event), orDash(ev.WebhookID), verdict, ev.Body)
}

func (l *Listener) logf(format string, args ...any) {
	l.outMu.Lock()
	defer l.outMu.Unlock()
	fmt.Fprintf(l.stderr, format+"\n", args...)
}

// compactJSON returns the body compacted, or as a JSON string when it is
// not JSON.
func compactJSON(b []byte) json.RawMessage {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err == nil {
		return buf.Bytes()
	}
	s, _ := json.Marshal(string(b))
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
