package docs

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mira/mira-operator/internal/delivery"
	"github.com/mira/mira-operator/internal/signing"
)

// snippet is one verification snippet of docs/wire-contract.md.
type snippet struct {
	file  string // under docs/snippets
	fence string // the markdown code fence's language
	// command runs the snippet from the repository root; it is set up in
	// TestSnippets (the Go one is built first).
	command []string
}

var snippets = []snippet{
	{file: "verify.go", fence: "go"},
	{file: "verify.js", fence: "js", command: []string{"node", "docs/snippets/verify.js"}},
	{file: "verify.py", fence: "python", command: []string{"python3", "docs/snippets/verify.py"}},
}

// TestSnippetsAreInTheDocs checks that docs/wire-contract.md embeds every
// snippet file verbatim, so the tested code is the documented code.
func TestSnippetsAreInTheDocs(t *testing.T) {
	md, err := os.ReadFile(filepath.Join(root, "docs/wire-contract.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range snippets {
		code, err := os.ReadFile(filepath.Join(root, "docs/snippets", s.file))
		if err != nil {
			t.Fatal(err)
		}
		block := "```" + s.fence + "\n" + string(code) + "```\n"
		if !bytes.Contains(md, []byte(block)) {
			t.Errorf("docs/wire-contract.md does not embed docs/snippets/%s verbatim in a ```%s block: copy the file's content into it", s.file, s.fence)
		}
	}
}

// TestWireContractNamesTheHeaders checks that the wire contract documents
// every header the sender sets.
func TestWireContractNamesTheHeaders(t *testing.T) {
	md, err := os.ReadFile(filepath.Join(root, "docs/wire-contract.md"))
	if err != nil {
		t.Fatal(err)
	}
	req := request(t, message("whsec_"+strings.Repeat("QUJD", 8), nil), time.Now())
	for name := range req.Header {
		if !bytes.Contains(bytes.ToLower(md), []byte("`"+strings.ToLower(name)+"`")) {
			t.Errorf("docs/wire-contract.md does not mention the header `%s`", name)
		}
	}
}

// verdict is what a snippet's command line prints.
type verdict struct{ mira, standard string }

func (v verdict) String() string {
	return "X-Mira-Signature: " + v.mira + "\nwebhook-signature: " + v.standard + "\n"
}

func TestSnippets(t *testing.T) {
	goBin := filepath.Join(t.TempDir(), "verify")
	build := exec.Command("go", "build", "-o", goBin, "./docs/snippets")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./docs/snippets: %v\n%s", err, out)
	}
	snippets[0].command = []string{goBin}

	current, err := signing.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	previous, err := signing.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ok, rejected := "ok", "rejected"
	cases := []struct {
		name     string
		req      *http.Request
		body     func([]byte) []byte // what the consumer reads, from what was sent
		consumer string              // the secret the consumer verifies with
		want     verdict
	}{
		{name: "valid delivery", req: request(t, message(current, nil), now), consumer: current,
			want: verdict{ok, ok}},
		{name: "tampered body", req: request(t, message(current, nil), now), consumer: current,
			body: func(b []byte) []byte { return bytes.Replace(b, []byte("usr_8812"), []byte("usr_8813"), 1) },
			want: verdict{rejected, rejected}},
		{name: "re-serialized JSON", req: request(t, message(current, nil), now), consumer: current,
			body: reserialize, want: verdict{rejected, rejected}},
		{name: "wrong secret", req: request(t, message(current, nil), now), consumer: previous,
			want: verdict{rejected, rejected}},
		{name: "rotation, consumer has the new secret", req: request(t, message(current, []string{previous}), now), consumer: current,
			want: verdict{ok, ok}},
		{name: "rotation, consumer still has the old secret", req: request(t, message(current, []string{previous}), now), consumer: previous,
			want: verdict{rejected, ok}},
		{name: "whsec_ prefix stripped by the consumer", req: request(t, message(current, nil), now),
			consumer: strings.TrimPrefix(current, "whsec_"), want: verdict{rejected, ok}},
		{name: "timestamp older than 5 minutes", req: request(t, message(current, nil), now.Add(-10*time.Minute)), consumer: current,
			want: verdict{ok, rejected}},
		{name: "timestamp 5 minutes ahead", req: request(t, message(current, nil), now.Add(10*time.Minute)), consumer: current,
			want: verdict{ok, rejected}},
	}
	for _, s := range snippets {
		if _, err := exec.LookPath(s.command[0]); err != nil {
			t.Errorf("%s: %s is not installed", s.file, s.command[0])
			continue
		}
		for _, c := range cases {
			t.Run(s.file+"/"+c.name, func(t *testing.T) {
				body := readBody(t, c.req)
				if c.body != nil {
					body = c.body(body)
				}
				cmd := exec.Command(s.command[0], s.command[1:]...)
				cmd.Dir = root
				cmd.Stdin = bytes.NewReader(body)
				h := c.req.Header
				cmd.Env = append(os.Environ(),
					"MIRA_SIGNING_SECRET="+c.consumer,
					"X_MIRA_SIGNATURE="+h.Get(delivery.HeaderSignature),
					"WEBHOOK_ID="+h.Get(delivery.HeaderWebhookID),
					"WEBHOOK_TIMESTAMP="+h.Get(delivery.HeaderWebhookTimestamp),
					"WEBHOOK_SIGNATURE="+h.Get(delivery.HeaderWebhookSignature),
				)
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				err := cmd.Run()
				if got := stdout.String(); got != c.want.String() {
					t.Fatalf("got\n%swant\n%s(stderr: %s)", got, c.want, stderr.String())
				}
				wantExit := 0
				if c.want != (verdict{ok, ok}) {
					wantExit = 1
				}
				if code := cmd.ProcessState.ExitCode(); code != wantExit {
					t.Fatalf("exit code %d (%v), want %d; stderr: %s", code, err, wantExit, stderr.String())
				}
			})
		}
	}
}

