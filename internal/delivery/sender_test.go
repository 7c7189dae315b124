package delivery

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"

	"sync/atomic"
	"testing"
	"time"

	"github.com/mira/mira-operator/internal/signing"
)

// newLoopbackSender returns a Sender whose guard lets 127.0.0.0/8 through,
// as every test server listens there.
func newLoopbackSender(t *testing.T, opts SenderOptions) *Sender {
	t.Helper()
	opts.Guard = &Guard{AllowCIDRs: loopbackCIDR}
	s, err := NewSender(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.CloseIdleConnections)
	return s
}

func newSecret(t *testing.T) string {
	t.Helper()
	s, err := signing.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustRequest(t *testing.T, target string, m Message, at time.Time) *http.Request {
	t.Helper()
	req, err := NewRequest(context.Background(), target, m, at)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func simpleMessage(t *testing.T) Message {
	t.Helper()
	body, err := BuildBody("report.completed", json.RawMessage(`{"report_id":"rep_1","meeting_id":"mtg_1","user_id":"usr_1"}`), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return Message{ID: "dlv_test", EventType: "report.completed", Body: body, Secret: newSecret(t)}
}

var isoMillis = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

// verifyingConsumer is a webhook consumer as the docs describe it: it
// verifies X-Mira-Signature with miraSecret and webhook-signature with
// standardSecrets over the raw body, checks the headers and answers 204, or
// 401 with the first problem as the body.
func verifyingConsumer(miraSecret string, standardSecrets []string, wantBody []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		problem := func() string {
			body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			if err != nil {
				return "read body: " + err.Error()
			}
			if r.Method != http.MethodPost {
				return "method " + r.Method
			}
			if !bytes.Equal(body, wantBody) {
				return "body differs from the built bytes"
			}
			if got := r.Header.Get("Content-Type"); got != "application/json" {
				return "content type " + got
			}
			if got := r.Header.Get("User-Agent"); got != "Mira-Webhooks/"+Version {
				return "user agent " + got
			}
			if got := r.Header.Get("X-Mira-Event"); got != "report.completed" {
				return "event " + got
			}
			if got := r.Header.Get("X-Mira-Timestamp"); !isoMillis.MatchString(got) {
				return "X-Mira-Timestamp format " + got
			}
			if _, err := strconv.ParseInt(r.Header.Get("webhook-timestamp"), 10, 64); err != nil {
				return "webhook-timestamp not unix seconds"
			}
			if !signing.VerifyMira(miraSecret, body, r.Header.Get("X-Mira-Signature")) {
				return "X-Mira-Signature does not verify"
			}
			for _, s := range standardSecrets {
				if err := signing.VerifyStandard([]string{s}, signing.StandardFromHeaders(r.Header), body, time.Now(), signing.DefaultTolerance); err != nil {
					return "webhook-signature: " + err.Error()
				}
			}
			return ""
		}()
		if problem != "" {
			http.Error(w, problem, http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func TestSendToVerifyingConsumer(t *testing.T) {
	oldSecret, newSecretV := newSecret(t), newSecret(t)
	m := simpleMessage(t)
	m.Secret, m.PreviousSecrets = newSecretV, []string{oldSecret}

	tests := []struct {
		name            string
		miraSecret      string
		standardSecrets []string
		wantStatus      int
		wantOutcome     Outcome
		wantExcerpt     string
	}{
		{"current secret verifies both schemes", newSecretV, []string{newSecretV}, 204, OutcomeSuccess, ""},
		{"previous secret verifies webhook-signature during rotation", newSecretV, []string{oldSecret}, 204, OutcomeSuccess, ""},
		{"each rotation secret on its own", newSecretV, []string{oldSecret, newSecretV}, 204, OutcomeSuccess, ""},
		{"unrelated secret fails webhook-signature", newSecretV, []string{newSecret(t)}, 401, OutcomeRetry, "webhook-signature: no signature matched\n"},
		{"X-Mira-Signature is made with the current secret only", oldSecret, nil, 401, OutcomeRetry, "X-Mira-Signature does not verify\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(verifyingConsumer(tt.miraSecret, tt.standardSecrets, m.Body))
			t.Cleanup(srv.Close)
			s := newLoopbackSender(t, SenderOptions{})
			res := s.Send(context.Background(), mustRequest(t, srv.URL+"/hook", m, time.Now()), 5*time.Second)
			if res.StatusCode != tt.wantStatus || res.Outcome != tt.wantOutcome || res.BodyExcerpt != tt.wantExcerpt {
				t.Fatalf("got %d %v %q (err %v), want %d %v %q", res.StatusCode, res.Outcome, res.BodyExcerpt, res.Err, tt.wantStatus, tt.wantOutcome, tt.wantExcerpt)
			}
			if (res.Err == nil) != (tt.wantOutcome == OutcomeSuccess) {
				t.Fatalf("Err = %v with outcome %v", res.Err, res.Outcome)
			}
		})
	}
}

// runNodeCheck runs the documented Node.js verification with the secret,
// body and signature in environment variables, never in the script.
func runNodeCheck(t *testing.T, secret, body, signature string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is required on PATH for the documented check: %v", err)
	}
	const script = `const {createHmac,timingSafeEqual}=require('crypto'); const {S,B,G}=process.env; console.log(timingSafeEqual(Buffer.from(createHmac("sha256", S).update(B).digest("hex")), Buffer.from(G)))`
	cmd := exec.Command(node, "-e", script)
	cmd.Env = append(os.Environ(), "S="+secret, "B="+body, "G="+signature)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v: %s", err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestDocumentedNodeCheck(t *testing.T) {
	type captured struct {
		body []byte
		sig  string
	}
	got := make(chan captured, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- captured{b, r.Header.Get("X-Mira-Signature")}
	}))
	t.Cleanup(srv.Close)

	body, err := BuildBody("report.completed", json.RawMessage(`{"report_id":"rep_1","meeting_id":"mtg_1","user_id":"usr_1","coach":"Zoë <QA> & co"}`), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	secret := newSecret(t)
	m := Message{ID: "dlv_node", EventType: "report.completed", Body: body, Secret: secret}
	res := newLoopbackSender(t, SenderOptions{}).Send(context.Background(), mustRequest(t, srv.URL, m, time.Now()), 5*time.Second)
	if res.Outcome != OutcomeSuccess {
		t.Fatalf("send: %v", res.Err)
	}
	c := <-got
	tampered := bytes.Replace(c.body, []byte("rep_1"), []byte("rep_2"), 1)
	if len(tampered) != len(c.body) || bytes.Equal(tampered, c.body) {
		t.Fatal("tampering did not change the body at equal length")
	}
	tests := []struct {
		name, secret, body, sig, want string
	}{
		{"delivery as received", secret, string(c.body), c.sig, "true"},
		{"tampered body, same length", secret, string(tampered), c.sig, "false"},
		{"other secret", newSecret(t), string(c.body), c.sig, "false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if out := runNodeCheck(t, tt.secret, tt.body, tt.sig); out != tt.want {
				t.Fatalf("node printed %q, want %q", out, tt.want)
			}
		})
	}
}

func TestSendOutcomes(t *testing.T) {
	clock := newFakeClock()
	var redirectHits atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		redirectHits.Add(1)
	}))
	t.Cleanup(elsewhere.Close)

	mux := http.NewServeMux()
	status := func(code int, header ...string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			for i := 0; i+1 < len(header); i += 2 {
				w.Header().Set(header[i], header[i+1])
			}
			w.WriteHeader(code)
			fmt.Fprintf(w, "status %d", code)
		}
	}
	mux.Handle("/ok", status(200))
	mux.Handle("/accepted", status(202))
	mux.Handle("/error", status(500, "Retry-After", "30"))
	mux.Handle("/bad", status(400))
	mux.Handle("/gone", status(410))
	mux.Handle("/redirect", status(302, "Location", elsewhere.URL+"/landed"))
	mux.Handle("/slow-down", status(429, "Retry-After", "120"))
	mux.Handle("/unavailable-date", status(503, "Retry-After", clock.Now().Add(90*time.Second).Format(http.TimeFormat)))
	mux.Handle("/bad-gateway-past-date", status(502, "Retry-After", clock.Now().Add(-time.Minute).Format(http.TimeFormat)))
	mux.Handle("/timeout-garbage", status(504, "Retry-After", "soon"))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	s := newLoopbackSender(t, SenderOptions{Clock: clock})
	tests := []struct {
		path           string
		wantStatus     int
		wantOutcome    Outcome
		wantRetryAfter time.Duration
	}{
		{"/ok", 200, OutcomeSuccess, 0},
		{"/accepted", 202, OutcomeSuccess, 0},
		{"/error", 500, OutcomeRetry, 0}, // Retry-After only read on 429/502/503/504
		{"/bad", 400, OutcomeRetry, 0},
		{"/gone", 410, OutcomeGone, 0},
		{"/redirect", 302, OutcomeRetry, 0},
		{"/slow-down", 429, OutcomeRetry, 120 * time.Second},
		{"/unavailable-date", 503, OutcomeRetry, 90 * time.Second},
		{"/bad-gateway-past-date", 502, OutcomeRetry, 0},
		{"/timeout-garbage", 504, OutcomeRetry, 0},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			res := s.Send(context.Background(), mustRequest(t, srv.URL+tt.path+"?token=s3cr3t", simpleMessage(t), time.Now()), 5*time.Second)
			if res.StatusCode != tt.wantStatus || res.Outcome != tt.wantOutcome || res.RetryAfter != tt.wantRetryAfter {
				t.Fatalf("got %d %v retry-after %s (err %v), want %d %v %s", res.StatusCode, res.Outcome, res.RetryAfter, res.Err, tt.wantStatus, tt.wantOutcome, tt.wantRetryAfter)
			}
			if want := fmt.Sprintf("status %d", tt.wantStatus); res.BodyExcerpt != want {
				t.Fatalf("excerpt %q, want %q", res.BodyExcerpt, want)
			}
			if (res.Err == nil) != (tt.wantOutcome == OutcomeSuccess) {
				t.Fatalf("Err = %v with outcome %v", res.Err, res.Outcome)
			}
			if res.Err != nil && (strings.Contains(res.Err.Error(), "s3cr3t") || strings.Contains(res.Err.Error(), tt.path)) {
				t.Fatalf("error leaks the URL path or query: %v", res.Err)
			}
		})
	}
	if n := redirectHits.Load(); n != 0 {
		t.Fatalf("redirect target was hit %d times; redirects must not be followed", n)
	}
}

func TestSendTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // lets the server notice the client going away
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	s := newLoopbackSender(t, SenderOptions{})
	res := s.Send(context.Background(), mustRequest(t, srv.URL+"/hook?token=s3cr3t", simpleMessage(t), time.Now()), 300*time.Millisecond)
	if res.Outcome != OutcomeRetry || res.StatusCode != 0 {
		t.Fatalf("got %d %v, want no status and Retry", res.StatusCode, res.Outcome)
	}
	if !errors.Is(res.Err, context.DeadlineExceeded) {
		t.Fatalf("Err = %v, want a deadline exceeded", res.Err)
	}
	if strings.Contains(res.Err.Error(), "s3cr3t") {
		t.Fatalf("error leaks the query: %v", res.Err)
	}
}

func TestSendHugeResponseIsReadBounded(t *testing.T) {
	const total = 10 << 20
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
		chunk := bytes.Repeat([]byte("a"), 32<<10)
		for written := 0; written < total; written += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
		// Never finish the response: a sender that drains to the end waits
		// for its own deadline and the Duration check below fails.
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	s := newLoopbackSender(t, SenderOptions{})
	const timeout = 15 * time.Second
	res := s.Send(context.Background(), mustRequest(t, srv.URL, simpleMessage(t), time.Now()), timeout)
	if res.Outcome != OutcomeSuccess || res.StatusCode != 200 {
		t.Fatalf("got %d %v (err %v), want 200 Success", res.StatusCode, res.Outcome, res.Err)
	}
	if len(res.BodyExcerpt) != DefaultMaxResponseBytes || strings.Trim(res.BodyExcerpt, "a") != "" {
		t.Fatalf("excerpt of %d bytes, want %d bytes of the body", len(res.BodyExcerpt), DefaultMaxResponseBytes)
	}
	if res.Duration >= timeout {
		t.Fatalf("Send took %s: it drained the body instead of stopping at the bound", res.Duration)
	}
}

