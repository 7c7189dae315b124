package queue_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mira/mira-operator/internal/queue"
	"github.com/mira/mira-operator/internal/testenv"
)

// writeCert signs a certificate for tmpl with parent (self-signed when
// parent is nil) and writes cert and key as PEM files.
func writeCert(t *testing.T, dir, name string, tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	kb, _ := x509.MarshalECPrivateKey(key)
	if err := os.WriteFile(filepath.Join(dir, name+".pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+"-key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

// A real nats-server with mutual TLS and user/password auth: the receiver's
// connection options reach JetStream with the CA, client certificate and
// credentials, and each missing piece is refused.
func TestConnectWithTLSAndCredentials(t *testing.T) {
	bin := filepath.Join(testenv.RepoRoot(), "bin", "nats-server")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no %s: run make test (it builds bin/nats-server with hack/build-nats-server.sh): %v", bin, err)
	}
	dir := t.TempDir()
	now := time.Now()
	ca, caKey := writeCert(t, dir, "ca", &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}, nil, nil)
	writeCert(t, dir, "server", &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "nats"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, ca, caKey)
	writeCert(t, dir, "client", &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "mira-receiver"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, ca, caKey)
	// A second CA the server does not trust, for a refused client certificate.
	other, otherKey := writeCert(t, dir, "other-ca", &x509.Certificate{SerialNumber: big.NewInt(4), Subject: pkix.Name{CommonName: "other CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}, nil, nil)
	writeCert(t, dir, "stranger", &x509.Certificate{SerialNumber: big.NewInt(5), Subject: pkix.Name{CommonName: "stranger"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, other, otherKey)
	pass := filepath.Join(dir, "password")
	if err := os.WriteFile(pass, []byte("s3cret-pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wrongPass := filepath.Join(dir, "wrong-password")
	if err := os.WriteFile(wrongPass, []byte("guess"), 0o600); err != nil {
		t.Fatal(err)
	}

	port := freePort(t)
	conf := fmt.Sprintf(`
listen: "127.0.0.1:%d"
jetstream { store_dir: %q, max_file_store: 1GB }
tls {
  cert_file: %q
  key_file: %q
  ca_file: %q
  verify: true
}
authorization { users: [ { user: "mira", password: "s3cret-pass" } ] }
`, port, filepath.Join(dir, "js"), filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem"), filepath.Join(dir, "ca.pem"))
	confFile := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", confFile)
	logFile, err := os.Create(filepath.Join(dir, "nats.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = logFile.Close() }()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	url := fmt.Sprintf("tls://127.0.0.1:%d", port)
	testenv.Eventually(t, "nats-server listening", 20*time.Second, func() error {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			b, _ := os.ReadFile(filepath.Join(dir, "nats.log"))
			return fmt.Errorf("%v; output: %s", err, b)
		}
		return c.Close()
	})

	good := queue.ConnectOptions{CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "client.pem"),
		KeyFile: filepath.Join(dir, "client-key.pem"), User: "mira", PasswordFile: pass}
	opts, err := good.Options()
	if err != nil {
		t.Fatal(err)
	}
	nc, err := queue.Connect(url, "mira-test", opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := queue.Ensure(ctx, js, queue.Config{MaxBytes: 64 << 20}); err != nil {
		t.Fatalf("Ensure over TLS with credentials: %v", err)
	}
	if _, err := js.Publish(ctx, queue.EventsSubject+".report.completed", []byte(`{}`)); err != nil {
		t.Fatalf("publish: %v", err)
	}
	if s := nc.ConnectedUrlRedacted(); !strings.HasPrefix(s, "tls://") {
		t.Fatalf("connected to %q, want tls://", s)
	}

	// Each missing or wrong piece is refused (plain nats.Connect: no
	// retrying, so the refusal is the answer).
	for name, c := range map[string]queue.ConnectOptions{
		"no CA":          {CertFile: good.CertFile, KeyFile: good.KeyFile, User: "mira", PasswordFile: pass},
		"no client cert": {CAFile: good.CAFile, User: "mira", PasswordFile: pass},
		"untrusted cert": {CAFile: good.CAFile, CertFile: filepath.Join(dir, "stranger.pem"), KeyFile: filepath.Join(dir, "stranger-key.pem"), User: "mira", PasswordFile: pass},
		"no credentials": {CAFile: good.CAFile, CertFile: good.CertFile, KeyFile: good.KeyFile},
		"wrong password": {CAFile: good.CAFile, CertFile: good.CertFile, KeyFile: good.KeyFile, User: "mira", PasswordFile: wrongPass},
	} {
		o, err := c.Options()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if nc, err := nats.Connect(url, append(o, nats.Timeout(5*time.Second))...); err == nil {
			nc.Close()
			t.Errorf("%s: connected, want refused", name)
		}
	}
}

func TestConnectOptionsValidation(t *testing.T) {
	for name, c := range map[string]queue.ConnectOptions{
		"cert without key":         {CertFile: "c.pem"},
		"user without password":    {User: "u"},
		"password without user":    {PasswordFile: "p"},
		"two ways to authenticate": {CredsFile: "x.creds", User: "u", PasswordFile: "p"},
		"missing seed file":        {NKeySeedFile: "/nonexistent/seed"},
	} {
		if _, err := c.Options(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
