package cli

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

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
	return r.do(ctx, http.MethodPost, path, out)
}
