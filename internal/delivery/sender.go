package delivery

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Sender defaults and bounds.
const (
	// DefaultMaxResponseBytes is how much of a response body is kept as the excerpt.
	DefaultMaxResponseBytes = 64 << 10
	// MaxMaxResponseBytes bounds SenderOptions.MaxResponseBytes.
	MaxMaxResponseBytes = 1 << 20
	// DefaultMaxIdleConnsPerHost is the idle keep-alive pool size per host.
	DefaultMaxIdleConnsPerHost = 4
	// MaxResponseHeaders is how many response header names a Result keeps.
	MaxResponseHeaders = 32
	// MaxResponseHeaderValues is how many values per header name a Result keeps.
	MaxResponseHeaderValues = 4
	// MaxResponseHeaderValueBytes is the longest header value a Result keeps.
	MaxResponseHeaderValueBytes = 512

	dialTimeout            = 10 * time.Second
	tlsHandshakeTimeout    = 10 * time.Second
	idleConnTimeout        = 90 * time.Second
	maxResponseHeaderBytes = 64 << 10
	// maxRetryAfter bounds a parsed Retry-After; Policy applies its own cap.
	maxRetryAfter = 30 * 24 * time.Hour
)

// Outcome classifies one attempt for the dispatcher.
type Outcome int

const (
	// OutcomeRetry: the attempt failed and may be retried (non-2xx other
	// than 410, 3xx included, timeouts, connection errors).
	OutcomeRetry Outcome = iota
	// OutcomeSuccess: the endpoint answered 2xx.
	OutcomeSuccess
	// OutcomeGone: the endpoint answered 410 Gone and asks to be disabled.
	OutcomeGone
	// OutcomeBlocked: the Guard refused the destination; retrying the same
	// target will not help.
	OutcomeBlocked
)

// String returns the outcome's name.
func (o Outcome) String() string {
	switch o {
	case OutcomeSuccess:
		return "Success"
	case OutcomeGone:
		return "Gone"
	case OutcomeBlocked:
		return "Blocked"
	default:
		return "Retry"
	}
}

// Result is what one attempt produced.
type Result struct {
	// StatusCode is the response status, 0 when no response arrived.
	StatusCode int
	// Header holds a bounded copy of the response headers (Set-Cookie dropped).
	Header http.Header
	// BodyExcerpt is the start of the response body, valid UTF-8.
	BodyExcerpt string
	// Duration is how long the attempt took.
	Duration time.Duration
	// Err says why the attempt did not succeed; nil exactly when Outcome is
	// OutcomeSuccess. It never contains the target's path or query.
	Err error
	// Outcome classifies the attempt.
	Outcome Outcome
	// RetryAfter is the endpoint's Retry-After on 429, 502, 503 and 504, 0 otherwise.
	RetryAfter time.Duration
}

// SenderOptions configures NewSender.
type SenderOptions struct {
	// Guard checks every dialled address; nil disables the check (in-cluster
	// Service targets).
	Guard *Guard
	// TLS is the client TLS configuration (custom CA, client certificate);
	// nil means system roots. TLS 1.2 is the minimum either way.
	TLS *tls.Config
	// MaxResponseBytes is the body excerpt size; 0 means DefaultMaxResponseBytes.
	MaxResponseBytes int64
	// MaxIdleConnsPerHost is the keep-alive pool per host; 0 means DefaultMaxIdleConnsPerHost.
	MaxIdleConnsPerHost int
	// MaxConnsPerHost bounds the connections per host, dialling, active and
	// idle together; 0 means no bound. A sender of one endpoint sets it to
	// the endpoint's maxConcurrency, so a burst never opens more.
	MaxConnsPerHost int
	// Clock is used to read HTTP-date Retry-After values; nil is the system clock.
	Clock Clock
}

// Sender sends delivery attempts over its own HTTP transport. It is safe
// for concurrent use.
type Sender struct {
	client   *http.Client
	guard    *Guard
	maxBytes int64
	clock    Clock
}

