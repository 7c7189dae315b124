package dataapi

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apimachinery/pkg/watch"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/klog/v2"

	datav1 "github.com/mira/mira-operator/api/data/v1alpha1"
)

// readOnly is what both storages share: namespaced, get and list.
type readOnly struct{}

// Destroy implements rest.Storage.
func (readOnly) Destroy() {}

// NamespaceScoped implements rest.Scoper.
func (readOnly) NamespaceScoped() bool { return true }

// selectors are the label and field selectors of a list call.
type selectors struct {
	labels labels.Selector
	fields fields.Selector
}

func selectorsOf(o *metainternalversion.ListOptions) selectors {
	s := selectors{labels: labels.Everything(), fields: fields.Everything()}
	if o != nil && o.LabelSelector != nil {
		s.labels = o.LabelSelector
	}
	if o != nil && o.FieldSelector != nil {
		s.fields = o.FieldSelector
	}
	return s
}

func (s selectors) match(m *metav1.ObjectMeta) bool {
	return s.labels.Matches(labels.Set(m.Labels)) &&
		s.fields.Matches(fields.Set{"metadata.name": m.Name, "metadata.namespace": m.Namespace})
}

// unavailableErr maps a data-source failure to 503. The cause is logged,
// not returned: clients learn nothing about the store's internals.
func unavailableErr(what string, err error) error {
	klog.ErrorS(err, "Data source failed", "store", what)
	return apierrors.NewServiceUnavailable("the " + what + " store is unavailable")
}

// deliveryStorage serves deliveries.
type deliveryStorage struct {
	readOnly
	src Source
}

var (
	_ rest.Storage              = &deliveryStorage{}
	_ rest.Getter               = &deliveryStorage{}
	_ rest.Lister               = &deliveryStorage{}
	_ rest.TableConvertor       = &deliveryStorage{}
	_ rest.Scoper               = &deliveryStorage{}
	_ rest.SingularNameProvider = &deliveryStorage{}
	_ rest.KindProvider         = &deliveryStorage{}
	_ rest.Watcher              = &deliveryStorage{}
)

// New implements rest.Storage.
func (*deliveryStorage) New() runtime.Object { return &datav1.DeliveryObject{} }

// NewList implements rest.Lister.
func (*deliveryStorage) NewList() runtime.Object { return &datav1.DeliveryObjectList{} }

// Kind implements rest.KindProvider.
func (*deliveryStorage) Kind() string { return datav1.KindDelivery }

// GetSingularName implements rest.SingularNameProvider.
func (*deliveryStorage) GetSingularName() string { return "delivery" }

// Get implements rest.Getter.
func (s *deliveryStorage) Get(ctx context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
	ns := genericapirequest.NamespaceValue(ctx)
	r, err := s.src.Delivery(ctx, ns, datav1.IDFromName(name))
	if errors.Is(err, ErrNotFound) {
		return nil, apierrors.NewNotFound(datav1.Resource(datav1.ResourceDeliveries), name)
	}
	if err != nil {
		return nil, unavailableErr("delivery log", err)
	}
	return DeliveryObject(r), nil
}

// List implements rest.Lister. The list's resourceVersion is the log's
// revision, from which a watch continues.
func (s *deliveryStorage) List(ctx context.Context, o *metainternalversion.ListOptions) (runtime.Object, error) {
	recs, rev, err := s.src.Deliveries(ctx, genericapirequest.NamespaceValue(ctx))
	if err != nil {
		return nil, unavailableErr("delivery log", err)
	}
	sel := selectorsOf(o)
	list := &datav1.DeliveryObjectList{Items: []datav1.DeliveryObject{}}
	list.ResourceVersion = strconv.FormatUint(rev, 10)
	for i := range recs {
		obj := objectOf(&recs[i])
		if sel.match(&obj.ObjectMeta) {
			list.Items = append(list.Items, *obj)
		}
	}
	return list, nil
}

// Watch implements rest.Watcher: changes of the delivery log after the
// resourceVersion asked for (none: the current deliveries as ADDED, then
// changes). A delivery written for the first time is ADDED, a later
// attempt MODIFIED; deliveries that age out are not reported.
func (s *deliveryStorage) Watch(ctx context.Context, o *metainternalversion.ListOptions) (watch.Interface, error) {
	var from uint64
	if o != nil && o.ResourceVersion != "" && o.ResourceVersion != "0" {
		rv, err := strconv.ParseUint(o.ResourceVersion, 10, 64)
		if err != nil {
			return nil, apierrors.NewBadRequest("resourceVersion must be a delivery-log revision")
		}
		from = rv + 1
	}
	ctx, cancel := context.WithCancel(ctx)
	changes, err := s.src.WatchDeliveries(ctx, genericapirequest.NamespaceValue(ctx), from)
	if err != nil {
		cancel()
		return nil, unavailableErr("delivery log", err)
	}
	sel := selectorsOf(o)
	events := make(chan watch.Event)
	w := watch.NewProxyWatcher(events)
	go func() {
		defer close(events)
		defer cancel()
		for {
			var c Change
			var ok bool
			select {
			case c, ok = <-changes:
				if !ok {
					return
				}
			case <-w.StopChan():
				return
			}
			obj := objectOf(&c.Record)
			if !sel.match(&obj.ObjectMeta) {
				continue
			}
			typ := watch.Modified
			if c.Initial || !c.Updated.After(c.Created) {
				typ = watch.Added
			}
			select {
			case events <- watch.Event{Type: typ, Object: obj}:
			case <-w.StopChan():
				return
			}
		}
	}()
	return w, nil
}

// objectOf is DeliveryObject with the record's revision as resourceVersion.
func objectOf(r *Record) *datav1.DeliveryObject {
	o := DeliveryObject(&r.Delivery)
	o.ResourceVersion = strconv.FormatUint(r.Revision, 10)
	return o
}