func TestSendConnectionReset(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // close with RST
		}
		_ = conn.Close()
	}))
	t.Cleanup(srv.Close)
	s := newLoopbackSender(t, SenderOptions{})
	res := s.Send(context.Background(), mustRequest(t, srv.URL, simpleMessage(t), time.Now()), 5*time.Second)
	if res.Outcome != OutcomeRetry || res.StatusCode != 0 || res.Err == nil {
		t.Fatalf("got %d %v err %v, want no status, Retry and an error", res.StatusCode, res.Outcome, res.Err)
	}
}

// The default guard refuses the very server the other tests reach: the IP
// literal before any connection, the name "localhost" at dial time.
func TestSendDefaultGuardBlocksLoopback(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	strict, err := NewSender(SenderOptions{Guard: &Guard{}})
	if err != nil {
		t.Fatal(err)
	}
	unguarded, err := NewSender(SenderOptions{}) // in-cluster Service targets
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		sender      *Sender
		target      string
		wantOutcome Outcome
	}{
		{"IP literal refused before dialling", strict, srv.URL, OutcomeBlocked},
		{"localhost refused at dial time", strict, "http://localhost:" + port + "/hook", OutcomeBlocked},
		{"no guard reaches it", unguarded, "http://localhost:" + port + "/hook", OutcomeSuccess},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := hits.Load()
			res := tt.sender.Send(context.Background(), mustRequest(t, tt.target, simpleMessage(t), time.Now()), 5*time.Second)
			if res.Outcome != tt.wantOutcome {
				t.Fatalf("outcome %v (err %v), want %v", res.Outcome, res.Err, tt.wantOutcome)
			}
			reached := hits.Load() - before
			if tt.wantOutcome == OutcomeBlocked {
				var be *BlockedError
				if !errors.As(res.Err, &be) || be.Reason != reasonLoopback {
					t.Fatalf("Err = %v, want a loopback *BlockedError", res.Err)
				}
				if reached != 0 {
					t.Fatal("the blocked request reached the server")
				}
			} else if reached != 1 {
				t.Fatalf("server reached %d times, want 1", reached)
			}
		})
	}
}