// NewSender validates opts and returns a Sender. Redirects are not
// followed (a 3xx is a failed attempt), no proxy is used, and the Guard, if
// any, runs at dial time on every resolved address.
func NewSender(opts SenderOptions) (*Sender, error) {
	if opts.MaxResponseBytes < 0 || opts.MaxResponseBytes > MaxMaxResponseBytes {
		return nil, fmt.Errorf("new sender: max response bytes %d outside 0..%d", opts.MaxResponseBytes, MaxMaxResponseBytes)
	}
	if opts.MaxResponseBytes == 0 {
		opts.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if opts.MaxIdleConnsPerHost < 0 {
		return nil, fmt.Errorf("new sender: max idle connections per host %d is negative", opts.MaxIdleConnsPerHost)
	}
	if opts.MaxConnsPerHost < 0 {
		return nil, fmt.Errorf("new sender: max connections per host %d is negative", opts.MaxConnsPerHost)
	}
	if opts.MaxIdleConnsPerHost == 0 {
		opts.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	}
	var tlsConf *tls.Config
	if opts.TLS != nil {
		if opts.TLS.MinVersion != 0 && opts.TLS.MinVersion < tls.VersionTLS12 {
			return nil, errors.New("new sender: TLS minimum version below 1.2")
		}
		tlsConf = opts.TLS.Clone()
	} else {
		tlsConf = &tls.Config{}
	}
	if tlsConf.MinVersion == 0 {
		tlsConf.MinVersion = tls.VersionTLS12
	}
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	if opts.Guard != nil {
		if err := opts.Guard.Validate(); err != nil {
			return nil, fmt.Errorf("new sender: %w", err)
		}
		dialer.Control = opts.Guard.Control
	}
	tr := &http.Transport{
		Proxy:                 nil, // a proxy would make the guard check the proxy, not the target
		DialContext:           dialer.DialContext,
		TLSClientConfig:       tlsConf,
		TLSHandshakeTimeout:   tlsHandshakeTimeout,
		ResponseHeaderTimeout: MaxTimeout,
		ExpectContinueTimeout: time.Second,
		// No total cap: a cap below the sum of the per-host pools (it was
		// 100, against 4 endpoints × 64 in flight) closes connections that
		// the next attempt then dials again. Idle connections cannot
		// outnumber the attempts that were in flight, which each endpoint's
		// maxConcurrency bounds, and idleConnTimeout closes them.
		MaxIdleConns:           0,
		MaxIdleConnsPerHost:    opts.MaxIdleConnsPerHost,
		MaxConnsPerHost:        opts.MaxConnsPerHost,
		IdleConnTimeout:        idleConnTimeout,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
		DisableCompression:     true, // the excerpt is what the consumer sent; no gzip bombs
		ForceAttemptHTTP2:      true,
	}
	return &Sender{
		client: &http.Client{
			Transport: tr,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		guard:    opts.Guard,
		maxBytes: opts.MaxResponseBytes,
		clock:    clockOrSystem(opts.Clock),
	}, nil
}

// CloseIdleConnections closes the transport's idle keep-alive connections.
func (s *Sender) CloseIdleConnections() { s.client.CloseIdleConnections() }

// Send performs one attempt with req (from NewRequest) and gives up after
// timeout (DefaultTimeout when timeout <= 0). It never returns an error of
// its own: everything is in the Result.
func (s *Sender) Send(ctx context.Context, req *http.Request, timeout time.Duration) Result {
	start := time.Now()
	res := s.send(ctx, req, timeout)
	res.Duration = time.Since(start)
	return res
}

func (s *Sender) send(ctx context.Context, req *http.Request, timeout time.Duration) Result {
	if req == nil || req.URL == nil {
		return Result{Outcome: OutcomeRetry, Err: errors.New("send: nil request")}
	}
	where := redact(req.URL)
	if s.guard != nil {
		if err := s.guard.CheckURL(req.URL.String()); err != nil {
			return Result{Outcome: OutcomeBlocked, Err: fmt.Errorf("POST %s: %w", where, err)}
		}
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := s.client.Do(req.WithContext(ctx))
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the full URL, path and query included
		}
		var be *BlockedError
		if errors.As(err, &be) {
			return Result{Outcome: OutcomeBlocked, Err: fmt.Errorf("POST %s: %w", where, err)}
		}
		if ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && !errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
		}
		return Result{Outcome: OutcomeRetry, Err: fmt.Errorf("POST %s: %w", where, err)}
	}
	defer func() { _ = resp.Body.Close() }()
	// Read at most maxBytes; drain at most as much again so a small
	// remainder keeps the connection reusable, then close whatever is left.
	body, _ := io.ReadAll(io.LimitReader(resp.Body, s.maxBytes))
	_, _ = io.CopyN(io.Discard, resp.Body, s.maxBytes)

	res := Result{
		StatusCode:  resp.StatusCode,
		Header:      boundHeader(resp.Header),
		BodyExcerpt: strings.ToValidUTF8(string(body), "\uFFFD"),
	}
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		res.Outcome = OutcomeSuccess
	case code == http.StatusGone:
		res.Outcome = OutcomeGone
		res.Err = fmt.Errorf("POST %s: endpoint answered 410 Gone", where)
	default:
		res.Outcome = OutcomeRetry
		res.Err = fmt.Errorf("POST %s: endpoint answered %d", where, code)
		switch code {
		case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			res.RetryAfter = ParseRetryAfter(resp.Header.Get("Retry-After"), s.clock.Now())
		}
	}
	return res
}

