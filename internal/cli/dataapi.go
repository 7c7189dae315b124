package cli

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/rest"

	datav1 "github.com/mira/mira-operator/api/data/v1alpha1"
	"github.com/mira/mira-operator/internal/deliverylog"
)

// dataClient reads the aggregated API data.platform.mira.io/v1alpha1 with
// the user's own credentials (the kubeconfig): RBAC decides, and neither
// the integrations Secret nor services/proxy is needed.
type dataClient struct{ rc rest.Interface }

var dataScheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := datav1.AddToScheme(s); err != nil {
		panic(err)
	}
	metav1.AddToGroupVersion(s, schema.GroupVersion{Version: "v1"})
	return s
}()

func newDataClient(cfg *rest.Config) (*dataClient, error) {
	c := rest.CopyConfig(cfg)
	c.GroupVersion = &datav1.SchemeGroupVersion
	c.APIPath = "/apis"
	c.NegotiatedSerializer = serializer.NewCodecFactory(dataScheme).WithoutConversion()
	rc, err := rest.RESTClientFor(c)
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", datav1.SchemeGroupVersion, err)
	}
	return &dataClient{rc: rc}, nil
}

// deliveries lists a namespace's deliveries ("" for all), newest first.
func (d *dataClient) deliveries(ctx context.Context, ns string, sel labels.Selector, field fields.Selector) ([]datav1.DeliveryObject, error) {
	list := &datav1.DeliveryObjectList{}
	req := d.rc.Get().NamespaceIfScoped(ns, ns != "").Resource(datav1.ResourceDeliveries)
	if sel != nil && !sel.Empty() {
		req = req.Param("labelSelector", sel.String())
	}
	if field != nil && !field.Empty() {
		req = req.Param("fieldSelector", field.String())
	}
	if err := req.Do(ctx).Into(list); err != nil {
		return nil, err
	}
	return list.Items, nil
}

// delivery reads one delivery by id ("dlv_…") or name ("dlv-…").
func (d *dataClient) delivery(ctx context.Context, ns, id string) (*datav1.DeliveryObject, error) {
	o := &datav1.DeliveryObject{}
	err := d.rc.Get().Namespace(ns).Resource(datav1.ResourceDeliveries).Name(datav1.NameFromID(id)).Do(ctx).Into(o)
	return o, err
}

// findDelivery reads a delivery by id in ns, or, when it is not there, in
// whichever namespace holds it (a list across namespaces, which takes the
// right to list deliveries in all of them).
func (d *dataClient) findDelivery(ctx context.Context, ns, id string, exact bool) (*datav1.DeliveryObject, error) {
	o, err := d.delivery(ctx, ns, id)
	if exact || err == nil || !apierrors.IsNotFound(err) {
		return o, err
	}
	items, lerr := d.deliveries(ctx, "", nil, fields.OneTermEqualSelector("metadata.name", datav1.NameFromID(id)))
	if lerr != nil || len(items) == 0 {
		return nil, err // the not-found of the namespace asked
	}
	return &items[0], nil
}

// report reads one report by id or name.
func (d *dataClient) report(ctx context.Context, ns, id string) (*datav1.ReportObject, error) {
	o := &datav1.ReportObject{}
	err := d.rc.Get().Namespace(ns).Resource(datav1.ResourceReports).Name(datav1.NameFromID(id)).Do(ctx).Into(o)
	return o, err
}

// findReport is findDelivery for reports.
func (d *dataClient) findReport(ctx context.Context, ns, id string, exact bool) (*datav1.ReportObject, error) {
	o, err := d.report(ctx, ns, id)
	if exact || err == nil || !apierrors.IsNotFound(err) {
		return o, err
	}
	list := &datav1.ReportObjectList{}
	if lerr := d.rc.Get().Resource(datav1.ResourceReports).
		Param("fieldSelector", fields.OneTermEqualSelector("metadata.name", datav1.NameFromID(id)).String()).
		Do(ctx).Into(list); lerr != nil || len(list.Items) == 0 {
		return nil, err
	}
	return &list.Items[0], nil
}

