package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mira/mira-operator/internal/inbound"
	"github.com/mira/mira-operator/internal/recall/recalltest"
	"github.com/mira/mira-operator/internal/testenv"
)

func init() {
	Register(Suite{Name: "ingest", Title: "Inbound ingest: Recall and Stripe webhooks (verify + durable store + 2xx)", Run: runIngestSuite})
}

// Settings of the ingest suite; the section reports them.
const (
	ingClients      = 32    // closed-loop clients (keep-alive connections)
	ingWarmup       = 1000  // requests per handler before measuring
	ingN            = 10000 // closed-loop requests per handler
	ingRate         = 5000  // open-loop offered rate (requests/s), the goal
	ingPaceDur      = 3 * time.Second
	ingPacedWorkers = 64   // open-loop client goroutines (connections)
	ingDoneN        = 2000 // bot.done webhooks of the whole-path row
	ingProfileN     = 8000 // requests of each (unmeasured) profiling run

	ingRateGoal = 5000
	ingP99Goal  = 10 * time.Millisecond
)

// ingestRun is one measured run of one handler.
type ingestRun struct {
	n        int
	dur      time.Duration // first request sent → last answer
	lat      []time.Duration
	cpu      cpuUse
	errs     int
	firstErr string
	drain    time.Duration // first request → pipeline backlog empty (receiver runs)
	drainCPU cpuUse        // last answer → pipeline backlog empty
	offered  float64       // open loop: requests/s offered
}

func (r ingestRun) rate() float64 { return float64(r.n-r.errs) / r.dur.Seconds() }

type ingestResults struct {
	recallBytes, stripeBytes, doneBytes int
	base, recall, stripe, done          ingestRun
	pBase, pRecall, pStripe             ingestRun
	qRecall, qStripe                    ingestRun // open loop, pipeline paused
	floor, pFloor                       ingestRun // the ingest floor (ingest_floor.go), closed and open loop
	resumeDrain                         time.Duration
	resumeBacklog                       uint64
	workers                             int
	recallProf, stripeProf              string
	recallTop, stripeTop                string
	recallCum, stripeCum                []string
	version                             string
}

