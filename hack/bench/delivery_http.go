package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/k8sauth"
	"github.com/mira/mira-operator/internal/receiver"
	"github.com/mira/mira-operator/internal/testenv"
)

// The separate-process scenario: a load generator in a child process (this
// binary re-executed with loadgenChildEnv set) POSTs events over HTTP to the
// receiver's scoped route with a ServiceAccount token, as a user's service
// would; the baseline is the same generator POSTing straight to the consumer.

const loadgenChildEnv = "MIRA_BENCH_LOADGEN_CHILD"

// Settings of the separate-process scenario.
const (
	httpNS     = "bench-http"
	httpConns  = 64
	httpEvents = 20000
	httpWarm   = 1000
	httpGoal   = 0.25
)

func init() {
	if os.Getenv(loadgenChildEnv) == "" {
		return
	}
	os.Exit(loadgenChildMain())
}

// loadgenConfig is what the parent tells the load generator.
type loadgenConfig struct {
	URL    string // where to POST
	Bearer string // Authorization: Bearer; empty: none
	Body   []byte // the request body, the same for every request
	N      int
	Conns  int
	// Want is the status every answer must have (202 from the receiver,
	// 204 from the consumer).
	Want int
	// IDPrefix names the requests' webhook-id headers (baseline: the
	// consumer counts them); the receiver ignores them.
	IDPrefix string
}

// loadgenResult is what the load generator reports.
type loadgenResult struct {
	StartUnixNano int64 // just before the first request
	Secs          float64
	P50, P99      time.Duration // request round trip
	CPUSecs       float64       // the child's own CPU (user+system)
	Error         string        `json:",omitempty"`
}

func loadgenChildMain() int {
	var c loadgenConfig
	if err := json.NewDecoder(os.Stdin).Decode(&c); err != nil {
		fmt.Fprintln(os.Stderr, "load generator: read config:", err)
		return 2
	}
	res, err := loadgen(context.Background(), c)
	if err != nil {
		res.Error = err.Error()
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		return 2
	}
	return 0
}

func loadgen(ctx context.Context, c loadgenConfig) (loadgenResult, error) {
	client := rawClient(c.Conns)
	defer client.CloseIdleConnections()
	rtt := make([]time.Duration, c.N)
	var res loadgenResult
	cpu0 := sampleCPU()
	t0 := time.Now()
	res.StartUnixNano = t0.UnixNano()
	err := forEach(ctx, c.N, c.Conns, func(i int) error {
		start := time.Now()
		err := loadgenPost(client, c, c.IDPrefix+strconv.Itoa(i))
		rtt[i] = time.Since(start)
		return err
	})
	res.Secs = time.Since(t0).Seconds()
	res.CPUSecs = sampleCPU().since(cpu0).self.Seconds()
	sortDurations(rtt)
	res.P50, res.P99 = percentile(rtt, 50), percentile(rtt, 99)
	return res, err
}