func TestSendTLS(t *testing.T) {
	clientCertPEM, clientKeyPEM, clientCert := selfSignedClientCert(t)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) != 1 || r.TLS.PeerCertificates[0].Subject.CommonName != "mira-delivery" {
			http.Error(w, "no client certificate", http.StatusForbidden)
		}
	}))
	pool := x509.NewCertPool()
	pool.AddCert(clientCert)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the failed handshake below is expected
	srv.TLS = &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pool}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})

	withCA, err := TLSConfigFromPEM(caPEM, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	withClientCert, err := TLSConfigFromPEM(caPEM, clientCertPEM, clientKeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		tls        *tls.Config
		wantStatus int
	}{
		{"system roots do not trust the test CA", nil, 0},
		{"custom CA, no client certificate", withCA, 403},
		{"custom CA and client certificate", withClientCert, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newLoopbackSender(t, SenderOptions{TLS: tt.tls})
			res := s.Send(context.Background(), mustRequest(t, srv.URL, simpleMessage(t), time.Now()), 5*time.Second)
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("status %d (err %v), want %d", res.StatusCode, res.Err, tt.wantStatus)
			}
		})
	}
}

func selfSignedClientCert(t *testing.T) (certPEM, keyPEM []byte, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mira-delivery"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err = x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), cert
}

