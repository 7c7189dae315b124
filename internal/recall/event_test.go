package recall_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/mira/mira-operator/internal/recall"
	"github.com/mira/mira-operator/internal/recall/recalltest"
	"github.com/mira/mira-operator/internal/signing"
)

// fixtureBody is the Recall test vector from INTEGRATIONS.md.
const fixtureBody = `{"event":"bot.done","data":{"data":{"code":"done","sub_code":null,"updated_at":"2025-03-04T15:02:11.482913+00:00"},"bot":{"id":"6b1f2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d","metadata":{"user_id":"usr_8812","workspace":"acme"}}}}`

func TestParseEventFixture(t *testing.T) {
	// The fixture verifies with the existing signing package (clock injected)...
	h := signing.Standard{ID: "msg_2fXq8ZrecallFixture01", Timestamp: "1741100531", Signature: "v1,NlZU7rqpqxRQ3rylqQrOPDAN6soe16IGTl/kp0EuTp4="}
	if err := signing.VerifyStandard([]string{"whsec_cmVjYWxsLWZpeHR1cmUta2V5LTAxMjM0NTY3ODlhYmM="}, h, []byte(fixtureBody), time.Unix(1741100531, 0), signing.DefaultTolerance); err != nil {
		t.Fatalf("fixture signature: %v", err)
	}
	// ...and parses to the documented bot.
	ev, err := recall.ParseEvent([]byte(fixtureBody))
	if err != nil {
		t.Fatal(err)
	}
	want := recall.Event{
		Type:      "bot.done",
		Kind:      recall.KindBotStatus,
		BotID:     "6b1f2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
		Code:      "done",
		UpdatedAt: time.Date(2025, 3, 4, 15, 2, 11, 482913000, time.UTC),
		Metadata:  map[string]string{"user_id": "usr_8812", "workspace": "acme"},
	}
	if !reflect.DeepEqual(ev, want) {
		t.Fatalf("ParseEvent(fixture)\n got %+v\nwant %+v", ev, want)
	}
	if !ev.IsDone() || ev.IsFatal() {
		t.Fatalf("IsDone() = %v, IsFatal() = %v; want true, false", ev.IsDone(), ev.IsFatal())
	}
}

