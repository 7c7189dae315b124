package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	datav1 "github.com/mira/mira-operator/api/data/v1alpha1"
)

func TestEscapeControls(t *testing.T) {
	for _, tc := range []struct {
		in, line, text string
	}{
		{"plain ü text", "plain ü text", "plain ü text"},
		{"\x1b[2J\x1b]0;pwned\x07", `\x1b[2J\x1b]0;pwned\x07`, `\x1b[2J\x1b]0;pwned\x07`},
		{"a\nb\tc\rd", `a\x0ab\x09c\x0dd`, "a\nb\tc\\x0dd"},
		{"\u009b31m", `\u009b31m`, `\u009b31m`},
		{"evil\u202etxt.exe", `evil\u202etxt.exe`, `evil\u202etxt.exe`},
		{"bad\xffutf8", `bad\xffutf8`, `bad\xffutf8`},
		{"kept \uFFFD", "kept \uFFFD", "kept \uFFFD"},
	} {
		if got := line(tc.in); got != tc.line {
			t.Errorf("line(%q) = %q, want %q", tc.in, got, tc.line)
		}
		if got := text(tc.in); got != tc.text {
			t.Errorf("text(%q) = %q, want %q", tc.in, got, tc.text)
		}
	}
}

// A consumer's response (body, header names and values, error) reaches the
// terminal without a single control character but newlines and tabs, and
// tokens in the target URL are not shown.
func TestDescribeDeliveryEscapesConsumerOutput(t *testing.T) {
	var out bytes.Buffer
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rec := datav1.Delivery{ID: "dlv_1", EventType: "report.completed", State: datav1.StateDead, Created: now, Updated: now,
		URL: "https://h.example.com/in?token=s3cr3t", Body: `{"event":"report.completed"}`, Reason: "gave up\x1b[31m",
		OlderAttempts: &datav1.AttemptSummary{Count: 3, First: now, Last: now, LastCodes: []int{500, 502}},
		Attempts: []datav1.Attempt{{Number: 4, Time: now, URL: "https://h.example.com/in?token=s3cr3t", StatusCode: 500,
			ResponseHeaders: map[string]string{"X-Evil\x1b]0;t\x07": "v\x1b[2J"},
			ResponseBody:    "line1\n\x1b[2Jline2\r\x1b]8;;http://phish\x1b\\click\x1b]8;;\x1b\\", Error: "boom\x1b[0m"}}}
	if err := describeDelivery(&globals{stdout: &out}, rec); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, r := range got {
		if (r < 0x20 && r != '\n' && r != '\t') || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			t.Fatalf("output holds control character %U:\n%s", r, got)
		}
	}
	for _, want := range []string{`\x1b[2Jline2\x0d`, `X-Evil\x1b]0;t\x07: v\x1b[2J`, `boom\x1b[0m`, "token=redacted", "Older attempts:", "3 from"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "s3cr3t") {
		t.Errorf("output shows the URL token:\n%s", got)
	}
}
