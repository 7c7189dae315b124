package dashboard_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// newBrowser starts Debian's chromium headless, kept on loopback: external
// names do not resolve and anything not on loopback goes to a dead proxy.
// The test fails, rather than skips, without chromium.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not on PATH: run hack/install-chromium.sh (Debian's chromium package) and run the tests again")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // root in CI containers
		chromedp.WindowSize(1280, 900),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("disable-client-side-phishing-detection", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("dns-prefetch-disable", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"),
		chromedp.ProxyServer("http://127.0.0.1:9"),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first call starts the browser for the life of ctx; later steps
	// run under a deadline derived from it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	tctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancelTimeout)
	return tctx
}

// TestBrowserFollowsLinksAndRedelivers drives the dashboard in headless
// chromium: endpoints → endpoint → delivery, the response code and payload
// are shown, and Redeliver adds a new attempt.
func TestBrowserFollowsLinksAndRedelivers(t *testing.T) {
	ns, c, rec := deliveredOnce(t, "browser-app", map[string]any{"report_id": "rpt_browser", "meeting_id": "mtg_b", "user_id": "usr_b"})
	base := startDashboard(t, adminKubeconfig, "--refresh", "1s")
	ctx := newBrowser(t)
	shots := os.Getenv("DASHBOARD_SCREENSHOTS")
	// DASHBOARD_SCREENSHOTS=<dir> saves a screenshot of each page.
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			if shots == "" {
				return chromedp.Void{}, nil
			}
			png, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return chromedp.Void{}, err
			}
			return chromedp.Void{}, os.WriteFile(filepath.Join(shots, name), png, 0o644)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	// wait waits for a selector, with room left to report what the page shows.
	wait := func(sel string) error {
		wctx, cancel := context.WithTimeout(ctx, 45*time.Second)
		defer cancel()
		return chromedp.Do(wctx, chromedp.WaitVisible(chromedp.CSS(sel)))
	}

	epLink := `a[href="/endpoints/` + ns + `/browser-app"]`
	dlLink := `a[href="/deliveries/` + rec.Spec.ID + `"]`
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/endpoints"),
		chromedp.WaitVisible(chromedp.CSS(epLink)),
		shot("endpoints.png"),
		chromedp.Click(chromedp.CSS(epLink)),
		chromedp.WaitVisible(chromedp.CSS(dlLink)),
		shot("endpoint.png"),
		chromedp.Click(chromedp.CSS(dlLink)),
		chromedp.WaitVisible(chromedp.CSS(`#attempt-r0-1`)),
		shot("delivery.png"),
	); err != nil {
		t.Fatalf("browse to the delivery: %v", err)
	}
	code, payload, status := text(`#attempt-r0-1 .status`), text(`#payload`), text(`#state`)
	location, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if location != base+"/deliveries/"+rec.Spec.ID {
		t.Errorf("the link led to %s", location)
	}
	if code != "HTTP 204" {
		t.Errorf("attempt status %q, want HTTP 204", code)
	}
	if !strings.Contains(payload, `"report_id": "rpt_browser"`) || !strings.Contains(payload, `"event": "report.completed"`) {
		t.Errorf("payload not shown pretty-printed:\n%s", payload)
	}
	if status != "Delivered" {
		t.Errorf("state %q", status)
	}

	// Redeliver: the operator handles the annotation, the receiver starts
	// round 1, and the page (live refresh) shows the new attempt.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#redeliver`))); err != nil {
		t.Fatalf("click Redeliver: %v", err)
	}
	if err := wait(`.banner.ok[role=status]`); err != nil {
		t.Fatalf("redeliver: %v; the page shows:\n%s", err, text("main"))
	}
	notice := text(`.banner.ok[role=status]`)
	if err := wait(`#attempt-r1-1`); err != nil {
		t.Fatalf("wait for the new attempt: %v; the page shows:\n%s", err, text("main"))
	}
	newCode := text(`#attempt-r1-1 .status`)
	if !strings.Contains(notice, "Redelivered") {
		t.Errorf("notice %q, want the operator's Redelivered event", notice)
	}
	if newCode != "HTTP 204" {
		t.Errorf("new attempt status %q", newCode)
	}
	if n := c.count("report.completed"); n != 2 {
		t.Errorf("consumer got %d deliveries, want 2", n)
	}
}
