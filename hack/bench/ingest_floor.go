package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mira/mira-operator/internal/inbound"
	"github.com/mira/mira-operator/internal/queue"
	"github.com/mira/mira-operator/internal/receiver"
)

// The ingest floor: what "verify, store durably, then 2xx" costs on this
// JetStream server written the shortest way, with none of Mira's code: a
// handler on the same kind of server (receiver.NewServer) reads the body
// under the same limit, checks the Standard Webhooks signature (HMAC-SHA256
// over id.timestamp.body, constant-time compare, 5-minute tolerance) and
// stores the body with a synchronous publish, deduplicated by webhook-id
// (24 h window, like the inbound stream), into a file-backed stream; then
// 200. Nothing consumes that stream, so it compares with the receiver's
// "pipeline paused" rows.

const floorInboundStream = "BENCH_FLOOR_INBOUND"

type ingestFloor struct {
	js  jetstream.JetStream
	key []byte
}

// startIngestFloor creates the floor's stream on the receiver's JetStream
// server and serves the floor's handler on a loopback port of its own.
func startIngestFloor(ctx context.Context, e *ingestEnv) (string, error) {
	js, err := jetstream.New(e.recv.NATS)
	if err != nil {
		return "", err
	}
	_ = js.DeleteStream(ctx, floorInboundStream)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: floorInboundStream, Subjects: []string{"bench.floor.inbound.>"},
		Storage: jetstream.FileStorage, Duplicates: queue.DuplicateWindow, Discard: jetstream.DiscardNew}); err != nil {
		return "", fmt.Errorf("floor inbound stream: %w", err)
	}
	e.stop = append(e.stop, func() { _ = js.DeleteStream(context.Background(), floorInboundStream) })
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(ingRecallSecret, "whsec_"))
	if err != nil {
		return "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := receiver.NewServer(ln.Addr().String(), &ingestFloor{js: js, key: key})
	go func() { _ = srv.Serve(ln) }()
	e.stop = append(e.stop, func() { _ = srv.Close() })
	return "http://" + ln.Addr().String() + "/webhooks/floor", nil
}

func (f *ingestFloor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, inbound.MaxWebhookBytes))
	if err != nil {
		http.Error(w, "body", http.StatusRequestEntityTooLarge)
		return
	}
	id, ts := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp")
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || id == "" || time.Since(time.Unix(unix, 0)).Abs() > 5*time.Minute {
		http.Error(w, "bad signature headers", http.StatusUnauthorized)
		return
	}
	mac := hmac.New(sha256.New, f.key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	ok := false
	for _, sig := range strings.Fields(r.Header.Get("webhook-signature")) {
		if v, found := strings.CutPrefix(sig, "v1,"); found {
			if got, err := base64.StdEncoding.DecodeString(v); err == nil && hmac.Equal(got, want) {
				ok = true
			}
		}
	}
	if !ok {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	m := &nats.Msg{Subject: "bench.floor.inbound.recall", Data: body, Header: nats.Header{}}
	if _, err := f.js.PublishMsg(r.Context(), m, jetstream.WithMsgID(id)); err != nil {
		http.Error(w, "store", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"status":"stored"}`)
}