func loadgenPost(c *http.Client, cfg loadgenConfig, id string) error {
	req, err := http.NewRequest(http.MethodPost, cfg.URL, bytes.NewReader(cfg.Body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", id)
	if cfg.Bearer != "" {
		req.Header.Set("Authorization", "Bearer "+cfg.Bearer)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != cfg.Want {
		return fmt.Errorf("POST %s: HTTP %d, want %d", cfg.URL, resp.StatusCode, cfg.Want)
	}
	return nil
}

// runLoadgen runs the load generator in a child process.
func runLoadgen(ctx context.Context, c loadgenConfig) (loadgenResult, error) {
	var res loadgenResult
	err := runChild(ctx, "load generator", []string{loadgenChildEnv + "=1"}, c, &res, func() string { return res.Error })
	return res, err
}

// runChild re-executes this binary with env added, hands it in as JSON on
// stdin and decodes its JSON answer from stdout into out; failed is the
// error the child reported in its answer, if any.
func runChild(ctx context.Context, what string, env []string, in, out any, failed func() string) error {
	raw, err := json.Marshal(in)
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = bytes.NewReader(raw)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := json.Unmarshal(stdout, out); err != nil {
		return fmt.Errorf("%s output %q: %w", what, stdout, err)
	}
	if msg := failed(); msg != "" {
		return fmt.Errorf("%s: %s", what, msg)
	}
	return nil
}

// httpRun is one measurement of the separate-process scenario.
type httpRun struct {
	n        int
	dur      time.Duration // generator's first request → last delivery at the consumer
	gen      loadgenResult
	conns    int64   // connections the consumer accepted on the endpoint's listener
	dups     int     // repeated webhook-ids
	benchCPU float64 // this process's CPU (receiver and consumer), seconds
}

func (h httpRun) rate() float64 { return float64(h.n) / h.dur.Seconds() }

// httpResults are the separate-process scenario's two runs.
type httpResults struct {
	base, recv, floor httpRun
	profile           string // CPU profile of this process during the receiver run
}

// publisherToken creates a ServiceAccount allowed to publish events in ns
// (create events.data.platform.mira.io) and returns a token of it.
func (d *deliveryEnv) publisherToken(ctx context.Context, ns string) (string, error) {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bench-publisher"}}
	if err := d.k8s.Create(ctx, sa); err != nil {
		return "", fmt.Errorf("create ServiceAccount: %w", err)
	}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bench-publisher"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{k8sauth.Group}, Resources: []string{receiver.ResourceEvents}, Verbs: []string{"create"}}}}
	if err := d.k8s.Create(ctx, role); err != nil {
		return "", fmt.Errorf("create Role: %w", err)
	}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bench-publisher"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: sa.Name}},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name}}
	if err := d.k8s.Create(ctx, rb); err != nil {
		return "", fmt.Errorf("create RoleBinding: %w", err)
	}
	tr := &authnv1.TokenRequest{}
	if err := d.k8s.SubResource("token").Create(ctx, sa, tr); err != nil {
		return "", fmt.Errorf("request a ServiceAccount token: %w", err)
	}
	return tr.Status.Token, nil
}

// separateProcess runs the scenario: baseline (generator → consumer), then
// generator → POST /v1/namespaces/bench-http/events → receiver → signed
// POST → consumer, one endpoint with maxConcurrency 64. Each run is
// preceded by a warm-up run of the generator.
func separateProcess(ctx context.Context, d *deliveryEnv, body []byte) (httpResults, error) {
	var res httpResults
	measure := func(c loadgenConfig, prefix string) (httpRun, error) {
		cpu0 := sampleCPU()
		d.sink.reset(prefix, c.N)
		gen, err := runLoadgen(ctx, c)
		if err != nil {
			return httpRun{}, err
		}
		if err := d.sink.wait(ctx, dlvWait); err != nil {
			return httpRun{}, err
		}
		snap := d.sink.snapshot()
		return httpRun{n: c.N, gen: gen, dur: snap.last.Sub(time.Unix(0, gen.StartUnixNano)), dups: snap.dups,
			benchCPU: sampleCPU().since(cpu0).self.Seconds()}, nil
	}
	// Baseline: the generator straight to the consumer.
	base := loadgenConfig{URL: d.sink.url + "/http-base", Body: body, Conns: httpConns, Want: http.StatusNoContent}
	base.N, base.IDPrefix = httpWarm, "hw"
	if _, err := measure(base, "/http-base"); err != nil {
		return res, fmt.Errorf("baseline warm-up: %w", err)
	}
	base.N, base.IDPrefix = httpEvents, "hb"
	conns := d.sink.conns.Load()
	r, err := measure(base, "/http-base")
	if err != nil {
		return res, fmt.Errorf("baseline: %w", err)
	}
	r.conns = d.sink.conns.Load() - conns
	res.base = r

	// Through the receiver.
	if err := d.namespace(ctx, httpNS); err != nil {
		return res, err
	}
	token, err := d.publisherToken(ctx, httpNS)
	if err != nil {
		return res, err
	}
	listen, err := d.sink.listen()
	if err != nil {
		return res, err
	}
	spec := []endpointSpec{{ns: httpNS, name: "one", path: "/http/one", base: listen,
		events: []string{miraapi.EventReportCompleted}, concurrency: httpConns}}
	if _, err := d.createEndpoints(ctx, spec); err != nil {
		return res, err
	}
	defer func() { _ = d.deleteEndpoints(ctx, spec) }()
	ev, err := json.Marshal(map[string]any{"event": miraapi.EventReportCompleted, "data": json.RawMessage(benchData(0))})
	if err != nil {
		return res, err
	}
	recv := loadgenConfig{URL: "http://" + d.recv.Addr() + "/v1/namespaces/" + httpNS + "/events", Bearer: token, Body: ev,
		Conns: httpConns, Want: http.StatusAccepted}
	recv.N = httpWarm
	if _, err := measure(recv, "/http/one"); err != nil {
		return res, fmt.Errorf("receiver warm-up: %w", err)
	}
	recv.N = httpEvents
	conns = d.sink.connsAt(listen)
	res.profile = filepath.Join(testenv.RepoRoot(), "bin", "bench-delivery-http.pprof")
	stopProfile, err := startCPUProfile(res.profile)
	if err != nil {
		return res, err
	}
	r, err = measure(recv, "/http/one")
	stopProfile()
	if err != nil {
		return res, fmt.Errorf("receiver: %w", err)
	}
	r.conns = d.sink.connsAt(listen) - conns
	res.recv = r

	// The durability floor behind a plain HTTP handler (delivery_floor.go).
	res.floor, err = floorOverHTTP(ctx, d, ev, measure)
	if err != nil {
		return res, fmt.Errorf("durability floor over HTTP: %w", err)
	}
	return res, nil
}

// floorOverHTTP runs the separate-process generator against the durability
// floor's own ingest handler (one endpoint, httpConns workers).
func floorOverHTTP(ctx context.Context, d *deliveryEnv, ev []byte, measure func(loadgenConfig, string) (httpRun, error)) (httpRun, error) {
	f, err := startFloor(ctx, d, 1, httpConns)
	if err != nil {
		return httpRun{}, err
	}
	defer f.close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return httpRun{}, err
	}
	srv := &http.Server{Handler: f, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer func() { _ = srv.Close() }()
	c := loadgenConfig{URL: "http://" + ln.Addr().String() + "/", Bearer: floorToken, Body: ev, Conns: httpConns, Want: http.StatusAccepted}
	c.N = httpWarm
	f.setPrefix("/floor-http-warm/")
	if _, err := measure(c, "/floor-http-warm/"); err != nil {
		return httpRun{}, fmt.Errorf("warm-up: %w", err)
	}
	c.N = httpEvents
	f.setPrefix("/floor-http/")
	r, err := measure(c, "/floor-http/")
	if err != nil {
		return httpRun{}, err
	}
	if err := f.failure(); err != nil {
		return httpRun{}, err
	}
	r.conns = -1 // the floor posts to the shared sink port
	return r, nil
}

// httpSection renders the scenario's settings and table.
func httpSection(h httpResults) (string, Goal) {
	ratio := h.recv.rate() / h.base.rate()
	var b bytes.Buffer
	b.WriteString("Separate-process publisher (HTTP in → signed POST out):\n\n")
	fmt.Fprintf(&b, "- A load generator in a child process (this binary re-executed) POSTs %d events from **%d connections** (one `http.Transport`, %d goroutines) "+
		"to `POST /v1/namespaces/%s/events` with a **ServiceAccount token** (the scoped route users take: TokenReview + SubjectAccessReview, "+
		"cached a minute; a Role grants `create` on `events.data.platform.mira.io`), answered 202 once the event is stored. "+
		"One endpoint subscribes (`maxConcurrency` %d, a sink listener of its own). Clock: the generator's first request → the consumer's last of the %d signed deliveries. "+
		"Baseline: the same generator POSTing the delivery body straight to the consumer (204). Each run follows a %d-request warm-up of its own.\n",
		httpEvents, httpConns, httpConns, httpNS, httpConns, httpEvents, httpWarm)
	b.WriteString("- The receiver, the consumer, kube-apiserver and etcd share the 2 CPUs with the generator; \"bench CPU\" is this process (receiver + consumer).\n\n")
	row := func(name string, r httpRun, x string) []string {
		conns := "n/a (shared port)"
		if r.conns >= 0 {
			conns = strconv.FormatInt(r.conns, 10)
		}
		return []string{name, strconv.Itoa(r.n), secs(r.dur), fmt.Sprintf("**%.0f**", r.rate()), x, msf(r.gen.P50), msf(r.gen.P99),
			conns, strconv.Itoa(r.dups), fmt.Sprintf("%.0f", r.gen.CPUSecs*1e6/float64(r.n)), fmt.Sprintf("%.0f", r.benchCPU*1e6/float64(r.n))}
	}
	b.WriteString(Table([]string{"run", "N", "time (s)", "per second", "× baseline", "request p50 (ms)", "request p99 (ms)", "consumer connections",
		"duplicates", "generator CPU per item (µs)", "bench CPU per item (µs)"}, [][]string{
		row("baseline: generator → consumer", h.base, "1.00"),
		row("generator → receiver → consumer", h.recv, fmt.Sprintf("**%.2f**", ratio)),
		row("durability floor: generator → plain handler → the same JetStream steps → consumer", h.floor, fmt.Sprintf("**%.2f**", h.floor.rate()/h.base.rate())),
	}))
	fmt.Fprintf(&b, "\nThe receiver ran at **%.2f× the durability floor** of this scenario: the in-process floor below (`hack/bench/delivery_floor.go`) "+
		"behind a plain `net/http` handler that compares a static bearer token, reads the body, wraps it as an event with a fresh id, "+
		"stores it with a synchronous publish and answers 202; one endpoint consumer with %d workers.\n", h.recv.rate()/h.floor.rate(), httpConns)
	if top, cum := profileSummary(h.profile); top != "" {
		fmt.Fprintf(&b, "\nCPU profile of this process during the receiver run (`bin/%s`; the generator is another process):\n\n```\n%s\n```\n", filepath.Base(h.profile), top)
		if len(cum) > 0 {
			fmt.Fprintf(&b, "\nCumulative share of selected functions (`-top -cum`):\n\n```\n%s\n```\n", strings.Join(cum, "\n"))
		}
	}
	return b.String(), Goal{Text: fmt.Sprintf("one endpoint, separate-process publisher over HTTP ≥ %.2f× the same generator to the consumer", httpGoal),
		Measured: fmt.Sprintf("%.2f× (%.0f vs %.0f/s); the durability floor reached %.2f×, the receiver %.2f× of it",
			ratio, h.recv.rate(), h.base.rate(), h.floor.rate()/h.base.rate(), h.recv.rate()/h.floor.rate()), Pass: ratio >= httpGoal}
}
