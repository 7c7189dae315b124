package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/mira/mira-operator/internal/recall/recalltest"
)

// Fixed local addresses of the stack, so the demo and the docs can name them.
const (
	receiverAddr      = "127.0.0.1:18080"
	recallStandInAddr = "127.0.0.1:18090"
	integrationsNS    = "mira-system"
	integrationsName  = "mira-integrations"
	// StandInAPIKey is the key the local Recall stand-in accepts.
	standInAPIKey = "local-stand-in-key"
)

// setupIntegrations creates mira-system, the integrations Secret with fresh
// random secrets (reused across runs from bin/dev/integrations.yaml) and the
// mira-receiver Service whose local-url annotation lets `kubectl mira` reach
// the local receiver (the API server does not proxy to loopback).
func setupIntegrations(ctx context.Context, c client.Client, devDir string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: integrationsNS}}
	if err := c.Create(ctx, ns); err != nil && !isAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", integrationsNS, err)
	}
	values, err := loadOrCreateSecrets(filepath.Join(devDir, "integrations.yaml"))
	if err != nil {
		return err
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: integrationsNS, Name: integrationsName},
		StringData: values,
	}
	if err := c.Create(ctx, secret); err != nil && !isAlreadyExists(err) {
		return fmt.Errorf("create integrations Secret: %w", err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: integrationsNS, Name: "mira-receiver",
			Annotations: map[string]string{"platform.mira.io/local-url": "http://" + receiverAddr}},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 8080}}},
	}
	if err := c.Create(ctx, svc); err != nil && !isAlreadyExists(err) {
		return fmt.Errorf("create mira-receiver Service: %w", err)
	}
	return nil
}

func loadOrCreateSecrets(path string) (map[string]string, error) {
	values := map[string]string{}
	if raw, err := os.ReadFile(path); err == nil {
		if err := yaml.Unmarshal(raw, &values); err == nil && values["api-token"] != "" {
			return values, nil
		}
	}
	token := make([]byte, 24)
	recallKey := make([]byte, 32)
	stripe := make([]byte, 24)
	for _, b := range [][]byte{token, recallKey, stripe} {
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
	}
	values = map[string]string{
		"api-token":             hex.EncodeToString(token),
		"recall-webhook-secret": "whsec_" + base64.StdEncoding.EncodeToString(recallKey),
		"recall-api-key":        standInAPIKey,
		"stripe-webhook-secret": "whsec_" + hex.EncodeToString(stripe),
	}
	raw, err := yaml.Marshal(values)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return nil, err
	}
	return values, nil
}

// startRecallStandIn serves the Recall.ai stand-in, plus dev-only routes the
// demo uses:
//
//   - POST /_stand-in/bots/{id} with {"metadata":{...},"transcript":[...],
//     "setup":"streaming|async|legacy","processing_reads":n} registers a bot
//     (transcript optional: a sample one; setup default streaming; a negative
//     processing_reads keeps the transcript processing until completed)
//   - GET /_stand-in/bots/{id} answers {"transcript":<status code>,
//     "create_transcript_calls":n}
//   - POST /_stand-in/bots/{id}/complete marks the transcript done and answers
//     the transcript.done webhook body Recall would send (the caller signs and
//     posts it)
func startRecallStandIn(addr string) (*http.Server, error) {
	api := recalltest.NewAPI(standInAPIKey)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /_stand-in/bots/{id}", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Metadata        map[string]string `json:"metadata"`
			Transcript      jsonRaw           `json:"transcript"`
			Setup           string            `json:"setup"`
			ProcessingReads int               `json:"processing_reads"`
		}
		if err := decodeJSON(r, &in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		transcript := []byte(in.Transcript)
		if len(transcript) == 0 {
			transcript = recalltest.SampleTranscript()
		}
		setups := map[string]recalltest.Setup{"": recalltest.SetupStreaming, "streaming": recalltest.SetupStreaming,
			"async": recalltest.SetupAsync, "legacy": recalltest.SetupLegacy}
		setup, ok := setups[in.Setup]
		if !ok {
			http.Error(w, "setup must be streaming, async or legacy", http.StatusBadRequest)
			return
		}
		api.AddBotWith(r.PathValue("id"), recalltest.BotOptions{Metadata: in.Metadata, Transcript: transcript,
			Setup: setup, ProcessingReads: in.ProcessingReads})
		w.WriteHeader(http.StatusCreated)
	})
	mux.HandleFunc("GET /_stand-in/bots/{id}", func(w http.ResponseWriter, r *http.Request) {
		code, calls := api.TranscriptStatus(r.PathValue("id"))
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"transcript": code, "create_transcript_calls": calls})
	})
	mux.HandleFunc("POST /_stand-in/bots/{id}/complete", func(w http.ResponseWriter, r *http.Request) {
		body := api.CompleteTranscript(r.PathValue("id"))
		if body == nil {
			http.Error(w, "no such bot, or it has no transcript yet", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body) //nolint:gosec // G705: the stand-in's own JSON, served as application/json
	})
	mux.Handle("/", api)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for the Recall stand-in on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return srv, nil
}

// waitForSecret waits until the controller has generated a signing Secret.
func waitForSecret(ctx context.Context, c client.Client, ns, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &corev1.Secret{})
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("secret %s/%s did not appear: %w", ns, name, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
