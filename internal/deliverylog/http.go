package deliverylog

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"

	datav1 "github.com/mira/mira-operator/api/data/v1alpha1"
)

// Handlers serve the read side of the log:
// GET /v1/endpoints/{namespace}/{name}/deliveries and GET /v1/deliveries/{id}.
// Authentication is the caller's (the routes are mounted behind the token check).
type Handlers struct {
	Store *Store
	// Lookup maps an endpoint's namespace and name to its uid.
	Lookup func(namespace, name string) (uid string, ok bool)
	Logger logr.Logger
}

// List serves one page of an endpoint's deliveries.
func (h *Handlers) List(w http.ResponseWriter, r *http.Request) {
	uid, ok := h.Lookup(r.PathValue("namespace"), r.PathValue("name"))
	if !ok {
		writeError(w, http.StatusNotFound, "no such WebhookEndpoint")
		return
	}
	q := r.URL.Query()
	o := ListOptions{After: q.Get("cursor")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, "limit must be a positive number")
			return
		}
		o.Limit = n
	}
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "since must be an RFC 3339 time")
			return
		}
		o.Since = t
	}
	states, err := ParseOutcomes(q.Get("outcome"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	o.States = states
	items, next, err := h.Store.List(r.Context(), uid, o)
	if err != nil {
		h.Logger.Error(err, "list deliveries")
		writeError(w, http.StatusServiceUnavailable, "the delivery log is unavailable")
		return
	}
	if items == nil {
		items = []datav1.Delivery{}
	}
	writeJSON(w, http.StatusOK, datav1.DeliveryPage{Items: items, NextCursor: next})
}

// Get serves one delivery by id.
func (h *Handlers) Get(w http.ResponseWriter, r *http.Request) {
	rec, err := h.Store.Find(r.Context(), r.PathValue("id"))
	if errors.Is(err, ErrNotFound) {
		writeError(w, http.StatusNotFound, "no such delivery")
		return
	}
	if err != nil {
		h.Logger.Error(err, "read delivery")
		writeError(w, http.StatusServiceUnavailable, "the delivery log is unavailable")
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

// ParseOutcomes maps ?outcome=a,b to states; "failed" means retrying or dead.
func ParseOutcomes(v string) ([]string, error) {
	if v == "" {
		return nil, nil
	}
	var out []string
	for _, s := range strings.Split(v, ",") {
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "delivered":
			out = append(out, datav1.StateDelivered)
		case "retrying":
			out = append(out, datav1.StateRetrying)
		case "dead":
			out = append(out, datav1.StateDead)
		case "skipped":
			out = append(out, datav1.StateSkipped)
		case "pending":
			out = append(out, datav1.StatePending)
		case "failed":
			out = append(out, datav1.StateRetrying, datav1.StateDead)
		default:
			return nil, fmt.Errorf("outcome must be delivered, retrying, dead, skipped, pending or failed, not %q", s)
		}
	}
	return out, nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