func TestParseEvent(t *testing.T) {
	at := time.Date(2025, 3, 4, 15, 2, 11, 0, time.UTC)
	tests := []struct {
		name     string
		body     string
		want     recall.Event
		done     bool
		fatal    bool
		malforms bool
	}{
		{
			name:  "current fatal with sub_code",
			body:  `{"event":"bot.fatal","data":{"data":{"code":"fatal","sub_code":"meeting_not_found","updated_at":"2025-03-04T15:02:11Z"},"bot":{"id":"bot_1","metadata":{}}}}`,
			want:  recall.Event{Type: "bot.fatal", Kind: recall.KindBotStatus, BotID: "bot_1", Code: "fatal", SubCode: "meeting_not_found", UpdatedAt: at, Metadata: map[string]string{}},
			fatal: true,
		},
		{
			name: "current unknown code is kept, not an error",
			body: `{"event":"bot.teleported","data":{"data":{"code":"teleported","sub_code":"via_wormhole","updated_at":"2025-03-04T15:02:11+00:00"},"bot":{"id":"bot_2","metadata":{"user_id":"usr_1"}}}}`,
			want: recall.Event{Type: "bot.teleported", Kind: recall.KindBotStatus, BotID: "bot_2", Code: "teleported", SubCode: "via_wormhole", UpdatedAt: at, Metadata: map[string]string{"user_id": "usr_1"}},
		},
		{
			name: "current without data.data takes the code from the event name",
			body: `{"event":"bot.in_call_recording","data":{"bot":{"id":"bot_3"}}}`,
			want: recall.Event{Type: "bot.in_call_recording", Kind: recall.KindBotStatus, BotID: "bot_3", Code: "in_call_recording"},
		},
		{
			name: "metadata numbers, booleans and nulls",
			body: `{"event":"bot.done","data":{"data":{"code":"done","sub_code":null,"updated_at":"not a time"},"bot":{"id":42,"metadata":{"user_id":8812,"ratio":1.5,"vip":true,"gone":null,"tags":["a", "b"]}}}}`,
			want: recall.Event{Type: "bot.done", Kind: recall.KindBotStatus, BotID: "42", Code: "done", Metadata: map[string]string{"user_id": "8812", "ratio": "1.5", "vip": "true", "tags": `["a","b"]`}},
			done: true,
		},
		{
			name: "legacy done with null sub_code and recording id",
			body: `{"event":"bot.status_change","data":{"bot_id":"bot_4","status":{"code":"done","sub_code":null,"message":"Bot is done.","created_at":"2025-03-04T15:02:11.000000+00:00","recording_id":"rec_4"}}}`,
			want: recall.Event{Type: "bot.status_change", Kind: recall.KindBotStatus, BotID: "bot_4", Code: "done", Message: "Bot is done.", UpdatedAt: at, RecordingID: "rec_4", Legacy: true},
			done: true,
		},
		{
			name:  "legacy fatal with meeting_url as Mira's docs show",
			body:  `{"event":"bot.status_change","data":{"bot_id":"bot_5","meeting_url":"https://meet.google.com/abc-defg-hij","status":{"code":"fatal","sub_code":"bot_kicked_from_call","message":null,"created_at":"2025-03-04T15:02:11Z"}}}`,
			want:  recall.Event{Type: "bot.status_change", Kind: recall.KindBotStatus, BotID: "bot_5", Code: "fatal", SubCode: "bot_kicked_from_call", UpdatedAt: at, MeetingURL: "https://meet.google.com/abc-defg-hij", Legacy: true},
			fatal: true,
		},
		{
			name: "legacy without status",
			body: `{"event":"bot.status_change","data":{"bot_id":"bot_6"}}`,
			want: recall.Event{Type: "bot.status_change", Kind: recall.KindBotStatus, BotID: "bot_6", Legacy: true},
		},
		{
			name: "transcript.done",
			body: `{"event":"transcript.done","data":{"data":{"code":"done","sub_code":null,"updated_at":"2025-03-04T15:02:11Z"},"transcript":{"id":"tr_1","metadata":{}},"recording":{"id":"rec_1","metadata":{}},"bot":{"id":"bot_7","metadata":{"user_id":"usr_7"}}}}`,
			want: recall.Event{Type: "transcript.done", Kind: recall.KindTranscriptDone, BotID: "bot_7", Code: "done", UpdatedAt: at, Metadata: map[string]string{"user_id": "usr_7"}, TranscriptID: "tr_1", RecordingID: "rec_1"},
		},
		{
			name: "transcript.failed without data.data",
			body: `{"event":"transcript.failed","data":{"transcript":{"id":"tr_2"},"recording":{"id":"rec_2"},"bot":{"id":"bot_8"}}}`,
			want: recall.Event{Type: "transcript.failed", Kind: recall.KindTranscriptFailed, BotID: "bot_8", Code: "failed", TranscriptID: "tr_2", RecordingID: "rec_2"},
		},
		{
			name: "recording.done",
			body: `{"event":"recording.done","data":{"data":{"code":"done"},"recording":{"id":"rec_3"},"bot":{"id":"bot_9"}}}`,
			want: recall.Event{Type: "recording.done", Kind: recall.KindRecordingStatus, BotID: "bot_9", Code: "done", RecordingID: "rec_3"},
		},
		{
			name: "transcript.processing without data.data",
			body: `{"event":"transcript.processing","data":{"transcript":{"id":"tr_9"},"recording":{"id":"rec_9"},"bot":{"id":"bot_9"}}}`,
			want: recall.Event{Type: "transcript.processing", Kind: recall.KindTranscriptStatus, BotID: "bot_9", Code: "processing", TranscriptID: "tr_9", RecordingID: "rec_9"},
		},
		{
			name: "unknown event",
			body: `{"event":"participant_events.join","data":{"bot":{"id":"bot_9"}}}`,
			want: recall.Event{Type: "participant_events.join", Kind: recall.KindUnknown, BotID: "bot_9", Metadata: nil},
		},
		{
			name: "data of the wrong type is ignored",
			body: `{"event":"bot.done","data":"surprise"}`,
			want: recall.Event{Type: "bot.done", Kind: recall.KindBotStatus, Code: "done"},
			done: true,
		},
		{name: "invalid JSON", body: `{"event":"bot.done",`, malforms: true},
		{name: "not an object", body: `["bot.done"]`, malforms: true},
		{name: "JSON null", body: `null`, malforms: true},
		{name: "no event", body: `{"data":{}}`, malforms: true},
		{name: "event not a string", body: `{"event":7,"data":{}}`, malforms: true},
		{name: "empty event", body: `{"event":"","data":{}}`, malforms: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := recall.ParseEvent([]byte(tt.body))
			if cerr := recall.CheckEvent([]byte(tt.body)); (cerr == nil) != (err == nil) {
				t.Fatalf("CheckEvent() = %v, ParseEvent() = %v: the handler's check must accept exactly what parses", cerr, err)
			}
			if tt.malforms {
				if !errors.Is(err, recall.ErrMalformed) {
					t.Fatalf("ParseEvent() error = %v, want ErrMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseEvent() error = %v", err)
			}
			if !reflect.DeepEqual(ev, tt.want) {
				t.Fatalf("ParseEvent()\n got %+v\nwant %+v", ev, tt.want)
			}
			if ev.IsDone() != tt.done || ev.IsFatal() != tt.fatal {
				t.Fatalf("IsDone() = %v, IsFatal() = %v; want %v, %v", ev.IsDone(), ev.IsFatal(), tt.done, tt.fatal)
			}
		})
	}
}