func runIngestSuite(ctx context.Context) (Section, error) {
	e, err := startIngestEnv(ctx)
	if err != nil {
		return Section{}, err
	}
	defer e.close()
	nonce := strconv.FormatInt(time.Now().UnixNano(), 36)
	c := rawClient(ingPacedWorkers)
	defer c.CloseIdleConnections()
	recallURL, stripeURL, baseURL := e.url+ingRecallPath, e.url+ingStripePath, e.baseURL+ingBaselinePath
	floorURL, err := startIngestFloor(ctx, e)
	if err != nil {
		return Section{}, err
	}
	var res ingestResults
	var iopts inbound.Options
	iopts.BindFlags(flagSetForDefaults())
	res.workers = iopts.Workers

	// Pre-sign everything before timing (HMAC-SHA256 is cheap, but not
	// free): closed loop, open loop, warm-up and profile runs, each with
	// its own ids.
	fmt.Fprintf(os.Stderr, "    ingest: signing payloads\n")
	sets := map[string][]ingestReq{
		"recall-warm": recallStatusReqs(nonce+"w", ingWarmup), "stripe-warm": stripeReqs(nonce+"w", ingWarmup),
		"recall": recallStatusReqs(nonce+"c", ingN), "stripe": stripeReqs(nonce+"c", ingN),
		"recall-paced":  recallStatusReqs(nonce+"p", int(ingRate*ingPaceDur.Seconds())),
		"stripe-paced":  stripeReqs(nonce+"p", int(ingRate*ingPaceDur.Seconds())),
		"recall-paused": recallStatusReqs(nonce+"q", int(ingRate*ingPaceDur.Seconds())),
		"stripe-paused": stripeReqs(nonce+"q", int(ingRate*ingPaceDur.Seconds())),
		"recall-prof":   recallStatusReqs(nonce+"f", ingProfileN), "stripe-prof": stripeReqs(nonce+"f", ingProfileN),
	}
	res.recallBytes, res.stripeBytes = len(sets["recall"][0].body), len(sets["stripe"][0].body)

	// Warm-up: connections, JetStream, caches.
	for _, w := range []struct {
		url  string
		reqs []ingestReq
		want int
	}{{baseURL, sets["recall-warm"], http.StatusAccepted}, {floorURL, sets["recall-warm"], http.StatusOK}, {recallURL, sets["recall-warm"], http.StatusOK}, {stripeURL, sets["stripe-warm"], http.StatusOK}} {
		if r := closedLoop(ctx, c, w.url, w.reqs, w.want, ingClients); r.errs > 0 {
			return Section{}, fmt.Errorf("warm-up %s: %d errors, first: %s", w.url, r.errs, r.firstErr)
		}
	}
	if _, err := e.waitDrained(ctx); err != nil {
		return Section{}, err
	}

	// Closed loop: baseline, Recall, Stripe.
	fmt.Fprintf(os.Stderr, "    ingest: closed loop, %d requests from %d clients per handler\n", ingN, ingClients)
	res.base = closedLoop(ctx, c, baseURL, sets["recall"], http.StatusAccepted, ingClients)
	fmt.Fprintf(os.Stderr, "    baseline: %.0f requests/s, p99 %s ms\n", res.base.rate(), msf(percentile(res.base.lat, 99)))
	res.floor = closedLoop(ctx, c, floorURL, sets["recall"], http.StatusOK, ingClients)
	fmt.Fprintf(os.Stderr, "    floor: %.0f requests/s, p99 %s ms, %d errors\n", res.floor.rate(), msf(percentile(res.floor.lat, 99)), res.floor.errs)
	measure := func(url string, reqs []ingestReq) (ingestRun, error) {
		t0 := time.Now()
		r := closedLoop(ctx, c, url, reqs, http.StatusOK, ingClients)
		cpu0 := sampleCPU()
		end, err := e.waitDrained(ctx)
		r.drain, r.drainCPU = end.Sub(t0), sampleCPU().since(cpu0)
		return r, err
	}
	if res.recall, err = measure(recallURL, sets["recall"]); err != nil {
		return Section{}, err
	}
	fmt.Fprintf(os.Stderr, "    recall: %.0f requests/s, p99 %s ms, %d errors, %s; drained in %s s, %s self %s\n", res.recall.rate(), msf(percentile(res.recall.lat, 99)), res.recall.errs, busyCell(res.recall), secs(res.recall.drain), busyOf(res.recall.drainCPU), pct(res.recall.drainCPU.self, res.recall.drainCPU.wall))
	if res.stripe, err = measure(stripeURL, sets["stripe"]); err != nil {
		return Section{}, err
	}
	fmt.Fprintf(os.Stderr, "    stripe: %.0f requests/s, p99 %s ms, %d errors\n", res.stripe.rate(), msf(percentile(res.stripe.lat, 99)), res.stripe.errs)

	// Open loop at the goal rate.
	fmt.Fprintf(os.Stderr, "    ingest: open loop at %d requests/s for %s per handler\n", ingRate, ingPaceDur)
	res.pBase = openLoop(ctx, c, baseURL, sets["recall-paced"], http.StatusAccepted, ingRate, ingPacedWorkers)
	res.pFloor = openLoop(ctx, c, floorURL, sets["recall-paced"], http.StatusOK, ingRate, ingPacedWorkers)
	res.pRecall = openLoop(ctx, c, recallURL, sets["recall-paced"], http.StatusOK, ingRate, ingPacedWorkers)
	if _, err := e.waitDrained(ctx); err != nil {
		return Section{}, err
	}
	res.pStripe = openLoop(ctx, c, stripeURL, sets["stripe-paced"], http.StatusOK, ingRate, ingPacedWorkers)
	if _, err := e.waitDrained(ctx); err != nil {
		return Section{}, err
	}
	fmt.Fprintf(os.Stderr, "    open loop p99: baseline %s, floor %s, recall %s, stripe %s ms\n",
		msf(percentile(res.pBase.lat, 99)), msf(percentile(res.pFloor.lat, 99)), msf(percentile(res.pRecall.lat, 99)), msf(percentile(res.pStripe.lat, 99)))
	// The same with the pipeline paused: ingest alone.
	if err := e.pausePipeline(ctx); err != nil {
		return Section{}, fmt.Errorf("pause the pipeline consumer: %w", err)
	}
	res.qRecall = openLoop(ctx, c, recallURL, sets["recall-paused"], http.StatusOK, ingRate, ingPacedWorkers)
	res.qStripe = openLoop(ctx, c, stripeURL, sets["stripe-paused"], http.StatusOK, ingRate, ingPacedWorkers)
	res.resumeBacklog, _ = e.pipelineBacklog(ctx)
	if err := e.resumePipeline(ctx); err != nil {
		return Section{}, fmt.Errorf("resume the pipeline consumer: %w", err)
	}
	resumed := time.Now()
	end, err := e.waitDrained(ctx)
	if err != nil {
		return Section{}, err
	}
	res.resumeDrain = end.Sub(resumed)
	fmt.Fprintf(os.Stderr, "    open loop p99, pipeline paused: recall %s, stripe %s ms\n",
		msf(percentile(res.qRecall.lat, 99)), msf(percentile(res.qStripe.lat, 99)))

	// Whole path: bot.done, each fetched from the Recall stand-in, scored
	// and reported by the pipeline while webhooks keep arriving.
	fmt.Fprintf(os.Stderr, "    ingest: %d bot.done webhooks (whole path)\n", ingDoneN)
	doneReqs := recallDoneReqs(e.fake, nonce+"d", ingDoneN, recalltest.SampleTranscript())
	res.doneBytes = len(doneReqs[0].body)
	if res.done, err = measure(recallURL, doneReqs); err != nil {
		return Section{}, err
	}
	fmt.Fprintf(os.Stderr, "    bot.done: %.0f requests/s, drained in %s s\n", res.done.rate(), secs(res.done.drain))

	// Profiles, in runs of their own so the measured runs carry no
	// profiling overhead.
	res.recallProf = filepath.Join(testenv.RepoRoot(), "bin", "bench-ingest-recall.pprof")
	res.stripeProf = filepath.Join(testenv.RepoRoot(), "bin", "bench-ingest-stripe.pprof")
	for _, p := range []struct {
		path, url string
		reqs      []ingestReq
	}{{res.recallProf, recallURL, sets["recall-prof"]}, {res.stripeProf, stripeURL, sets["stripe-prof"]}} {
		if err := profileRun(ctx, p.path, func() { closedLoop(ctx, c, p.url, p.reqs, http.StatusOK, ingClients) }); err != nil {
			return Section{}, err
		}
		if _, err := e.waitDrained(ctx); err != nil {
			return Section{}, err
		}
	}
	res.recallTop, res.recallCum = pprofSummary(res.recallProf, ingestCumFuncs)
	res.stripeTop, res.stripeCum = pprofSummary(res.stripeProf, ingestCumFuncs)
	res.version = codeVersion()
	return ingestSection(res), nil
}

