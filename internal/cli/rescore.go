package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/pflag"
)

// RescoreResult is what rescore prints with -o json|yaml.
type RescoreResult struct {
	Status       string `json:"status"`
	MeetingID    string `json:"meeting_id"`
	Generation   int    `json:"generation"`
	PreviousCode string `json:"previous_code"`
}

// rescoreCmd asks the receiver to score again a meeting that failed for a
// Mira-side reason (POST /v1/meetings/{id}/rescore).
func rescoreCmd(_ *pflag.FlagSet) func(context.Context, *globals, []string) error {
	return func(ctx context.Context, g *globals, args []string) error {
		if err := exactArgs(args, 1, "<meeting id>"); err != nil {
			return err
		}
		api, err := g.receiverAPI(ctx)
		if err != nil {
			return err
		}
		var out RescoreResult
		if err := api.post(ctx, "/v1/meetings/"+url.PathEscape(args[0])+"/rescore", &out); err != nil {
			return fmt.Errorf("rescore meeting %s: %w", args[0], err)
		}
		if g.output == "table" {
			_, err = fmt.Fprintf(g.stdout, "meeting %s: rescoring (run %d; it had failed with %s)\n", out.MeetingID, out.Generation, out.PreviousCode)
			return err
		}
		_, err = printData(g.stdout, g.output, out)
		return err
	}
}

// post POSTs an empty body to path and decodes the JSON answer.
func (r *receiverAPI) post(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.base+path, nil)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("reach the receiver through %s: %w", r.via, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIAnswer))
	if err != nil {
		return fmt.Errorf("read the receiver's answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		msg := e.Error
		if msg == "" {
			msg = strings.TrimSpace(string(body))
		}
		return fmt.Errorf("receiver answered %d through %s: %s", resp.StatusCode, r.via, msg)
	}
	return json.Unmarshal(body, out)
}