// ParseRetryAfter reads a Retry-After value, delta seconds or an HTTP-date
// relative to now. It returns 0 for an empty, invalid or past value and
// caps the result at 30 days.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseUint(v, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		if err != nil || n > uint64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		return time.Duration(n) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	d := t.Sub(now)
	switch {
	case d <= 0:
		return 0
	case d > maxRetryAfter:
		return maxRetryAfter
	}
	return d
}

// redact returns scheme://host of u: paths and queries of webhook URLs
// often carry tokens.
func redact(u *url.URL) string {
	return u.Scheme + "://" + u.Host
}

// boundHeader copies at most MaxResponseHeaders names (sorted), each with at
// most MaxResponseHeaderValues values of at most MaxResponseHeaderValueBytes.
func boundHeader(h http.Header) http.Header {
	keys := make([]string, 0, len(h))
	for k := range h {
		if k == "Set-Cookie" {
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) > MaxResponseHeaders {
		keys = keys[:MaxResponseHeaders]
	}
	out := make(http.Header, len(keys))
	for _, k := range keys {
		vs := h[k]
		if len(vs) > MaxResponseHeaderValues {
			vs = vs[:MaxResponseHeaderValues]
		}
		cp := make([]string, len(vs))
		for i, v := range vs {
			if len(v) > MaxResponseHeaderValueBytes {
				v = strings.ToValidUTF8(v[:MaxResponseHeaderValueBytes], "")
			}
			cp[i] = v
		}
		out[k] = cp
	}
	return out
}

// TLSConfigFromPEM returns a client TLS configuration (TLS 1.2 minimum).
// With caPEM, only the CAs in it are trusted; without, the system roots.
// certPEM and keyPEM, given together, are the client certificate for mTLS.
func TLSConfigFromPEM(caPEM, certPEM, keyPEM []byte) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(caPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, errors.New("tls config: CA bundle holds no PEM certificate")
		}
		conf.RootCAs = pool
	}
	switch {
	case len(certPEM) > 0 && len(keyPEM) > 0:
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("tls config: load client certificate: %w", err)
		}
		conf.Certificates = []tls.Certificate{cert}
	case len(certPEM) > 0 || len(keyPEM) > 0:
		return nil, errors.New("tls config: client certificate and key must be given together")
	}
	return conf, nil
}
