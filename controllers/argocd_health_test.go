package controllers_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	lua "github.com/yuin/gopher-lua"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/testenv"
)

// argoHealth runs the shipped Argo CD health check (config/argocd) on an
// object the way Argo CD does (gopher-lua, the object as a table in `obj`).
func argoHealth(t *testing.T, w *miraapi.WebhookEndpoint) (status, message string) {
	t.Helper()
	script, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "argocd", "webhookendpoint-health.lua"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	var m any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	L := lua.NewState()
	defer L.Close()
	L.SetGlobal("obj", toLua(L, m))
	if err := L.DoString(string(script)); err != nil {
		t.Fatalf("health check: %v", err)
	}
	hs, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		t.Fatalf("health check returned %s, want a table", L.Get(-1).Type())
	}
	return hs.RawGetString("status").String(), hs.RawGetString("message").String()
}

func toLua(L *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case map[string]any:
		t := L.NewTable()
		for k, e := range v {
			t.RawSetString(k, toLua(L, e))
		}
		return t
	case []any:
		t := L.NewTable()
		for _, e := range v {
			t.Append(toLua(L, e))
		}
		return t
	case string:
		return lua.LString(v)
	case float64:
		return lua.LNumber(v)
	case bool:
		return lua.LBool(v)
	default:
		return lua.LNil
	}
}

// The Argo CD health check reads what the real controller writes.
func TestArgoCDHealthCheck(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	check := func(w *miraapi.WebhookEndpoint, want string) {
		t.Helper()
		if got, msg := argoHealth(t, w); got != want {
			t.Fatalf("%s: Argo CD health %s (%s), want %s", w.Name, got, msg, want)
		}
	}
	if err := k8s.Create(ctx, endpoint(ns, "ok", nil)); err != nil {
		t.Fatal(err)
	}
	w := waitReady(t, ns, "ok", metav1.ConditionTrue, miraapi.ValidReason)
	check(w, "Healthy")

	// A spec change not yet reconciled is Progressing.
	stale := w.DeepCopy()
	stale.Generation++
	check(stale, "Progressing")

	receiverHealth(t, w, true, false)
	check(waitReady(t, ns, "ok", metav1.ConditionTrue, miraapi.DegradedReason), "Degraded")
	receiverHealth(t, w, true, true)
	check(waitReady(t, ns, "ok", metav1.ConditionFalse, miraapi.DisabledReason), "Degraded")

	if err := k8s.Create(ctx, endpoint(ns, "waits", func(w *miraapi.WebhookEndpoint) {
		w.Spec.SecretRef = &miraapi.SecretKeyReference{Name: "later"}
	})); err != nil {
		t.Fatal(err)
	}
	check(waitReady(t, ns, "waits", metav1.ConditionFalse, miraapi.SecretNotFoundReason), "Progressing")

	if err := k8s.Create(ctx, endpoint(ns, "plain", func(w *miraapi.WebhookEndpoint) { w.Spec.URL = "http://hooks.example.com/x" })); err != nil {
		t.Fatal(err)
	}
	check(waitReady(t, ns, "plain", metav1.ConditionFalse, miraapi.InsecureURLReason), "Degraded")

	if err := k8s.Create(ctx, endpoint(ns, "paused", func(w *miraapi.WebhookEndpoint) { w.Spec.Suspend = true })); err != nil {
		t.Fatal(err)
	}
	check(waitReady(t, ns, "paused", metav1.ConditionFalse, miraapi.SuspendedReason), "Suspended")

	// No status yet: Progressing.
	fresh := endpoint(ns, "fresh", nil)
	check(fresh, "Progressing")
}
