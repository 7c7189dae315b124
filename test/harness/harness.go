// Package harness holds what the process-level suites (test/e2e,
// test/reliability) share: running mira-operator and other binaries as
// child processes with their logs, free loopback ports, and a consumer that
// counts deliveries by webhook-id and checks their signatures.
package harness

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mira/mira-operator/internal/signing"
	"github.com/mira/mira-operator/internal/testenv"
)

// BuildOperator compiles cmd/mira-operator into dir and returns its path.
func BuildOperator(dir string) (string, error) {
	bin := filepath.Join(dir, "mira-operator")
	build := exec.Command("go", "build", "-o", bin, "./cmd/mira-operator")
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build mira-operator: %w\n%s", err, out)
	}
	return bin, nil
}

// Process is a running child process with its output in a log file.
type Process struct {
	Name string
	Cmd  *exec.Cmd
	// Done is closed when the process has exited.
	Done chan struct{}
	// Log is the path of its combined output.
	Log string
	// StopTimeout is how long Stop waits after SIGINT before SIGKILL.
	StopTimeout time.Duration
}

// Start runs bin with args and env added to the environment, logging to a
// file in logDir. The process is stopped when the test ends, and the tail
// of its log is printed if the test failed.
func Start(t *testing.T, logDir string, env []string, name, bin string, args ...string) *Process {
	t.Helper()
	logPath := filepath.Join(logDir, fmt.Sprintf("%s-%d.log", name, time.Now().UnixNano()))
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Process{Name: name, Cmd: cmd, Done: make(chan struct{}), Log: logPath, StopTimeout: 30 * time.Second}
	go func() { _ = cmd.Wait(); _ = f.Close(); close(p.Done) }()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			if len(out) > 12000 {
				out = out[len(out)-12000:]
			}
			t.Logf("--- %s log (tail) ---\n%s", name, out)
		}
	})
	return p
}

// Stop sends SIGINT and waits, then SIGKILL after StopTimeout.
func (p *Process) Stop() {
	if p.Exited() {
		return
	}
	_ = p.Cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.Done:
	case <-time.After(p.StopTimeout):
		_ = p.Cmd.Process.Kill()
		<-p.Done
	}
}

// Kill sends SIGKILL and waits until the process is gone.
func (p *Process) Kill() {
	_ = p.Cmd.Process.Kill()
	<-p.Done
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.Done:
		return true
	default:
		return false
	}
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

// Consumer counts deliveries by webhook-id and, once Secret is set, checks
// X-Mira-Signature on each. It answers 204.
type Consumer struct {
	secret  atomic.Value
	mu      sync.Mutex
	byID    map[string]int
	total   atomic.Int64
	badSigs atomic.Int64
}

// NewConsumer returns an empty Consumer.
func NewConsumer() *Consumer { return &Consumer{byID: map[string]int{}} }

// SetSecret sets the signing secret deliveries are verified with.
func (c *Consumer) SetSecret(s string) { c.secret.Store(s) }

// ServeHTTP records one delivery.
func (c *Consumer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if s, _ := c.secret.Load().(string); s != "" && !signing.VerifyMira(s, body, r.Header.Get("X-Mira-Signature")) {
		c.badSigs.Add(1)
	}
	c.mu.Lock()
	c.byID[r.Header.Get("webhook-id")]++
	c.mu.Unlock()
	c.total.Add(1)
	w.WriteHeader(http.StatusNoContent)
}

// Distinct is how many different deliveries arrived.
func (c *Consumer) Distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byID)
}

// Total is how many requests arrived.
func (c *Consumer) Total() int64 { return c.total.Load() }

// Duplicates is how many requests repeated an earlier delivery.
func (c *Consumer) Duplicates() int64 { return c.total.Load() - int64(c.Distinct()) }

// BadSignatures is how many requests failed the signature check.
func (c *Consumer) BadSignatures() int64 { return c.badSigs.Load() }
