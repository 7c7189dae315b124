package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/pflag"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	datav1 "github.com/mira/mira-operator/api/data/v1alpha1"
	miraapi "github.com/mira/mira-operator/api/v1alpha1"
)

func deliveriesCmd(fs *pflag.FlagSet) func(context.Context, *globals, []string) error {
	outcome := fs.String("outcome", "", "only deliveries with this outcome: delivered, retrying, dead, skipped, pending or failed (retrying or dead); comma-separated")
	limit := fs.Int("limit", 20, "at most this many deliveries")
	since := fs.String("since", "", "only deliveries created since this RFC 3339 time or duration ago (e.g. 1h)")
	cursor := fs.String("cursor", "", "continue a previous listing (printed when there are more)")
	return func(ctx context.Context, g *globals, args []string) error {
		if err := exactArgs(args, 1, "<endpoint>"); err != nil {
			return err
		}
		ns, name, err := g.endpointKey(args[0])
		if err != nil {
			return err
		}
		if *limit < 1 {
			return fmt.Errorf("--limit must be positive")
		}
		q := deliveryQuery{Endpoint: name, Outcome: *outcome, Limit: *limit, Cursor: *cursor}
		if *since != "" {
			t, err := parseSince(*since, time.Now())
			if err != nil {
				return fmt.Errorf("--since: %w", err)
			}
			q.Since = metav1.NewTime(t)
		}
		if err := g.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &miraapi.WebhookEndpoint{}); err != nil {
			if apierrors.IsNotFound(err) {
				return fmt.Errorf("no such WebhookEndpoint %s/%s (kubectl get deliveries -n %s -l %s=%s reads the log of deleted ones)", ns, name, ns, datav1.LabelEndpoint, name)
			}
			return fmt.Errorf("read WebhookEndpoint %s/%s: %w", ns, name, err)
		}
		data, err := newDataClient(g.cfg)
		if err != nil {
			return err
		}
		items, next, err := data.page(ctx, ns, q)
		if err != nil {
			return fmt.Errorf("list deliveries of %s/%s: %w", ns, name, err)
		}
		page := datav1.DeliveryPage{Items: items, NextCursor: next}
		if page.Items == nil {
			page.Items = []datav1.Delivery{}
		}
		if done, err := printData(g.stdout, g.output, page); done {
			return err
		}
		if len(page.Items) == 0 {
			fmt.Fprintf(g.stderr, "No deliveries found for %s/%s.\n", ns, name)
			return nil
		}
		tw := newTable(g.stdout)
		fmt.Fprintln(tw, "ID\tEVENT\tATTEMPTS\tLAST CODE\tSTATE\tCREATED")
		for _, r := range page.Items {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", r.ID, r.EventType, r.AttemptCount, lastCode(r), r.State, r.Created.UTC().Format(time.RFC3339))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if page.NextCursor != "" {
			fmt.Fprintf(g.stderr, "More deliveries: add --cursor %s\n", page.NextCursor)
		}
		return nil
	}
}

// lastCode is the last attempt's HTTP status, or "-" (no answer, or none yet).
func lastCode(r datav1.Delivery) string {
	if len(r.Attempts) == 0 {
		return "-"
	}
	if c := r.Attempts[len(r.Attempts)-1].StatusCode; c != 0 {
		return strconv.Itoa(c)
	}
	return "-"
}

func deliveryCmd(fs *pflag.FlagSet) func(context.Context, *globals, []string) error {
	return func(ctx context.Context, g *globals, args []string) error {
		if err := exactArgs(args, 1, "<delivery id> or <namespace>/<delivery id>"); err != nil {
			return err
		}
		ns, id, exact, err := splitRef(args[0], g.namespace)
		if err != nil {
			return err
		}
		data, err := newDataClient(g.cfg)
		if err != nil {
			return err
		}
		o, err := data.findDelivery(ctx, ns, id, exact)
		if err != nil {
			return fmt.Errorf("read delivery %s: %w", id, err)
		}
		rec := recordOf(o)
		if done, err := printData(g.stdout, g.output, rec); done {
			return err
		}
		return describeDelivery(g, rec)
	}
}