// TestProductDocsNodeCheck runs the one-line check of Mira's product docs
// (DESIGN.md) against a delivery: it must pass as written.
func TestProductDocsNodeCheck(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("node is not installed")
	}
	secret, err := signing.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	req := request(t, message(secret, nil), time.Now())
	script := `const { createHmac, timingSafeEqual } = require("crypto");
const [secret, signature] = [process.env.SECRET, process.env.SIGNATURE];
const body = require("fs").readFileSync(0);
process.exit(timingSafeEqual(Buffer.from(createHmac("sha256", secret).update(body).digest("hex")), Buffer.from(signature)) ? 0 : 1);`
	cmd := exec.Command("node", "-e", script)
	cmd.Stdin = bytes.NewReader(readBody(t, req))
	cmd.Env = append(os.Environ(), "SECRET="+secret, "SIGNATURE="+req.Header.Get(delivery.HeaderSignature))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the product docs' check rejected a delivery: %v\n%s", err, out)
	}
}

func message(secret string, previous []string) delivery.Message {
	data := json.RawMessage(`{"report_id":"rpt_0123456789abcdef01234567","meeting_id":"mtg_0123456789abcdef01234567","user_id":"usr_8812","note":"<ü & é>"}`)
	body, err := delivery.BuildBody("report.completed", data, time.Date(2026, 3, 2, 10, 15, 4, 123e6, time.UTC))
	if err != nil {
		panic(err)
	}
	return delivery.Message{ID: "dlv_3b9e0c1d2e3f405162738495a6", EventType: "report.completed", Body: body,
		Secret: secret, PreviousSecrets: previous}
}

func request(t *testing.T, m delivery.Message, at time.Time) *http.Request {
	t.Helper()
	req, err := delivery.NewRequest(t.Context(), "https://consumer.example/hooks", m, at)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func readBody(t *testing.T, req *http.Request) []byte {
	t.Helper()
	body, err := req.GetBody()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := b.ReadFrom(body); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// reserialize is what a framework that parses JSON and serializes it again
// hands the consumer: same data, different bytes.
func reserialize(b []byte) []byte {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		panic(err)
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(err)
	}
	return out
}