// ConvertToTable implements rest.TableConvertor: NAME, ENDPOINT, EVENT,
// STATE, ATTEMPTS, CODE, AGE.
func (*deliveryStorage) ConvertToTable(_ context.Context, obj runtime.Object, _ runtime.Object) (*metav1.Table, error) {
	t := &metav1.Table{ColumnDefinitions: []metav1.TableColumnDefinition{
		{Name: "Name", Type: "string", Format: "name", Description: "delivery name (the webhook-id with - for _)"},
		{Name: "Endpoint", Type: "string", Description: "the WebhookEndpoint"},
		{Name: "Event", Type: "string", Description: "the event type"},
		{Name: "State", Type: "string", Description: "Pending, Delivered, Retrying, Dead or Skipped"},
		{Name: "Attempts", Type: "integer", Description: "attempts in the current round"},
		{Name: "Code", Type: "string", Description: "HTTP status of the last attempt"},
		{Name: "Age", Type: "string", Description: "time since the delivery was created"},
	}}
	var items []datav1.DeliveryObject
	switch o := obj.(type) {
	case *datav1.DeliveryObject:
		items = []datav1.DeliveryObject{*o}
	case *datav1.DeliveryObjectList:
		items = o.Items
		t.ResourceVersion, t.Continue = o.ResourceVersion, o.Continue
	default:
		return nil, fmt.Errorf("cannot show %T as a delivery table", obj)
	}
	for i := range items {
		d := &items[i]
		code := "-"
		if d.Status.LastCode != 0 {
			code = strconv.Itoa(int(d.Status.LastCode))
		}
		t.Rows = append(t.Rows, metav1.TableRow{
			Cells:  []any{d.Name, d.Spec.Endpoint, d.Spec.Event, d.Status.State, int64(d.Status.AttemptCount), code, age(d.CreationTimestamp)},
			Object: runtime.RawExtension{Object: d},
		})
	}
	return t, nil
}

// reportStorage serves reports.
type reportStorage struct {
	readOnly
	src Source
}

var (
	_ rest.Storage              = &reportStorage{}
	_ rest.Getter               = &reportStorage{}
	_ rest.Lister               = &reportStorage{}
	_ rest.TableConvertor       = &reportStorage{}
	_ rest.SingularNameProvider = &reportStorage{}
	_ rest.KindProvider         = &reportStorage{}
)

// New implements rest.Storage.
func (*reportStorage) New() runtime.Object { return &datav1.ReportObject{} }

// NewList implements rest.Lister.
func (*reportStorage) NewList() runtime.Object { return &datav1.ReportObjectList{} }

// Kind implements rest.KindProvider.
func (*reportStorage) Kind() string { return datav1.KindReport }

// GetSingularName implements rest.SingularNameProvider.
func (*reportStorage) GetSingularName() string { return "report" }

// Get implements rest.Getter.
func (s *reportStorage) Get(ctx context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
	r, err := s.src.Report(ctx, genericapirequest.NamespaceValue(ctx), datav1.IDFromName(name))
	if errors.Is(err, ErrNotFound) {
		return nil, apierrors.NewNotFound(datav1.Resource(datav1.ResourceReports), name)
	}
	if err != nil {
		return nil, unavailableErr("report", err)
	}
	obj, err := ReportObject(r)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	return obj, nil
}

// List implements rest.Lister. Entries that do not decode are left out.
func (s *reportStorage) List(ctx context.Context, o *metainternalversion.ListOptions) (runtime.Object, error) {
	reps, err := s.src.Reports(ctx, genericapirequest.NamespaceValue(ctx))
	if err != nil {
		return nil, unavailableErr("report", err)
	}
	sel := selectorsOf(o)
	list := &datav1.ReportObjectList{Items: []datav1.ReportObject{}}
	for i := range reps {
		obj, err := ReportObject(&reps[i])
		if err == nil && sel.match(&obj.ObjectMeta) {
			list.Items = append(list.Items, *obj)
		}
	}
	return list, nil
}

// ConvertToTable implements rest.TableConvertor: NAME, USER, TEMPLATE,
// SCORE, PASSED, AGE.
func (*reportStorage) ConvertToTable(_ context.Context, obj runtime.Object, _ runtime.Object) (*metav1.Table, error) {
	t := &metav1.Table{ColumnDefinitions: []metav1.TableColumnDefinition{
		{Name: "Name", Type: "string", Format: "name", Description: "report name (the report id with - for _)"},
		{Name: "User", Type: "string", Description: "the Mira user"},
		{Name: "Template", Type: "string", Description: "the ScoringTemplate"},
		{Name: "Score", Type: "string", Description: "overall score, 0–100"},
		{Name: "Passed", Type: "boolean", Description: "whether the score passed"},
		{Name: "Age", Type: "string", Description: "time since the report was generated"},
	}}
	var items []datav1.ReportObject
	switch o := obj.(type) {
	case *datav1.ReportObject:
		items = []datav1.ReportObject{*o}
	case *datav1.ReportObjectList:
		items = o.Items
		t.ResourceVersion, t.Continue = o.ResourceVersion, o.Continue
	default:
		return nil, fmt.Errorf("cannot show %T as a report table", obj)
	}
	for i := range items {
		r := &items[i]
		t.Rows = append(t.Rows, metav1.TableRow{
			Cells:  []any{r.Name, r.Spec.UserID, r.Spec.Template, r.Spec.OverallScore, r.Spec.Passed, age(r.CreationTimestamp)},
			Object: runtime.RawExtension{Object: r},
		})
	}
	return t, nil
}

func age(t metav1.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(time.Since(t.Time))
}