func TestTLSConfigFromPEMRejects(t *testing.T) {
	certPEM, keyPEM, _ := selfSignedClientCert(t)
	otherCert, _, _ := selfSignedClientCert(t)
	tests := []struct {
		name          string
		ca, cert, key []byte
		wantErr       string
	}{
		{"CA without PEM", []byte("not a certificate"), nil, nil, "no PEM certificate"},
		{"certificate without key", nil, certPEM, nil, "given together"},
		{"key without certificate", nil, nil, keyPEM, "given together"},
		{"key of another certificate", nil, otherCert, keyPEM, "load client certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := TLSConfigFromPEM(tt.ca, tt.cert, tt.key)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
	conf, err := TLSConfigFromPEM(nil, nil, nil)
	if err != nil || conf.MinVersion != tls.VersionTLS12 || conf.RootCAs != nil {
		t.Fatalf("empty input: %+v, %v; want system roots and TLS 1.2", conf, err)
	}
}

func TestNewSenderRejects(t *testing.T) {
	tests := []struct {
		name string
		opts SenderOptions
	}{
		{"negative excerpt", SenderOptions{MaxResponseBytes: -1}},
		{"excerpt above bound", SenderOptions{MaxResponseBytes: MaxMaxResponseBytes + 1}},
		{"negative idle pool", SenderOptions{MaxIdleConnsPerHost: -1}},
		{"negative connection bound", SenderOptions{MaxConnsPerHost: -1}},
		{"TLS 1.0", SenderOptions{TLS: &tls.Config{MinVersion: tls.VersionTLS10}}}, //nolint:gosec // G402: the case checks that it is refused
		{"invalid allowed CIDR", SenderOptions{Guard: &Guard{AllowCIDRs: make([]netip.Prefix, 1)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewSender(tt.opts); err == nil {
				t.Fatal("NewSender accepted invalid options")
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 4, 15, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"120", 120 * time.Second},
		{" 5 ", 5 * time.Second},
		{"-5", 0},
		{"1.5", 0},
		{"99999999999999999999", 30 * 24 * time.Hour},
		{"Tue, 04 Mar 2025 15:01:30 GMT", 90 * time.Second},
		{"Tuesday, 04-Mar-25 15:02:00 GMT", 2 * time.Minute}, // RFC 850
		{"Tue Mar  4 15:00:10 2025", 10 * time.Second},       // ANSI C
		{"Tue, 04 Mar 2025 14:00:00 GMT", 0},
		{"Tue, 04 Mar 2026 15:00:00 GMT", 30 * 24 * time.Hour},
		{"tomorrow", 0},
	}
	for _, tt := range tests {
		if got := ParseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("ParseRetryAfter(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestSendBoundsResponseHeaders(t *testing.T) {
	long := strings.Repeat("v", 2*MaxResponseHeaderValueBytes)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		for i := range 40 {
			w.Header().Set(fmt.Sprintf("X-H%02d", i), "x")
		}
		w.Header().Set("Set-Cookie", "session=secret")
		for range 6 {
			w.Header().Add("A-Long", long)
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	res := newLoopbackSender(t, SenderOptions{}).Send(context.Background(), mustRequest(t, srv.URL, simpleMessage(t), time.Now()), 5*time.Second)
	if res.Outcome != OutcomeSuccess {
		t.Fatalf("send: %v", res.Err)
	}
	if len(res.Header) != MaxResponseHeaders {
		t.Fatalf("kept %d header names, want %d", len(res.Header), MaxResponseHeaders)
	}
	if _, ok := res.Header["Set-Cookie"]; ok {
		t.Fatal("Set-Cookie kept")
	}
	vs := res.Header["A-Long"]
	if len(vs) != MaxResponseHeaderValues || len(vs[0]) != MaxResponseHeaderValueBytes {
		t.Fatalf("A-Long: %d values of %d bytes, want %d of %d", len(vs), len(vs[0]), MaxResponseHeaderValues, MaxResponseHeaderValueBytes)
	}
}
