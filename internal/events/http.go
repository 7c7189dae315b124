package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
)

// MaxEventBytes bounds a POST /v1/events body (413 past it).
const MaxEventBytes = 1 << 20

// Handler serves POST /v1/namespaces/{namespace}/events and the legacy
// POST /v1/events: it validates the event and publishes it in the
// workspace the path names, else in DefaultNamespace. Authentication and
// authorisation are the caller's (the routes are mounted behind them).
type Handler struct {
	Publisher Publisher
	// DefaultNamespace is the workspace of the unscoped route.
	DefaultNamespace string
	Logger           logr.Logger
	Now              func() time.Time
}

type postedEvent struct {
	ID    string          `json:"id,omitempty"`
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
}

// ServeHTTP publishes one posted event and answers 202 with its id.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var in postedEvent
	ns := r.PathValue("namespace")
	if ns == "" {
		ns = h.DefaultNamespace
	}
	if ns == "" {
		w.Header().Set("Connection", "close")
		writeError(w, http.StatusNotFound, "no default workspace: publish on /v1/namespaces/{namespace}/events")
		return
	}
	if r.ContentLength > MaxEventBytes {
		w.Header().Set("Connection", "close") // refused unread: no drain for keep-alive
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", MaxEventBytes))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxEventBytes)
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", MaxEventBytes))
			return
		}
		writeError(w, http.StatusBadRequest, "invalid JSON body")
		return
	}
	if !isEventType(in.Event) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("event must be one of %s", strings.Join(miraapi.EventTypes, ", ")))
		return
	}
	if len(in.Data) == 0 || in.Data[0] != '{' {
		writeError(w, http.StatusBadRequest, "data must be a JSON object")
		return
	}
	if in.ID != "" && !ValidID(in.ID) {
		writeError(w, http.StatusBadRequest, "id must be 1–128 characters of [A-Za-z0-9_-]")
		return
	}
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	t := now().UTC()
	ev := Event{ID: in.ID, Type: in.Event, Namespace: ns, Data: in.Data, Time: t}
	if ev.ID == "" {
		ev.ID = NewEventID(t)
	}
	if err := h.Publisher.Publish(r.Context(), ev); err != nil {
		h.Logger.Error(err, "store event")
		writeError(w, http.StatusServiceUnavailable, "the event could not be stored; retry")
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"id": ev.ID})
}

func isEventType(t string) bool {
	for _, e := range miraapi.EventTypes {
		if e == t {
			return true
		}
	}
	return false
}

// ValidID reports whether s is a usable id: 1–128 characters of [A-Za-z0-9_-].
func ValidID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