// deliveryQuery is what `kubectl mira deliveries` and the dashboard filter
// on: an endpoint, states, a creation time and a page after a cursor.
type deliveryQuery struct {
	Endpoint string
	Outcome  string
	Since    metav1.Time
	Limit    int
	// Cursor is the name of the last delivery of the previous page.
	Cursor string
}

// page lists one page of an endpoint's deliveries as delivery-log records,
// newest first, and the cursor of the next page ("" at the end).
func (d *dataClient) page(ctx context.Context, ns string, q deliveryQuery) ([]datav1.Delivery, string, error) {
	sel := labels.NewSelector()
	r, err := labels.NewRequirement(datav1.LabelEndpoint, selection.Equals, []string{q.Endpoint})
	if err != nil {
		return nil, "", fmt.Errorf("endpoint %q cannot be selected: %w", q.Endpoint, err)
	}
	sel = sel.Add(*r)
	states, err := deliverylog.ParseOutcomes(q.Outcome)
	if err != nil {
		return nil, "", err
	}
	if len(states) > 0 {
		r, err := labels.NewRequirement(datav1.LabelState, selection.In, states)
		if err != nil {
			return nil, "", err
		}
		sel = sel.Add(*r)
	}
	items, err := d.deliveries(ctx, ns, sel, nil)
	if err != nil {
		return nil, "", err
	}
	sort.SliceStable(items, func(i, j int) bool {
		return items[j].CreationTimestamp.Before(&items[i].CreationTimestamp)
	})
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	var out []datav1.Delivery
	skipping := q.Cursor != ""
	for i := range items {
		o := &items[i]
		if skipping {
			skipping = o.Name != q.Cursor
			continue
		}
		if !q.Since.IsZero() && o.CreationTimestamp.Before(&q.Since) {
			continue
		}
		if len(out) == limit {
			return out, datav1.NameFromID(out[len(out)-1].ID), nil
		}
		out = append(out, recordOf(o))
	}
	return out, "", nil
}

// recordOf maps a served Delivery back to the delivery-log record the CLI
// prints (its JSON and YAML output keep the record's shape).
func recordOf(o *datav1.DeliveryObject) datav1.Delivery {
	r := datav1.Delivery{
		ID: o.Spec.ID, EventID: o.Spec.EventID, EventType: o.Spec.Event, Namespace: o.Namespace,
		Endpoint: o.Spec.Endpoint, UID: o.Spec.EndpointUID, URL: o.Spec.URL, State: o.Status.State,
		Round: int(o.Status.Round), Created: o.CreationTimestamp.UTC(), Updated: o.Status.Updated.UTC(),
		FirstAttempt: timeOf(o.Status.FirstAttempt), NextRetry: timeOf(o.Status.NextRetry),
		Body: o.Spec.Body, BodyOmitted: o.Spec.BodyOmitted, AttemptCount: int(o.Status.AttemptCount),
		Reason: o.Status.Reason, Attempts: []datav1.Attempt{},
	}
	for _, a := range o.Status.Attempts {
		r.Attempts = append(r.Attempts, datav1.Attempt{
			Number: int(a.Attempt), Round: int(a.Round), Time: a.Time.UTC(), DurationMillis: a.DurationMillis,
			URL: a.URL, RequestHeaders: a.RequestHeaders, StatusCode: int(a.StatusCode),
			ResponseHeaders: a.ResponseHeaders, ResponseBody: a.ResponseBody, Error: a.Error,
			Outcome: a.Outcome, NextRetry: timeOf(a.NextRetry),
		})
	}
	if s := o.Status.OlderAttempts; s != nil {
		sum := &datav1.AttemptSummary{Count: int(s.Count), First: s.First.UTC(), Last: s.Last.UTC()}
		for _, c := range s.LastCodes {
			sum.LastCodes = append(sum.LastCodes, int(c))
		}
		r.OlderAttempts = sum
	}
	return r
}

// splitRef splits "<namespace>/<id>"; a bare id gets the namespace def
// and exact false (look further when it is not there).
func splitRef(arg, def string) (ns, id string, exact bool, err error) {
	ns, id, ok := strings.Cut(arg, "/")
	if !ok {
		return def, arg, false, nil
	}
	if ns == "" || id == "" {
		return "", "", false, errors.New("want <id> or <namespace>/<id>")
	}
	return ns, id, true, nil
}

func timeOf(t *metav1.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
