package dashboard

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/scoring"
)

func TestMask(t *testing.T) {
	for _, c := range []struct{ name, value, want string }{
		{"X-Mira-Signature", "0123abcd", "•••••••• (8 characters hidden)"},
		{"webhook-signature", "v1,abcdef==", "v1,•••••••• (8 characters hidden)"},
		{"Authorization", "Bearer tok", "Bearer •••••••• (3 characters hidden)"},
		{"Set-Cookie", "a=b", "•••••••• (3 characters hidden)"},
	} {
		if !sensitive(c.name) {
			t.Errorf("%s: not sensitive", c.name)
		}
		if got := mask(c.value); got != c.want {
			t.Errorf("mask(%q) = %q, want %q", c.value, got, c.want)
		}
	}
	for _, n := range []string{"Content-Type", "X-Mira-Event", "Webhook-Id", "X-Mira-Timestamp"} {
		if sensitive(n) {
			t.Errorf("%s: masked but harmless", n)
		}
	}
}

func TestPretty(t *testing.T) {
	for in, want := range map[string]string{
		`{"a":1,"b":[true]}`: "{\n  \"a\": 1,\n  \"b\": [\n    true\n  ]\n}",
		`not json {`:         `not json {`,
		`{"broken":`:         `{"broken":`,
		``:                   ``,
	} {
		if got := pretty(in); got != want {
			t.Errorf("pretty(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestComputeStats(t *testing.T) {
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	at := func(ago time.Duration, state string) Delivery { return Delivery{Created: now.Add(-ago), State: state} }
	items := []Delivery{
		at(10*time.Minute, StateDelivered),
		at(20*time.Minute, StateRetrying),
		at(30*time.Minute, StatePending), // not counted
		at(2*time.Hour, StateDelivered),
		at(3*time.Hour, StateDead),
		at(5*time.Hour, StateSkipped), // not counted
		at(23*time.Hour+30*time.Minute, StateDelivered),
		at(25*time.Hour, StateDead), // outside the day
	}
	st := computeStats(items, false, now)
	if st.Hour != (Rate{OK: 1, Failed: 1}) || st.Day != (Rate{OK: 3, Failed: 2}) {
		t.Fatalf("hour %+v day %+v", st.Hour, st.Day)
	}
	if st.Hour.String() != "50.0%" || st.Day.String() != "60.0%" || (Rate{}).String() != "–" || (Rate{OK: 4}).String() != "100%" {
		t.Errorf("strings: %s %s", st.Hour, st.Day)
	}
	if (Rate{OK: 3, Failed: 1, Partial: true}).String() != "≈75.0%" {
		t.Error("a partial rate is not marked")
	}
	if st.Day.Level() != "bad" || (Rate{OK: 99, Failed: 1}).Level() != "warn" || (Rate{OK: 1}).Level() != "ok" || (Rate{}).Level() != "none" {
		t.Error("levels")
	}
	c := st.Chart
	if len(c.Bars) != chartBuckets || c.Max != 2 || c.Empty {
		t.Fatalf("chart: %d bars, max %d", len(c.Bars), c.Max)
	}
	last := c.Bars[chartBuckets-1] // the last hour: one delivered, one retrying
	if last.OKH != c.Plot/2 || last.FailH != c.Plot/2 || last.OKY != c.Base-c.Plot/2 || last.FailY != c.Base-c.Plot {
		t.Errorf("last bar %+v (plot %d, base %d)", last, c.Plot, c.Base)
	}
	if first := c.Bars[0]; first.OKH != c.Plot/2 || first.FailH != 0 {
		t.Errorf("first bar %+v", first)
	}
	if empty := computeStats(nil, false, now).Chart; !empty.Empty || empty.Bars[5].OKH != 0 {
		t.Error("an empty log draws bars")
	}
}

func TestSafeReturn(t *testing.T) {
	for in, want := range map[string]string{
		"/deliveries/dlv_1?x=1#log": "/deliveries/dlv_1?x=1#log",
		"//evil.example/":           "/fallback",
		"https://evil.example/":     "/fallback",
		"/\\evil.example":           "/fallback",
		"":                          "/fallback",
		"javascript:alert(1)":       "/fallback",
	} {
		if got := safeReturn(in, "/fallback"); got != want {
			t.Errorf("safeReturn(%q) = %q, want %q", in, got, want)
		}
	}
}

// fakeLog serves a fixed report and refuses everything else.
type fakeLog struct{ report *scoring.Report }

func (f fakeLog) Deliveries(context.Context, string, string, Query) (Page, error) {
	return Page{}, nil
}
func (f fakeLog) Delivery(context.Context, string) (*Delivery, error) {
	return nil, errors.New("no such delivery")
}
func (f fakeLog) Report(_ context.Context, id string) (*scoring.Report, error) {
	if id != f.report.ReportID {
		return nil, errors.New("no such report")
	}
	return f.report, nil
}

type noActions struct{}

func (noActions) Do(context.Context, Action) (ActionResult, error) {
	return ActionResult{}, errors.New("not in this test")
}

func newTestServer(t *testing.T, log Log) http.Handler {
	t.Helper()
	s := runtime.NewScheme()
	_ = miraapi.AddToScheme(s)
	srv, err := New(Options{Client: fake.NewClientBuilder().WithScheme(s).Build(), Log: log, Actions: noActions{}, Hosts: []string{"example.test"}, DefaultNamespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	return srv.Handler()
}

// TestReportPage renders a report's criteria (the test receiver has no
// meeting pipeline, so the report comes from a fake Log).
func TestReportPage(t *testing.T) {
	lo, hi := 40.0, 60.0
	rep := &scoring.Report{
		ReportID: "rpt_1", MeetingID: "mtg_1", UserID: "usr_1", OverallScore: 72.5, PassingScore: 70, Passed: true,
		Template:    scoring.TemplateRef{Namespace: "default", Name: "discovery", Generation: 3},
		GeneratedAt: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC),
		Criteria: []scoring.CriterionResult{
			{Name: "Talk ratio", Metric: "talkRatio", Unit: "%", Value: 55.25, Target: scoring.Target{Min: &lo, Max: &hi}, Score: 100, Weight: 60, Evidence: "rep spoke <55%> of the time"},
			{Name: "Next steps", Metric: "keywordCoverage", Value: 50, Score: 31.3, Weight: 40, Evidence: "1 of 2 keywords",
				Keywords: &scoring.KeywordEvidence{Found: []string{"pricing"}, Missing: []string{"next step"}}},
		},
	}
	h := newTestServer(t, fakeLog{report: rep})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://example.test/reports/rpt_1", nil))
	body := w.Body.String()
	if w.Code != http.StatusOK {
		t.Fatalf("%d\n%s", w.Code, body)
	}
	for _, want := range []string{">72.5<", "passed", "Talk ratio", "55.25", "40–60 %", ">100.0<", ">60<", "rep spoke &lt;55%&gt; of the time", "missing", "next step", "default/discovery (generation 3)"} {
		if !strings.Contains(body, want) {
			t.Errorf("report page lacks %q", want)
		}
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://example.test/reports/rpt_missing", nil))
	if w.Code != http.StatusBadGateway || !strings.Contains(w.Body.String(), "no such report") {
		t.Errorf("missing report: %d", w.Code)
	}
}

// TestGuard: unknown Hosts are refused before any handler runs; pages carry
// a CSP that loads nothing from elsewhere.
func TestGuard(t *testing.T) {
	h := newTestServer(t, fakeLog{report: &scoring.Report{}})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://rebound.example/endpoints", nil))
	if w.Code != http.StatusMisdirectedRequest {
		t.Errorf("foreign Host: %d", w.Code)
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://10.0.0.7:8080/healthz", nil))
	if w.Code != http.StatusOK {
		t.Errorf("probe on the Pod IP: %d", w.Code)
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://example.test/endpoints", nil))
	if w.Code != http.StatusOK || !strings.Contains(w.Header().Get("Content-Security-Policy"), "default-src 'none'") {
		t.Errorf("endpoints: %d, CSP %q", w.Code, w.Header().Get("Content-Security-Policy"))
	}
	w = httptest.NewRecorder()
	form := url.Values{"csrf": {"wrong"}, "namespace": {"default"}, "endpoint": {"x"}}
	r := httptest.NewRequest(http.MethodPost, "http://example.test/actions/test", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	h.ServeHTTP(w, r)
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "form token") {
		t.Errorf("wrong token: %d", w.Code)
	}
}
