// Command demo drives the stack that `make run` started, as a user would: it
// registers a meeting bot with the local Recall.ai stand-in, sends a signed
// Recall bot.done webhook to the receiver, and shows meeting.transcript_ready
// and report.completed being delivered to the local listener, the scored
// report, and the endpoint's status.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/mira/mira-operator/internal/inbound"
	"github.com/mira/mira-operator/internal/recall/recalltest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run() error {
	fs := flag.NewFlagSet("demo", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "bin/dev/kubeconfig", "kubeconfig written by make run")
	receiver := fs.String("receiver", "http://127.0.0.1:18080", "receiver URL")
	standIn := fs.String("recall-stand-in", "http://127.0.0.1:18090", "local Recall.ai stand-in started by make run")
	setup := fs.String("setup", "streaming", "the bot's transcript setup at the stand-in: streaming (transcript done at bot.done), async (no transcript: Mira starts one, the stand-in completes it and the demo sends transcript.done) or legacy")
	_ = fs.Parse(os.Args[1:])
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return fmt.Errorf("load %s (is `make run` running?): %w", *kubeconfig, err)
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return err
	}
	secret := &corev1.Secret{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: "mira-system", Name: "mira-integrations"}, secret); err != nil {
		return fmt.Errorf("read the integrations Secret: %w", err)
	}
	token := string(secret.Data["api-token"])

	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	botID := "demo-bot-" + hex.EncodeToString(suffix)
	metadata := map[string]string{"user_id": "usr_demo"}
	fmt.Printf("==> registering bot %s with the local Recall.ai stand-in (sample 2-speaker transcript, %s setup)\n", botID, *setup)
	reads := 0
	if *setup == "async" {
		reads = -1 // processing until the demo completes it
	}
	body, _ := json.Marshal(map[string]any{"metadata": metadata, "setup": *setup, "processing_reads": reads})
	if err := post(ctx, *standIn+"/_stand-in/bots/"+botID, body, nil, http.StatusCreated); err != nil {
		return err
	}

	payload := recalltest.BotDonePayload(botID, metadata, time.Now().UTC())
	headers := recalltest.SignedHeaders(string(secret.Data["recall-webhook-secret"]), "msg_demo_"+hex.EncodeToString(suffix), time.Now(), payload)
	fmt.Println("==> POST /webhooks/recall (bot.done, signed with recall-webhook-secret)")
	if err := post(ctx, *receiver+"/webhooks/recall", payload, headers, 0); err != nil {
		return err
	}

	if *setup == "async" {
		if err := completeAsync(ctx, *standIn, *receiver, botID, string(secret.Data["recall-webhook-secret"])); err != nil {
			return err
		}
	}

	meetingID := inbound.MeetingID(botID)
	fmt.Printf("==> waiting for deliveries of meeting %s to default/local-listener\n", meetingID)
	var reportID string
	seen := map[string]bool{}
	for ctx.Err() == nil && (!seen["meeting.transcript_ready"] || !seen["report.completed"]) {
		var page struct {
			Items []struct {
				ID    string `json:"id"`
				Event string `json:"event"`
				State string `json:"state"`
				Body  string `json:"body"`
			} `json:"items"`
		}
		if err := getJSON(ctx, *receiver+"/v1/endpoints/default/local-listener/deliveries?limit=20", token, &page); err != nil {
			return err
		}
		for _, it := range page.Items {
			var b struct {
				Data map[string]any `json:"data"`
			}
			_ = json.Unmarshal([]byte(it.Body), &b)
			if b.Data["meeting_id"] != meetingID || seen[it.Event] || it.State != "Delivered" {
				continue
			}
			seen[it.Event] = true
			fmt.Printf("    %-26s %s  delivered, signature verified by the listener\n", it.Event, it.ID)
			if it.Event == "report.completed" {
				reportID = fmt.Sprint(b.Data["report_id"])
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	if ctx.Err() != nil {
		return errors.New("timed out waiting for the deliveries; see the receiver's log in the make run shell")
	}
	var report struct {
		Overall float64 `json:"overall_score"`
		Passed  bool    `json:"passed"`
		Tmpl    struct {
			Name string `json:"name"`
		} `json:"template"`
		Criteria []struct {
			Name  string  `json:"name"`
			Value float64 `json:"value"`
			Unit  string  `json:"unit"`
			Score float64 `json:"score"`
		} `json:"criteria"`
	}
	if err := getJSON(ctx, *receiver+"/v1/reports/"+reportID, token, &report); err != nil {
		return err
	}
	fmt.Printf("==> report %s (template %s): overall %.1f, passed %v\n", reportID, report.Tmpl.Name, report.Overall, report.Passed)
	for _, cr := range report.Criteria {
		fmt.Printf("    %-16s %8.2f %-22s score %5.1f\n", cr.Name, cr.Value, cr.Unit, cr.Score)
	}
	fmt.Println("==> kubectl get webhookendpoints -A -o wide")
	cmd := exec.Command("kubectl", "--kubeconfig", *kubeconfig, "get", "webhookendpoints", "-A", "-o", "wide")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Println("    (kubectl not available:", err, ")")
	}
	return nil
}

func post(ctx context.Context, url string, body []byte, h http.Header, want int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s (is `make run` running?): %w", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if (want != 0 && resp.StatusCode != want) || (want == 0 && resp.StatusCode/100 != 2) {
		return fmt.Errorf("POST %s: %d %s", url, resp.StatusCode, bytes.TrimSpace(b))
	}
	return nil
}

func getJSON(ctx context.Context, url, token string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, bytes.TrimSpace(b))
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// completeAsync waits until Mira has started the bot's transcript at the
// stand-in (create_transcript), completes it there and sends the signed
// transcript.done webhook Recall would send.
func completeAsync(ctx context.Context, standIn, receiver, botID, secret string) error {
	fmt.Println("==> waiting for Mira's create_transcript call at the stand-in")
	for {
		var st struct {
			Transcript string `json:"transcript"`
			Calls      int    `json:"create_transcript_calls"`
		}
		if err := getJSON(ctx, standIn+"/_stand-in/bots/"+botID, "", &st); err != nil {
			return err
		}
		if st.Calls > 0 && st.Transcript != "" {
			fmt.Printf("    create_transcript called %d time(s); transcript %s\n", st.Calls, st.Transcript)
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("mira did not start a transcript: %w", ctx.Err())
		case <-time.After(300 * time.Millisecond):
		}
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, standIn+"/_stand-in/bots/"+botID+"/complete", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	payload, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("complete the transcript at the stand-in: %d %s", resp.StatusCode, payload)
	}
	headers := recalltest.SignedHeaders(secret, "msg_demo_tdone_"+botID, time.Now(), payload)
	fmt.Println("==> POST /webhooks/recall (transcript.done, signed with recall-webhook-secret)")
	return post(ctx, receiver+"/webhooks/recall", payload, headers, 0)
}