// closedLoop sends reqs from clients goroutines, each waiting for its
// answer before sending the next; latency is per request, send to answer.
func closedLoop(ctx context.Context, c *http.Client, url string, reqs []ingestReq, want, clients int) ingestRun {
	r := ingestRun{n: len(reqs), lat: make([]time.Duration, len(reqs))}
	var next, errs atomic.Int64
	var once sync.Once
	var wg sync.WaitGroup
	cpu0 := sampleCPU()
	t0 := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(reqs) {
					return
				}
				s := time.Now()
				err := ingestPost(c, url, reqs[i], want)
				r.lat[i] = time.Since(s)
				if err != nil {
					errs.Add(1)
					once.Do(func() { r.firstErr = err.Error() })
				}
			}
		}()
	}
	wg.Wait()
	r.dur = time.Since(t0)
	r.cpu = sampleCPU().since(cpu0)
	r.errs = int(errs.Load())
	sortDurations(r.lat)
	return r
}

// openLoop offers reqs at rate per second whatever the answers take
// (workers goroutines send them); a request's latency counts from its
// scheduled send time, so a server that falls behind shows it.
func openLoop(ctx context.Context, c *http.Client, url string, reqs []ingestReq, want, rate, workers int) ingestRun {
	r := ingestRun{n: len(reqs), lat: make([]time.Duration, len(reqs)), offered: float64(rate)}
	interval := time.Second / time.Duration(rate)
	ch := make(chan int, len(reqs))
	var errs atomic.Int64
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ch {
				sched := start.Add(time.Duration(i) * interval)
				err := ingestPost(c, url, reqs[i], want)
				r.lat[i] = time.Since(sched)
				if err != nil {
					errs.Add(1)
					once.Do(func() { r.firstErr = err.Error() })
				}
			}
		}()
	}
	cpu0 := sampleCPU()
	next := 0
	for next < len(reqs) && ctx.Err() == nil {
		due := min(len(reqs), int(time.Since(start)/interval)+1)
		for ; next < due; next++ {
			ch <- next
		}
		time.Sleep(100 * time.Microsecond)
	}
	close(ch)
	wg.Wait()
	r.dur = time.Since(start)
	r.cpu = sampleCPU().since(cpu0)
	r.errs = int(errs.Load())
	sortDurations(r.lat)
	return r
}