func describeDelivery(g *globals, r datav1.Delivery) error {
	w := g.stdout
	tw := newTable(w)
	fmt.Fprintf(tw, "ID:\t%s\n", line(r.ID))
	fmt.Fprintf(tw, "Event:\t%s (%s)\n", line(r.EventType), line(r.EventID))
	fmt.Fprintf(tw, "Endpoint:\t%s/%s\n", r.Namespace, r.Endpoint)
	if r.URL != "" {
		fmt.Fprintf(tw, "URL:\t%s\n", line(miraapi.RedactURL(r.URL)))
	}
	fmt.Fprintf(tw, "State:\t%s\n", r.State)
	if r.Reason != "" {
		fmt.Fprintf(tw, "Reason:\t%s\n", line(r.Reason))
	}
	fmt.Fprintf(tw, "Created:\t%s\n", r.Created.UTC().Format(time.RFC3339))
	fmt.Fprintf(tw, "Updated:\t%s\n", r.Updated.UTC().Format(time.RFC3339))
	if r.NextRetry != nil {
		fmt.Fprintf(tw, "Next retry:\t%s\n", r.NextRetry.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(tw, "Attempts:\t%d in round %d (%d logged)\n", r.AttemptCount, r.Round, len(r.Attempts))
	if s := r.OlderAttempts; s != nil {
		fmt.Fprintf(tw, "Older attempts:\t%d from %s to %s, last codes %v\n", s.Count,
			s.First.UTC().Format(time.RFC3339), s.Last.UTC().Format(time.RFC3339), s.LastCodes)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, a := range r.Attempts {
		fmt.Fprintf(w, "\nAttempt %d (round %d) at %s: %s", a.Number, a.Round, a.Time.UTC().Format(time.RFC3339), a.Outcome)
		if a.StatusCode != 0 {
			fmt.Fprintf(w, ", HTTP %d", a.StatusCode)
		}
		fmt.Fprintf(w, ", %dms\n", a.DurationMillis)
		if a.Error != "" {
			fmt.Fprintf(w, "  Error: %s\n", line(a.Error))
		}
		fmt.Fprintf(w, "  Request: POST %s\n", line(miraapi.RedactURL(a.URL)))
		for _, k := range sortedKeys(a.RequestHeaders) {
			fmt.Fprintf(w, "    %s: %s\n", line(k), line(a.RequestHeaders[k]))
		}
		fmt.Fprintf(w, "  Request body:\n%s\n", indent(text(r.Body), "    "))
		if a.StatusCode != 0 {
			fmt.Fprintf(w, "  Response: %d\n", a.StatusCode)
			for _, k := range sortedKeys(a.ResponseHeaders) {
				fmt.Fprintf(w, "    %s: %s\n", line(k), line(a.ResponseHeaders[k]))
			}
			if a.ResponseBody != "" {
				fmt.Fprintf(w, "  Response body:\n%s\n", indent(text(a.ResponseBody), "    "))
			}
		}
		if a.NextRetry != nil {
			fmt.Fprintf(w, "  Next retry: %s\n", a.NextRetry.UTC().Format(time.RFC3339))
		}
	}
	return nil
}

// line makes a consumer- or publisher-supplied string safe to print on a
// terminal on one line: control characters (ESC, CR, newlines, ...),
// Unicode bidi overrides and invalid UTF-8 are shown escaped, so a response
// cannot inject terminal escape sequences or rewrite what is shown.
func line(s string) string { return escapeControls(s, false) }

// text is line for multi-line text: newlines and tabs are kept.
func text(s string) string { return escapeControls(s, true) }

func escapeControls(s string, multiline bool) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			_, size := utf8.DecodeRuneInString(s[i:])
			if size == 1 {
				fmt.Fprintf(&b, "\\x%02x", s[i])
				continue
			}
			b.WriteRune(r)
		case multiline && (r == '\n' || r == '\t'):
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\x%02x", r)
		case (r >= 0x80 && r < 0xa0) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x200e || r == 0x200f || r == 0x061c:
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func indent(s, prefix string) string {
	s = strings.TrimRight(s, "\n")
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}

func reportCmd(fs *pflag.FlagSet) func(context.Context, *globals, []string) error {
	return func(ctx context.Context, g *globals, args []string) error {
		if err := exactArgs(args, 1, "<report id> or <namespace>/<report id>"); err != nil {
			return err
		}
		ns, id, exact, err := splitRef(args[0], g.namespace)
		if err != nil {
			return err
		}
		data, err := newDataClient(g.cfg)
		if err != nil {
			return err
		}
		o, err := data.findReport(ctx, ns, id, exact)
		if err != nil {
			return fmt.Errorf("read report %s: %w", id, err)
		}
		report := json.RawMessage(o.Data.Raw)
		format := g.output
		if format == "table" {
			// A report is a document, not a row: show it as YAML.
			format = "yaml"
		}
		_, err = printData(g.stdout, format, report)
		return err
	}
}
