package cli_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

func TestRescore(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path+" auth="+boolString(r.Header.Get("Authorization") != "" || r.Header.Get("X-Mira-Api-Token") != ""))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if strings.Contains(r.URL.Path, "mtg_completed") {
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte(`{"error":"meeting mtg_completed is completed; only a failed meeting can be rescored"}`))
			return
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"status":"rescoring","meeting_id":"mtg_0123","generation":1,"previous_code":"no_scoring_template"}`))
	}))
	defer srv.Close()

	out, err := plugin(t, "rescore", "mtg_0123", "--receiver-url", srv.URL)
	if err != nil || !strings.Contains(out, "mtg_0123: rescoring (run 1; it had failed with no_scoring_template)") {
		t.Errorf("rescore: %q, %v", out, err)
	}
	out, err = plugin(t, "rescore", "mtg_0123", "--receiver-url", srv.URL, "-o", "json")
	if err != nil || !strings.Contains(out, `"previous_code": "no_scoring_template"`) {
		t.Errorf("rescore -o json: %q, %v", out, err)
	}
	if _, err := plugin(t, "rescore", "mtg_completed", "--receiver-url", srv.URL); err == nil || !strings.Contains(err.Error(), "409") || !strings.Contains(err.Error(), "only a failed meeting") {
		t.Errorf("rescore of a completed meeting: %v", err)
	}
	if _, err := plugin(t, "rescore"); err == nil || !strings.Contains(err.Error(), "<meeting id>") {
		t.Errorf("rescore without a meeting: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 || got[0] != "POST /v1/meetings/mtg_0123/rescore auth=true" {
		t.Errorf("requests %v", got)
	}
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