func profileRun(ctx context.Context, path string, f func()) (err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("write CPU profile %s: %w", path, cerr)
		}
	}()
	if err := pprof.StartCPUProfile(out); err != nil {
		return err
	}
	f()
	pprof.StopCPUProfile()
	return ctx.Err()
}

// ingestCumFuncs are the functions whose cumulative share the section shows,
// in this order (suffix match on pprof's function names).
var ingestCumFuncs = []string{
	"net/http.(*conn).serve",
	"inbound.(*Inbound).postRecall",
	"inbound.(*Inbound).postStripe",
	"integrations.(*Secret).Value",
	"inbound.(*Inbound).readBody",
	"signing.VerifyStandard",
	"recall.ParseEvent",
	"billing.(*Verifier).Verify",
	"webhook.ConstructEventWithOptions",
	"inbound.(*Inbound).store",
	"jetstream.(*jetStream).PublishMsg",
	"inbound.(*Inbound).answerStored",
	"server.(*stream).processJetStreamMsg",
	"server.(*fileStore).StoreMsg",
	"inbound.(*Inbound).process",
	"net/http.(*persistConn).writeLoop",
	"net/http.(*persistConn).readLoop",
	"runtime.gcBgMarkWorker",
	"runtime.mallocgc",
	"internal/runtime/syscall.Syscall6",
}

// pprofSummary returns the flat top of a CPU profile and the -cum lines of
// fns that appear in it.
func pprofSummary(path string, fns []string) (top string, cum []string) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", nil
	}
	if out, err := exec.Command(goBin, "tool", "pprof", "-top", "-nodecount=18", path).Output(); err == nil {
		var keep []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if !strings.HasPrefix(l, "File:") && !strings.HasPrefix(l, "Build ID:") && !strings.HasPrefix(l, "Time:") {
				keep = append(keep, l)
			}
		}
		top = strings.Join(keep, "\n")
	}
	out, err := exec.Command(goBin, "tool", "pprof", "-top", "-cum", "-nodecount=1000", path).Output()
	if err != nil {
		return top, nil
	}
	lines := strings.Split(string(out), "\n")
	for _, fn := range fns {
		for _, l := range lines {
			f := strings.Fields(l)
			if len(f) >= 6 && strings.HasSuffix(f[5], fn) {
				cum = append(cum, strings.TrimSpace(l))
				break
			}
		}
	}
	return top, cum
}

func ingestRow(name string, r ingestRun, base ingestRun, bytes int) []string {
	ratio := "—"
	if base.n > 0 && r.n > 0 {
		ratio = fmt.Sprintf("%.2f×", r.rate()/base.rate())
	}
	drain := "—"
	if r.drain > 0 {
		drain = secs(r.drain)
	}
	return []string{name, strconv.Itoa(bytes), strconv.Itoa(r.n), fmt.Sprintf("**%.0f**", r.rate()), ratio,
		msf(percentile(r.lat, 50)), msf(percentile(r.lat, 95)), fmt.Sprintf("**%s**", msf(percentile(r.lat, 99))),
		cpuPerReq(r), strconv.Itoa(r.errs), drain}
}

func pacedRow(name string, r ingestRun) []string {
	return []string{name, fmt.Sprintf("%.0f", r.offered), fmt.Sprintf("%.0f", r.rate()),
		msf(percentile(r.lat, 50)), msf(percentile(r.lat, 95)), fmt.Sprintf("**%s**", msf(percentile(r.lat, 99))),
		msf(percentile(r.lat, 100)), cpuPerReq(r), busyCell(r), strconv.Itoa(r.errs)}
}

func cpuPerReq(r ingestRun) string {
	if !r.cpu.ok || r.n == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f", float64(r.cpu.self.Microseconds())/float64(r.n))
}

func busyCell(r ingestRun) string { return busyOf(r.cpu) }

// busyOf is the machine's busy share and the part of it outside this
// process and its children.
func busyOf(u cpuUse) string {
	if !u.ok {
		return "n/a"
	}
	all := u.wall * time.Duration(runtime.NumCPU())
	return fmt.Sprintf("%s (%s other)", pct(u.machine, all), pct(u.rest(), all))
}

