package actions

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/endpoints"
	"github.com/mira/mira-operator/internal/fanout"
)

// ParseReplay reads a replay annotation value:
// "since=<RFC 3339>[;until=<RFC 3339>][;event=<type>][;include-delivered][;nonce=<any>]".
func ParseReplay(value string) (fanout.ReplayOptions, error) {
	var o fanout.ReplayOptions
	for _, part := range strings.Split(value, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		var err error
		switch k {
		case "since":
			o.Since, err = time.Parse(time.RFC3339, v)
		case "until":
			o.Until, err = time.Parse(time.RFC3339, v)
		case "event":
			o.EventType = v
		case "include-delivered":
			o.IncludeDelivered = true
		case "nonce", "":
		default:
			return o, fmt.Errorf("replay %q: unknown part %q", value, k)
		}
		if err != nil {
			return o, fmt.Errorf("replay %q: %s must be an RFC 3339 time", value, k)
		}
	}
	switch {
	case o.Since.IsZero():
		return o, fmt.Errorf("replay %q: since is required", value)
	case !o.Until.IsZero() && !o.Until.After(o.Since):
		return o, fmt.Errorf("replay %q: until must be after since", value)
	}
	return o, nil
}

// replay handles a new replay annotation value: it queues the deliveries and
// reports how many in an Event (Replayed, or ReplayRefused for a bad value).
func (a *Actions) replay(ctx context.Context, e *endpoints.Endpoint, value string) error {
	obj := e.Object()
	o, err := ParseReplay(value)
	if err == nil && o.EventType != "" && !obj.Subscribes(o.EventType) {
		err = fmt.Errorf("replay %q: the endpoint does not subscribe to %s", value, o.EventType)
	}
	if err != nil {
		a.Status.SetHandled(ctx, e, miraapi.ReplayAnnotation, value)
		a.Recorder.Eventf(obj, nil, corev1.EventTypeWarning, "ReplayRefused", "Replay", "%s", err.Error())
		return nil
	}
	res, err := fanout.Replay(ctx, a.JS, a.Log, e, o)
	if err != nil {
		return fmt.Errorf("replay %s/%s: %w", obj.Namespace, obj.Name, err)
	}
	a.Status.SetHandled(ctx, e, miraapi.ReplayAnnotation, value)
	a.Recorder.Eventf(obj, nil, corev1.EventTypeNormal, "Replayed", "Replay",
		"queued %d deliveries; skipped %d already delivered or under way, %d filtered (%s)", res.Queued, res.Skipped, res.Filtered, value)
	return nil
}
