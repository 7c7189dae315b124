// Package eventfilter compiles and evaluates a WebhookEndpoint's
// spec.filter: a CEL expression over the event, bounded in cost the way
// Kubernetes bounds CEL in CRD validation (an estimated cost checked at
// compile time, an actual cost limit at evaluation).
package eventfilter

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
)

const (
	// EstimatedCostLimit refuses, at compile time, an expression whose
	// worst-case cost over a maximal event exceeds it (Kubernetes'
	// StaticEstimatedCostLimit for CRD validation rules).
	EstimatedCostLimit = 10_000_000
	// CostLimit stops one evaluation past this cost; the event then counts
	// as not matching. It is 100 times below Kubernetes' PerCallLimit: a
	// filter is a small predicate run for every event on the fan-out's hot
	// path, and cel-go's cost tracking itself grows quadratically with the
	// steps of a comprehension (measured: 1.2 s for 20,000 list elements
	// under a 1,000,000 limit, ~30 ms at this one). About 3,000 list
	// elements can be visited per event.
	CostLimit = 10_000
	// maxEventBytes bounds an event's JSON (events.MaxEventBytes): the cost
	// estimate takes every list, map and string of event.data to be as large
	// as such an event allows.
	maxEventBytes = 1 << 20
)

// Filter is a compiled spec.filter.
type Filter struct {
	expr string
	prg  cel.Program
}

// Event is what a filter sees of an event.
type Event struct {
	ID   string
	Type string
	// Data is the event's JSON data, decoded on first use by Activation.
	Data      json.RawMessage
	Timestamp time.Time
}

var env = mustEnv()

func mustEnv() *cel.Env {
	e, err := cel.NewEnv(cel.Variable("event", cel.MapType(cel.StringType, cel.DynType)))
	if err != nil {
		panic(fmt.Sprintf("eventfilter: CEL environment: %v", err))
	}
	return e
}

// Compile parses and type-checks expr, checks that it returns a bool and
// that its estimated cost is within EstimatedCostLimit. The error is the
// compiler's message, safe to show in a condition (it holds no event data).
func Compile(expr string) (*Filter, error) {
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		return nil, errors.New(iss.Err().Error())
	}
	if t := ast.OutputType(); !t.IsExactType(cel.BoolType) && !t.IsExactType(cel.DynType) {
		return nil, fmt.Errorf("filter must return a bool, not %s", t)
	}
	est, err := env.EstimateCost(ast, sizeEstimator{})
	if err != nil {
		return nil, fmt.Errorf("estimate filter cost: %w", err)
	}
	if est.Max > EstimatedCostLimit {
		return nil, fmt.Errorf("filter is too costly: estimated worst-case cost %d exceeds %d over a %d-byte event", est.Max, EstimatedCostLimit, maxEventBytes)
	}
	prg, err := env.Program(ast, cel.CostLimit(CostLimit), cel.InterruptCheckFrequency(100))
	if err != nil {
		return nil, fmt.Errorf("build filter program: %w", err)
	}
	return &Filter{expr: expr, prg: prg}, nil
}

// Expression returns the source of the filter.
func (f *Filter) Expression() string { return f.expr }

// Activation holds one event's variables; build it once per event and pass
// it to every filter, so event.data is decoded once.
type Activation struct {
	ev      Event
	decoded map[string]any
	err     error
}

// NewActivation wraps an event for evaluation; nothing is decoded yet.
func NewActivation(ev Event) *Activation { return &Activation{ev: ev} }

func (a *Activation) vars() (map[string]any, error) {
	if a.decoded == nil && a.err == nil {
		var data any
		if len(a.ev.Data) > 0 {
			if err := json.Unmarshal(a.ev.Data, &data); err != nil {
				a.err = fmt.Errorf("decode event data: %w", err)
				return nil, a.err
			}
		}
		a.decoded = map[string]any{"event": types.NewRefValMap(types.DefaultTypeAdapter, map[ref.Val]ref.Val{
			types.String("id"): types.String(a.ev.ID), types.String("type"): types.String(a.ev.Type),
			types.String("data"): toVal(data), types.String("timestamp"): types.Timestamp{Time: a.ev.Timestamp.UTC()},
		})}
	}
	return a.decoded, a.err
}

// Match evaluates the filter against an event. An error (a missing field,
// a type mismatch, the cost limit) means the event does not match; the
// caller counts it as filtered and may log the error.
func (f *Filter) Match(a *Activation) (bool, error) {
	vars, err := a.vars()
	if err != nil {
		return false, err
	}
	out, _, err := f.prg.Eval(vars)
	if err != nil {
		return false, fmt.Errorf("evaluate filter: %w", err)
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("filter returned %s, not a bool", out.Type().TypeName())
	}
	return b, nil
}

// toVal converts decoded JSON into CEL values once per event. Handing CEL
// the Go values instead (map[string]any, []any) makes it convert them again
// on every access, which made a comprehension over a list quadratic in its
// length, outside the cost limit's view.
func toVal(v any) ref.Val {
	switch x := v.(type) {
	case nil:
		return types.NullValue
	case bool:
		return types.Bool(x)
	case float64:
		return types.Double(x)
	case string:
		return types.String(x)
	case []any:
		out := make([]ref.Val, len(x))
		for i, e := range x {
			out[i] = toVal(e)
		}
		return types.NewRefValList(types.DefaultTypeAdapter, out)
	case map[string]any:
		out := make(map[ref.Val]ref.Val, len(x))
		for k, e := range x {
			out[types.String(k)] = toVal(e)
		}
		return types.NewRefValMap(types.DefaultTypeAdapter, out)
	}
	return types.DefaultTypeAdapter.NativeToValue(v)
}

// sizeEstimator bounds every value of unknown size by what fits in a
// maximal event: at most maxEventBytes/2 list items, map entries or string
// characters (each takes at least two bytes of JSON with its separator or
// quotes).
type sizeEstimator struct{}

func (sizeEstimator) EstimateSize(checker.AstNode) *checker.SizeEstimate {
	return &checker.SizeEstimate{Min: 0, Max: maxEventBytes / 2}
}

func (sizeEstimator) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil
}
