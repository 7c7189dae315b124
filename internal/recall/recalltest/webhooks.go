package recalltest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/mira/mira-operator/internal/signing"
)

// SignedHeaders returns the headers Recall sends with a webhook: webhook-id,
// webhook-timestamp and webhook-signature (Standard Webhooks, signed with
// secret, a "whsec_" secret) plus Content-Type.
func SignedHeaders(secret, msgID string, ts time.Time, body []byte) http.Header {
	unix := ts.Unix()
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("webhook-id", msgID)
	h.Set("webhook-timestamp", strconv.FormatInt(unix, 10))
	h.Set("webhook-signature", signing.SignStandard([]string{secret}, msgID, unix, body))
	return h
}

// SvixHeaders is SignedHeaders with the legacy svix-id, svix-timestamp and
// svix-signature names that older Recall workspaces send.
func SvixHeaders(secret, msgID string, ts time.Time, body []byte) http.Header {
	std := SignedHeaders(secret, msgID, ts, body)
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("svix-id", std.Get("webhook-id"))
	h.Set("svix-timestamp", std.Get("webhook-timestamp"))
	h.Set("svix-signature", std.Get("webhook-signature"))
	return h
}

// nullable renders "" as JSON null.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// marshal encodes payloads built from plain values, which cannot fail.
func marshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("recalltest: marshal payload: %v", err))
	}
	return b
}

// botRef is data.bot of current payloads; nil metadata renders as {}.
func botRef(botID string, metadata map[string]string) map[string]any {
	if metadata == nil {
		metadata = map[string]string{}
	}
	return map[string]any{"id": botID, "metadata": metadata}
}

// BotStatusPayload returns a current (v1.11) "bot.<code>" webhook body:
// {"event":"bot.<code>","data":{"data":{"code","sub_code","updated_at"},
// "bot":{"id","metadata"}}}. An empty subCode renders as null.
func BotStatusPayload(code, botID, subCode string, metadata map[string]string, updatedAt time.Time) []byte {
	return marshal(map[string]any{
		"event": "bot." + code,
		"data": map[string]any{
			"data": map[string]any{"code": code, "sub_code": nullable(subCode), "updated_at": formatTime(updatedAt)},
			"bot":  botRef(botID, metadata),
		},
	})
}

// BotDonePayload returns a "bot.done" webhook body (sub_code null).
func BotDonePayload(botID string, metadata map[string]string, updatedAt time.Time) []byte {
	return BotStatusPayload("done", botID, "", metadata, updatedAt)
}

// BotFatalPayload returns a "bot.fatal" webhook body with subCode, e.g.
// "meeting_not_found" or "bot_kicked_from_call".
func BotFatalPayload(botID, subCode string, metadata map[string]string, updatedAt time.Time) []byte {
	return BotStatusPayload("fatal", botID, subCode, metadata, updatedAt)
}

// LegacyStatusChangePayload returns a legacy (v1.10) "bot.status_change"
// webhook body: {"event":"bot.status_change","data":{"bot_id","status":
// {"code","sub_code","message","created_at"}}}. An empty subCode renders as
// null; a non-empty meetingURL adds data.meeting_url, as Mira's docs show.
func LegacyStatusChangePayload(botID, code, subCode, meetingURL string, createdAt time.Time) []byte {
	data := map[string]any{
		"bot_id": botID,
		"status": map[string]any{
			"code":       code,
			"sub_code":   nullable(subCode),
			"message":    nil,
			"created_at": formatTime(createdAt),
		},
	}
	if meetingURL != "" {
		data["meeting_url"] = meetingURL
	}
	return marshal(map[string]any{"event": "bot.status_change", "data": data})
}

// TranscriptDonePayload returns a "transcript.done" webhook body.
func TranscriptDonePayload(botID, recordingID, transcriptID string, metadata map[string]string, updatedAt time.Time) []byte {
	return transcriptPayload("transcript.done", "done", "", botID, recordingID, transcriptID, metadata, updatedAt)
}

// TranscriptFailedPayload returns a "transcript.failed" webhook body with
// subCode, e.g. "provider_connection_failed".
func TranscriptFailedPayload(botID, recordingID, transcriptID, subCode string, metadata map[string]string, updatedAt time.Time) []byte {
	return transcriptPayload("transcript.failed", "failed", subCode, botID, recordingID, transcriptID, metadata, updatedAt)
}

func transcriptPayload(event, code, subCode, botID, recordingID, transcriptID string, metadata map[string]string, updatedAt time.Time) []byte {
	return marshal(map[string]any{
		"event": event,
		"data": map[string]any{
			"data":       map[string]any{"code": code, "sub_code": nullable(subCode), "updated_at": formatTime(updatedAt)},
			"transcript": map[string]any{"id": transcriptID, "metadata": map[string]string{}},
			"recording":  map[string]any{"id": recordingID, "metadata": map[string]string{}},
			"bot":        botRef(botID, metadata),
		},
	})
}

// RecordingPayload returns a "recording.<code>" webhook body, e.g. code
// "done": {"event":"recording.done","data":{"data":{"code","sub_code",
// "updated_at"},"recording":{"id","metadata"},"bot":{"id","metadata"}}}.
func RecordingPayload(code, botID, recordingID string, metadata map[string]string, updatedAt time.Time) []byte {
	return marshal(map[string]any{
		"event": "recording." + code,
		"data": map[string]any{
			"data":      map[string]any{"code": code, "sub_code": nil, "updated_at": formatTime(updatedAt)},
			"recording": map[string]any{"id": recordingID, "metadata": map[string]string{}},
			"bot":       botRef(botID, metadata),
		},
	})
}
