package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
)

// eventWait bounds the wait for the Kubernetes Event that follows a handled
// request; the request is done either way.
const eventWait = 10 * time.Second

// ActionResult is what an action prints with -o json|yaml.
type ActionResult struct {
	Endpoint   string       `json:"endpoint"`
	Annotation string       `json:"annotation"`
	Value      string       `json:"value"`
	Handled    bool         `json:"handled"`
	Event      *ActionEvent `json:"event,omitempty"`
}

// ActionEvent is the Kubernetes Event the operator emitted for the request.
type ActionEvent struct {
	Type    string `json:"type"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// action is one annotation request.
type action struct {
	annotation string
	value      string
	// reasons of the Events that report the outcome; warn are failures.
	reasons, warn []string
	// note, when set, must appear in the Event's message.
	note string
}

func redeliverCmd(fs *pflag.FlagSet) func(context.Context, *globals, []string) error {
	failedSince := fs.String("failed-since", "", "redeliver every retrying, dead or skipped delivery created since this RFC 3339 time or duration ago (e.g. 1h)")
	until := fs.String("until", "", "with --failed-since: only deliveries created before this RFC 3339 time or duration ago (e.g. 10m)")
	return func(ctx context.Context, g *globals, args []string) error {
		var value string
		switch {
		case *until != "" && *failedSince == "":
			return errors.New("--until needs --failed-since")
		case *failedSince != "" && len(args) == 1:
			now := time.Now()
			t, err := parseSince(*failedSince, now)
			if err != nil {
				return fmt.Errorf("--failed-since: %w", err)
			}
			value = "since=" + t.Format(time.RFC3339)
			if *until != "" {
				u, err := parseSince(*until, now)
				if err != nil {
					return fmt.Errorf("--until: %w", err)
				}
				if !u.After(t) {
					return errors.New("--until must be after --failed-since")
				}
				value += ";until=" + u.Format(time.RFC3339)
			}
		case *failedSince == "" && len(args) == 2:
			// A nonce makes every request a new annotation value, so the
			// same delivery can be asked for again.
			value = args[1] + "@" + strconv.FormatInt(time.Now().UnixNano(), 36)
		default:
			return errors.New("want <endpoint> <delivery id>, or <endpoint> --failed-since <time>")
		}
		return runAction(ctx, g, args[0], action{
			annotation: miraapi.RedeliverAnnotation, value: value,
			reasons: []string{"Redelivered", "RedeliverRefused"}, warn: []string{"RedeliverRefused"},
			note: value,
		})
	}
}

func replayCmd(fs *pflag.FlagSet) func(context.Context, *globals, []string) error {
	since := fs.String("since", "", "replay events stored since this RFC 3339 time or duration ago (e.g. 24h); required")
	until := fs.String("until", "", "only events stored before this RFC 3339 time or duration ago (e.g. 2h); default now")
	eventType := fs.String("event", "", "only events of this type")
	includeDelivered := fs.Bool("include-delivered", false, "also send again the events this endpoint already received")
	return func(ctx context.Context, g *globals, args []string) error {
		if err := exactArgs(args, 1, "<endpoint>"); err != nil {
			return err
		}
		value, err := replayValue(time.Now(), *since, *until, *eventType, *includeDelivered)
		if err != nil {
			return err
		}
		return runAction(ctx, g, args[0], action{
			annotation: miraapi.ReplayAnnotation, value: value,
			reasons: []string{"Replayed", "ReplayRefused"}, warn: []string{"ReplayRefused"}, note: value,
		})
	}
}

// replayValue builds the replay annotation value; a nonce makes each
// request new.
func replayValue(now time.Time, since, until, eventType string, includeDelivered bool) (string, error) {
	if since == "" {
		return "", errors.New("--since is required")
	}
	s, err := parseSince(since, now)
	if err != nil {
		return "", fmt.Errorf("--since: %w", err)
	}
	parts := []string{"since=" + s.Format(time.RFC3339)}
	if until != "" {
		u, err := parseSince(until, now)
		if err != nil {
			return "", fmt.Errorf("--until: %w", err)
		}
		if !u.After(s) {
			return "", errors.New("--until must be after --since")
		}
		parts = append(parts, "until="+u.Format(time.RFC3339))
	}
	if eventType != "" {
		parts = append(parts, "event="+eventType)
	}
	if includeDelivered {
		parts = append(parts, "include-delivered")
	}
	parts = append(parts, "nonce="+strconv.FormatInt(now.UnixNano(), 36))
	return strings.Join(parts, ";"), nil
}

func testCmd(fs *pflag.FlagSet) func(context.Context, *globals, []string) error {
	return func(ctx context.Context, g *globals, args []string) error {
		if err := exactArgs(args, 1, "<endpoint>"); err != nil {
			return err
		}
		return runAction(ctx, g, args[0], action{annotation: miraapi.TestAnnotation, value: newRequestValue(), reasons: []string{"TestQueued"}})
	}
}

func rotateCmd(fs *pflag.FlagSet) func(context.Context, *globals, []string) error {
	return func(ctx context.Context, g *globals, args []string) error {
		if err := exactArgs(args, 1, "<endpoint>"); err != nil {
			return err
		}
		return runAction(ctx, g, args[0], action{annotation: miraapi.RotateSecretAnnotation, value: newRequestValue(), reasons: []string{"SecretRotated"}})
	}
}

func enableCmd(fs *pflag.FlagSet) func(context.Context, *globals, []string) error {
	return func(ctx context.Context, g *globals, args []string) error {
		if err := exactArgs(args, 1, "<endpoint>"); err != nil {
			return err
		}
		// The receiver emits Enabled only when the endpoint was disabled.
		return runAction(ctx, g, args[0], action{annotation: miraapi.EnableAnnotation, value: newRequestValue()})
	}
}

// newRequestValue returns a new, unique annotation value.
func newRequestValue() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "cli-" + time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}

// runAction sets the annotation, waits until status.handledAnnotations
// records it, then prints the Event the operator emitted for it.
func runAction(ctx context.Context, g *globals, endpoint string, a action) error {
	ns, name, err := g.endpointKey(endpoint)
	if err != nil {
		return err
	}
	key := types.NamespacedName{Namespace: ns, Name: name}
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	w := &miraapi.WebhookEndpoint{}
	if err := g.client.Get(ctx, key, w); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("WebhookEndpoint %s not found", key)
		}
		return fmt.Errorf("read WebhookEndpoint %s: %w", key, err)
	}
	if w.Annotations[a.annotation] == a.value && w.Status.HandledAnnotations[a.annotation] == a.value {
		return fmt.Errorf("%s=%s was already handled on %s; the operator acts once per value", a.annotation, a.value, key)
	}
	// Events from now on: remember where the Event list stands.
	evList := &corev1.EventList{}
	if err := g.client.List(ctx, evList, client.InNamespace(ns), client.MatchingFieldsSelector{
		Selector: fields.OneTermEqualSelector("involvedObject.uid", string(w.UID)),
	}, client.Limit(1)); err != nil {
		return fmt.Errorf("list Events of %s: %w", key, err)
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{a.annotation: a.value}}})
	if err := g.client.Patch(ctx, w, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("annotate WebhookEndpoint %s: %w", key, err)
	}
	fmt.Fprintf(g.stderr, "Annotated webhookendpoint %s with %s=%s; waiting for the operator…\n", key, a.annotation, a.value)
	if err := waitHandled(ctx, g.client, key, a); err != nil {
		return err
	}
	res := ActionResult{Endpoint: key.String(), Annotation: a.annotation, Value: a.value, Handled: true}
	if len(a.reasons) > 0 {
		ectx, ecancel := context.WithTimeout(ctx, eventWait)
		ev, err := waitEvent(ectx, g.client, ns, string(w.UID), evList.ResourceVersion, a)
		ecancel()
		if err != nil && ctx.Err() != nil {
			return err
		}
		if ev != nil {
			res.Event = &ActionEvent{Type: ev.Type, Reason: ev.Reason, Message: ev.Message}
		}
	}
	if done, err := printData(g.stdout, g.output, res); done {
		if err != nil {
			return err
		}
	} else {
		fmt.Fprintf(g.stdout, "webhookendpoint %s: %s=%s handled\n", key, a.annotation, a.value)
		if res.Event != nil {
			fmt.Fprintf(g.stdout, "%s\t%s\t%s\n", line(res.Event.Type), line(res.Event.Reason), line(res.Event.Message))
		}
	}
	if res.Event != nil {
		for _, r := range a.warn {
			if res.Event.Reason == r {
				return fmt.Errorf("the operator refused the request: %s", res.Event.Message)
			}
		}
	}
	return nil
}

// waitHandled watches the endpoint until status.handledAnnotations[a]
// equals the requested value.
func waitHandled(ctx context.Context, c client.WithWatch, key types.NamespacedName, a action) error {
	handled := func(w *miraapi.WebhookEndpoint) bool {
		return w.Status.HandledAnnotations[a.annotation] == a.value
	}
	for {
		w := &miraapi.WebhookEndpoint{}
		if err := c.Get(ctx, key, w); err != nil {
			return fmt.Errorf("read WebhookEndpoint %s: %w", key, err)
		}
		if handled(w) {
			return nil
		}
		wi, err := c.Watch(ctx, &miraapi.WebhookEndpointList{}, client.InNamespace(key.Namespace),
			client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector("metadata.name", key.Name)},
			&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: w.ResourceVersion}})
		if err != nil {
			return fmt.Errorf("watch WebhookEndpoint %s: %w", key, err)
		}
		done, err := func() (bool, error) {
			defer wi.Stop()
			for {
				select {
				case <-ctx.Done():
					return false, fmt.Errorf("%s=%s on %s not handled yet: %w (is the operator running? see kubectl describe webhookendpoint)", a.annotation, a.value, key, ctx.Err())
				case ev, ok := <-wi.ResultChan():
					if !ok {
						return false, nil // watch ended: read again and re-watch
					}
					switch ev.Type {
					case watch.Deleted:
						return false, fmt.Errorf("WebhookEndpoint %s was deleted", key)
					case watch.Added, watch.Modified:
						if o, ok := ev.Object.(*miraapi.WebhookEndpoint); ok && handled(o) {
							return true, nil
						}
					}
				}
			}
		}()
		if done || err != nil {
			return err
		}
	}
}

// waitEvent watches the endpoint's Events after rv for one of a.reasons.
func waitEvent(ctx context.Context, c client.WithWatch, ns, uid, rv string, a action) (*corev1.Event, error) {
	match := func(e *corev1.Event) bool {
		if e.InvolvedObject.UID != types.UID(uid) {
			return false
		}
		if a.note != "" && !strings.Contains(e.Message, a.note) {
			return false
		}
		for _, r := range a.reasons {
			if e.Reason == r {
				return true
			}
		}
		return false
	}
	wi, err := c.Watch(ctx, &corev1.EventList{}, client.InNamespace(ns),
		client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector("involvedObject.uid", uid)},
		&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv}})
	if err != nil {
		return nil, fmt.Errorf("watch Events: %w", err)
	}
	defer wi.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case ev, ok := <-wi.ResultChan():
			if !ok {
				return nil, errors.New("event watch ended")
			}
			if e, ok := ev.Object.(*corev1.Event); ok && (ev.Type == watch.Added || ev.Type == watch.Modified) && match(e) {
				return e, nil
			}
		}
	}
}