func ingestSection(r ingestResults) Section {
	var b strings.Builder
	fmt.Fprintf(&b, "Settings: one in-process receiver (`receiver.New` with the flag defaults, `inbound.New` with the flag defaults, mounted on it: %d pipeline workers) "+
		"on 127.0.0.1, **embedded JetStream with the default sync policy** (file store, no `--jetstream-sync-always`, NATS' default 2 min fsync interval: "+
		"a webhook is acknowledged once the stream has it, which survives a killed process but not a power loss), envtest's kube-apiserver for the "+
		"integrations Secret, no controllers. Clients: one `net/http` transport with keep-alive on loopback in the same process "+
		"(so client, receiver and JetStream share the machine's %d CPUs). Every request is a distinct webhook (its own `webhook-id` / Stripe `id`), "+
		"signed before timing: Recall with `recalltest.SignedHeaders` (`webhook-*` headers, the `recall-webhook-secret`, timestamp = now), "+
		"Stripe with `webhook.GenerateTestSignedPayload` (the `stripe-webhook-secret`, `api_version` %s). A request counts only when the receiver answers "+
		"200 with `\"status\":\"stored\"` (a dedupe hit would be an error).\n\n", r.workers, runtime.NumCPU(), "`2023-10-16`")
	fmt.Fprintf(&b, "To measure ingest rather than the pipeline, the payloads are ones the pipeline disposes of cheaply: Recall `bot.in_call_recording` "+
		"(%d bytes; parsed, recorded, acknowledged) and Stripe `customer.updated` (%d bytes; decoded, counted as ignored). The pipeline still consumes "+
		"every stored message concurrently with the load, so its CPU is part of the figures; \"pipeline drained\" is the time from the first request "+
		"until the pipeline consumer had acknowledged them all. The **baseline** is an unverified, non-durable handler on the same kind of server "+
		"(`receiver.NewServer`: same timeouts) that reads the body through `http.MaxBytesReader` with the same 1 MiB limit and answers 202; it is sent "+
		"the Recall requests. After a warm-up of %d requests per handler:\n\n", r.recallBytes, r.stripeBytes, ingWarmup)

	fmt.Fprintf(&b, "**Closed loop**: %d clients, each sending its next request when the previous one is answered; latency is send → answer.\n\n", ingClients)
	rows := [][]string{
		ingestRow("baseline (read body, 202)", r.base, ingestRun{}, r.recallBytes),
		ingestRow("durability floor (verify, store, 200; no Mira code)", r.floor, r.base, r.recallBytes),
		ingestRow("Recall `bot.in_call_recording`", r.recall, r.base, r.recallBytes),
		ingestRow("Stripe `customer.updated`", r.stripe, r.base, r.stripeBytes),
		ingestRow("Recall `bot.done` (whole path, see below)", r.done, r.base, r.doneBytes),
	}
	b.WriteString(Table([]string{"handler", "body (bytes)", "requests", "requests/s", "× baseline", "p50 (ms)", "p95 (ms)", "p99 (ms)",
		"bench CPU / request (µs)", "errors", "pipeline drained (s)"}, rows))

	fmt.Fprintf(&b, "\n**Open loop at the goal rate**: %d requests/s offered for %s from up to %d goroutines, whatever the answers take; latency counts "+
		"from each request's scheduled send time, so queueing behind a slow server is included.\n\n", ingRate, ingPaceDur, ingPacedWorkers)
	b.WriteString(Table([]string{"handler", "offered (/s)", "achieved (/s)", "p50 (ms)", "p95 (ms)", "p99 (ms)", "max (ms)", "bench CPU / request (µs)",
		"machine busy", "errors"}, [][]string{
		pacedRow("baseline", r.pBase), pacedRow("Recall `bot.in_call_recording`", r.pRecall), pacedRow("Stripe `customer.updated`", r.pStripe),
		pacedRow("Recall, pipeline paused", r.qRecall), pacedRow("Stripe, pipeline paused", r.qStripe),
		pacedRow("durability floor (Recall requests; nothing consumes)", r.pFloor),
	}))
	b.WriteString("\nIn the \"pipeline paused\" rows the pipeline's JetStream consumer was paused (`PauseConsumer`) for the run and resumed after it, " +
		"so they show verify + store + 2xx without the pipeline consuming the stored messages at the same time.\n")
	fmt.Fprintf(&b, "\nThe **durability floor** (`hack/bench/ingest_floor.go`) is the same promise written the shortest way, with none of Mira's code, "+
		"on the same kind of server and the same JetStream server: read the body under the same limit, check the Standard Webhooks signature "+
		"(HMAC-SHA256, constant-time compare, 5-minute tolerance), store the body with a synchronous publish deduplicated by `webhook-id` "+
		"(24 h window) into a file-backed stream of its own, answer 200 `{\"status\":\"stored\"}`. It is sent the Recall requests. "+
		"Nothing consumes its stream, so compare it with the \"pipeline paused\" rows: at %d/s its p99 was %s ms against %s ms for Recall with the pipeline paused; "+
		"in the closed loop it spent %s µs of CPU per request against %s µs for Recall ingest (pipeline running) and %s µs for the baseline.\n",
		ingRate, msf(percentile(r.pFloor.lat, 99)), msf(percentile(r.qRecall.lat, 99)), cpuPerReq(r.floor), cpuPerReq(r.recall), cpuPerReq(r.base))

	fmt.Fprintf(&b, "\n**Whole path**: %d `bot.done` webhooks (metadata names a two-criterion ScoringTemplate) for bots the Recall stand-in "+
		"(`recalltest.Server` on loopback) knows, each with `recalltest.SampleTranscript()` (69 words). Ingest is as above; behind it the pipeline "+
		"retrieves each bot, downloads its transcript, emits `meeting.transcript_ready`, scores, stores the report and emits `report.completed` "+
		"(no WebhookEndpoint subscribes, so nothing is delivered): %d meetings in %s s = %.0f meetings/s, competing for the same CPUs as the ingest.\n",
		ingDoneN, ingDoneN, secs(r.done.drain), float64(ingDoneN)/r.done.drain.Seconds())

	for _, p := range []struct {
		name, path, top string
		cum             []string
	}{{"Recall", r.recallProf, r.recallTop, r.recallCum}, {"Stripe", r.stripeProf, r.stripeTop, r.stripeCum}} {
		if p.top == "" {
			continue
		}
		fmt.Fprintf(&b, "\nCPU profile of a separate, unmeasured closed-loop run of %d %s webhooks (`bin/%s`): the bench process holds the clients, "+
			"the receiver, the embedded NATS server and the pipeline.\n\n```\n%s\n```\n", ingProfileN, p.name, filepath.Base(p.path), p.top)
		if len(p.cum) > 0 {
			b.WriteString("\nCumulative (`-top -cum`), selected:\n\n```\n" + strings.Join(p.cum, "\n") + "\n```\n")
		}
	}

	recallRatio, stripeRatio := r.recall.rate()/r.base.rate(), r.stripe.rate()/r.base.rate()
	b.WriteString("\nInterpretation:\n\n")
	fmt.Fprintf(&b, "- Code measured: %s.\n", r.version)
	fmt.Fprintf(&b, "- Throughput: Recall ingest ran at %.2f× and Stripe at %.2f× the baseline. Per request the bench process spent %s µs (Recall) and %s µs "+
		"(Stripe) of CPU against %s µs for the baseline; the difference is the receiver's work (verify, parse, JetStream publish and its stored ack, "+
		"the pipeline consuming the message), since client and HTTP costs are the same on both sides.\n",
		recallRatio, stripeRatio, cpuPerReq(r.recall), cpuPerReq(r.stripe), cpuPerReq(r.base))
	fmt.Fprintf(&b, "- Machine: during the closed-loop Recall run the CPUs were %s; at the %d/s offered rate %s (Recall). "+
		"The machine is shared: \"other\" is work outside this process and its children, which the figures had to compete with.\n",
		busyCell(r.recall), ingRate, busyCell(r.pRecall))
	fmt.Fprintf(&b, "- Latency at %d/s offered: p99 %s ms (Recall) and %s ms (Stripe) against %s ms for the baseline. In the closed loop, latency is "+
		"mostly queueing: %d clients in flight at N requests/s wait about %d/N s each (Little's law).\n",
		ingRate, msf(percentile(r.pRecall.lat, 99)), msf(percentile(r.pStripe.lat, 99)), msf(percentile(r.pBase.lat, 99)), ingClients, ingClients)

	fmt.Fprintf(&b, "- Where the CPU goes (profiles above, shares of all samples of the bench process): Recall — `postRecall` %s, of which `recall.ParseEvent` "+
		"(also called again by the pipeline) is a large part: `ParseEvent` overall %s against %s for `signing.VerifyStandard` and %s for the JetStream publish "+
		"(`PublishMsg`); Stripe — `postStripe` %s, `ConstructEventWithOptions` %s, `PublishMsg` %s. The pipeline (`Inbound.process`) took %s (Recall) and %s (Stripe).\n",
		cumPct(r.recallCum, "inbound.(*Inbound).postRecall"), cumPct(r.recallCum, "recall.ParseEvent"), cumPct(r.recallCum, "signing.VerifyStandard"),
		cumPct(r.recallCum, "jetstream.(*jetStream).PublishMsg"), cumPct(r.stripeCum, "inbound.(*Inbound).postStripe"),
		cumPct(r.stripeCum, "webhook.ConstructEventWithOptions"), cumPct(r.stripeCum, "jetstream.(*jetStream).PublishMsg"),
		cumPct(r.recallCum, "inbound.(*Inbound).process"), cumPct(r.stripeCum, "inbound.(*Inbound).process"))
	fmt.Fprintf(&b, "- Pipeline drain: the backlog of the closed-loop runs was empty %s s (Recall) and %s s (Stripe) after the first request, for loads that took %s s "+
		"and %s s; between the last answer and the empty backlog the bench process used %s and %s of one CPU. A drain far longer than the load with the "+
		"process nearly idle means the pull consumer was waiting (a stall of about the 30 s pull expiry / ack wait), not working.\n",
		secs(r.recall.drain), secs(r.stripe.drain), secs(r.recall.dur), secs(r.stripe.dur),
		pct(r.recall.drainCPU.self, r.recall.drainCPU.wall), pct(r.stripe.drainCPU.self, r.stripe.drainCPU.wall))

	fmt.Fprintf(&b, "- After the paused runs the consumer was resumed with %d messages stored: the pipeline took %s s to acknowledge them all "+
		"(%.0f messages/s over that time). With `BENCH_DEBUG=1` the suite prints the consumer's state every second while it waits.\n",
		r.resumeBacklog, secs(r.resumeDrain), float64(r.resumeBacklog)/r.resumeDrain.Seconds())

	goals := []Goal{
		{Text: fmt.Sprintf("Recall ingest ≥ %d requests/s on %d cores", ingRateGoal, runtime.NumCPU()),
			Measured: fmt.Sprintf("%.0f requests/s closed loop (%.2f× the baseline's %.0f)", r.recall.rate(), recallRatio, r.base.rate()),
			Pass:     r.recall.rate() >= ingRateGoal && r.recall.errs == 0},
		{Text: fmt.Sprintf("Stripe ingest ≥ %d requests/s on %d cores", ingRateGoal, runtime.NumCPU()),
			Measured: fmt.Sprintf("%.0f requests/s closed loop (%.2f× the baseline's %.0f)", r.stripe.rate(), stripeRatio, r.base.rate()),
			Pass:     r.stripe.rate() >= ingRateGoal && r.stripe.errs == 0},
		{Text: fmt.Sprintf("Recall ingest p99 ≤ %s at %d requests/s", ingP99Goal, ingRate),
			Measured: fmt.Sprintf("p99 %s ms open loop, %.0f/s achieved (baseline p99 %s ms, durability floor p99 %s ms)", msf(percentile(r.pRecall.lat, 99)), r.pRecall.rate(),
				msf(percentile(r.pBase.lat, 99)), msf(percentile(r.pFloor.lat, 99))),
			Pass: percentile(r.pRecall.lat, 99) <= ingP99Goal && r.pRecall.errs == 0},
		{Text: fmt.Sprintf("Stripe ingest p99 ≤ %s at %d requests/s", ingP99Goal, ingRate),
			Measured: fmt.Sprintf("p99 %s ms open loop, %.0f/s achieved (baseline p99 %s ms, durability floor p99 %s ms)", msf(percentile(r.pStripe.lat, 99)), r.pStripe.rate(),
				msf(percentile(r.pBase.lat, 99)), msf(percentile(r.pFloor.lat, 99))),
			Pass: percentile(r.pStripe.lat, 99) <= ingP99Goal && r.pStripe.errs == 0},
	}
	return Section{Body: b.String(), Goals: goals}
}