// TestParseEventBuilders checks that recalltest's payload builders produce
// what ParseEvent expects, so tests elsewhere can rely on them.
func TestParseEventBuilders(t *testing.T) {
	at := time.Date(2025, 3, 4, 15, 2, 11, 482913000, time.UTC)
	md := map[string]string{"user_id": "usr_1"}
	tests := []struct {
		name string
		body []byte
		want recall.Event
	}{
		{
			name: "done",
			body: recalltest.BotDonePayload("b1", md, at),
			want: recall.Event{Type: "bot.done", Kind: recall.KindBotStatus, BotID: "b1", Code: "done", UpdatedAt: at, Metadata: md},
		},
		{
			name: "fatal",
			body: recalltest.BotFatalPayload("b2", "meeting_password_incorrect", nil, at),
			want: recall.Event{Type: "bot.fatal", Kind: recall.KindBotStatus, BotID: "b2", Code: "fatal", SubCode: "meeting_password_incorrect", UpdatedAt: at, Metadata: map[string]string{}},
		},
		{
			name: "legacy",
			body: recalltest.LegacyStatusChangePayload("b3", "done", "", "https://zoom.us/j/1", at),
			want: recall.Event{Type: "bot.status_change", Kind: recall.KindBotStatus, BotID: "b3", Code: "done", UpdatedAt: at, MeetingURL: "https://zoom.us/j/1", Legacy: true},
		},
		{
			name: "transcript done",
			body: recalltest.TranscriptDonePayload("b4", "rec_4", "tr_4", md, at),
			want: recall.Event{Type: "transcript.done", Kind: recall.KindTranscriptDone, BotID: "b4", Code: "done", UpdatedAt: at, Metadata: md, TranscriptID: "tr_4", RecordingID: "rec_4"},
		},
		{
			name: "transcript failed",
			body: recalltest.TranscriptFailedPayload("b5", "rec_5", "tr_5", "zoom_captions_failure", md, at),
			want: recall.Event{Type: "transcript.failed", Kind: recall.KindTranscriptFailed, BotID: "b5", Code: "failed", SubCode: "zoom_captions_failure", UpdatedAt: at, Metadata: md, TranscriptID: "tr_5", RecordingID: "rec_5"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := recall.ParseEvent(tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(ev, tt.want) {
				t.Fatalf("ParseEvent(%s)\n got %+v\nwant %+v", tt.body, ev, tt.want)
			}
		})
	}
}
