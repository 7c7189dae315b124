package recall_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/mira/mira-operator/internal/recall"
	"github.com/mira/mira-operator/internal/recall/recalltest"
)

func TestPlanTranscript(t *testing.T) {
	done := recall.TranscriptShortcut{Present: true, ID: "tr_1", Status: recall.ShortcutStatus{Code: "done"}, Data: recall.TranscriptData{DownloadURL: "https://s3.example/t?sig=1"}}
	rec := func(id string, ms bool, tr recall.TranscriptShortcut) recall.Recording {
		return recall.Recording{ID: id, HasMediaShortcuts: ms, MediaShortcuts: recall.MediaShortcuts{Transcript: tr}}
	}
	tests := []struct {
		name string
		bot  recall.Bot
		want recall.Plan
	}{
		{"done with a download_url", recall.Bot{Recordings: []recall.Recording{rec("rec_1", true, done)}},
			recall.Plan{Step: recall.StepDownload, TranscriptID: "tr_1", RecordingID: "rec_1", DownloadURL: "https://s3.example/t?sig=1"}},
		{"processing", recall.Bot{Recordings: []recall.Recording{rec("rec_1", true, recall.TranscriptShortcut{Present: true, ID: "tr_1", Status: recall.ShortcutStatus{Code: "processing"}})}},
			recall.Plan{Step: recall.StepWait, TranscriptID: "tr_1", RecordingID: "rec_1"}},
		{"done but no URL yet", recall.Bot{Recordings: []recall.Recording{rec("rec_1", true, recall.TranscriptShortcut{Present: true, ID: "tr_1", Status: recall.ShortcutStatus{Code: "done"}})}},
			recall.Plan{Step: recall.StepWait, TranscriptID: "tr_1", RecordingID: "rec_1"}},
		{"a code Recall added is a wait", recall.Bot{Recordings: []recall.Recording{rec("rec_1", true, recall.TranscriptShortcut{Present: true, ID: "tr_1", Status: recall.ShortcutStatus{Code: "queued"}})}},
			recall.Plan{Step: recall.StepWait, TranscriptID: "tr_1", RecordingID: "rec_1"}},
		{"failed", recall.Bot{Recordings: []recall.Recording{rec("rec_1", true, recall.TranscriptShortcut{Present: true, ID: "tr_1", Status: recall.ShortcutStatus{Code: "failed", SubCode: "provider_connection_failed"}})}},
			recall.Plan{Step: recall.StepFailed, TranscriptID: "tr_1", RecordingID: "rec_1", SubCode: "provider_connection_failed"}},
		{"async: media_shortcuts without a transcript", recall.Bot{Recordings: []recall.Recording{rec("rec_1", true, recall.TranscriptShortcut{})}},
			recall.Plan{Step: recall.StepCreate, RecordingID: "rec_1"}},
		{"the recording with a transcript wins", recall.Bot{Recordings: []recall.Recording{rec("rec_0", true, recall.TranscriptShortcut{}), rec("rec_1", true, done)}},
			recall.Plan{Step: recall.StepDownload, TranscriptID: "tr_1", RecordingID: "rec_1", DownloadURL: "https://s3.example/t?sig=1"}},
		{"legacy: recordings without media_shortcuts", recall.Bot{Recordings: []recall.Recording{rec("rec_1", false, recall.TranscriptShortcut{})}},
			recall.Plan{Step: recall.StepLegacy}},
		{"legacy: no recordings", recall.Bot{}, recall.Plan{Step: recall.StepLegacy}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := recall.PlanTranscript(&tt.bot); got != tt.want {
				t.Errorf("PlanTranscript() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestAsyncTranscriptLifecycleAgainstStandIn(t *testing.T) {
	srv := recalltest.NewServer()
	defer srv.Close()
	srv.AddBotWith("bot-async", recalltest.BotOptions{Transcript: recalltest.SampleTranscript(), Setup: recalltest.SetupAsync, ProcessingReads: 1})
	c, err := recall.NewClient(recall.ClientOptions{BaseURL: srv.URL, APIKey: recalltest.DefaultAPIKey})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	bot, err := c.RetrieveBot(ctx, "bot-async")
	if err != nil {
		t.Fatal(err)
	}
	plan := recall.PlanTranscript(bot)
	if plan.Step != recall.StepCreate || plan.RecordingID != "rec_bot-async" {
		t.Fatalf("plan before create_transcript = %+v", plan)
	}
	// A rate limit first: the call is retried after Retry-After.
	srv.FailNext("/api/v1/recording/", http.StatusTooManyRequests, time.Second, 1)
	id, err := c.CreateTranscript(ctx, plan.RecordingID, json.RawMessage(`{"recallai_async":{"language_code":"en"}}`))
	if err != nil || id != "tr_bot-async" {
		t.Fatalf("CreateTranscript() = %q, %v", id, err)
	}
	if _, err := c.CreateTranscript(ctx, plan.RecordingID, json.RawMessage(`{"recallai_async":{}}`)); err == nil {
		t.Error("a second create_transcript for one recording succeeded; Recall refuses it")
	}
	tr, err := c.RetrieveTranscript(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if p := recall.PlanTranscriptStatus(tr); p.Step != recall.StepWait {
		t.Fatalf("first read: %+v, want wait", p)
	}
	tr, err = c.RetrieveTranscript(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	p := recall.PlanTranscriptStatus(tr)
	if p.Step != recall.StepDownload {
		t.Fatalf("second read: %+v, want download", p)
	}
	// An expired pre-signed URL is a 403: ErrDownloadExpired.
	srv.FailNext(recalltest.DownloadPath, http.StatusForbidden, 0, 1)
	if _, err := c.DownloadTranscript(ctx, p.DownloadURL); !errors.Is(err, recall.ErrDownloadExpired) {
		t.Fatalf("download with an expired URL: %v, want ErrDownloadExpired", err)
	}
	got, err := c.DownloadTranscript(ctx, p.DownloadURL)
	if err != nil || len(got.Segments) != 6 {
		t.Fatalf("download: %d segments, %v", len(got.Segments), err)
	}
	if _, calls := srv.TranscriptStatus("bot-async"); calls != 2 {
		t.Errorf("create_transcript answered %d times, want 2 (one job, one refusal)", calls)
	}
}
