package secretcache

import (
	"context"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

func TestGetCachesByNameForTTL(t *testing.T) {
	scheme := runtime.NewScheme()
	_ = corev1.AddToScheme(scheme)
	gets := 0
	api := fake.NewClientBuilder().WithScheme(scheme).WithObjects(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "s"}, Data: map[string][]byte{"k": []byte("v1")},
	}).WithInterceptorFuncs(interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
		gets++
		return c.Get(ctx, key, obj, opts...)
	}}).Build()
	now := time.Unix(1000, 0)
	r, err := New(api, api)
	if err != nil {
		t.Fatal(err)
	}
	r.Now = func() time.Time { return now }
	ctx := context.Background()
	key := types.NamespacedName{Namespace: "team-a", Name: "s"}
	read := func() string {
		s := &corev1.Secret{}
		if err := r.Get(ctx, key, s); err != nil {
			t.Fatal(err)
		}
		return string(s.Data["k"])
	}
	if v := read(); v != "v1" || gets != 1 {
		t.Fatalf("first read %q after %d GETs", v, gets)
	}
	// A change within the TTL is not seen, and costs no GET.
	s := &corev1.Secret{}
	_ = api.Get(ctx, key, s)
	s.Data["k"] = []byte("v2")
	if err := api.Update(ctx, s); err != nil {
		t.Fatal(err)
	}
	gets = 0
	now = now.Add(DefaultTTL - time.Second)
	if v := read(); v != "v1" || gets != 0 {
		t.Fatalf("within the TTL: %q after %d GETs", v, gets)
	}
	now = now.Add(time.Second)
	if v := read(); v != "v2" || gets != 1 {
		t.Fatalf("after the TTL: %q after %d GETs", v, gets)
	}
	// A caller changing its copy does not change the cache.
	mine := &corev1.Secret{}
	_ = r.Get(ctx, key, mine)
	mine.Data["k"][0] = 'X'
	if v := read(); v != "v2" {
		t.Fatalf("cache shared with a caller: %q", v)
	}
	// Not found is cached too, and answered as NotFound.
	gets = 0
	missing := types.NamespacedName{Namespace: "team-a", Name: "nope"}
	for range 3 {
		if err := r.Get(ctx, missing, &corev1.Secret{}); !apierrors.IsNotFound(err) {
			t.Fatalf("missing Secret: %v", err)
		}
	}
	if gets != 1 {
		t.Fatalf("missing Secret read %d times, want 1", gets)
	}
	if err := r.List(ctx, &corev1.SecretList{}); err == nil {
		t.Fatal("listing Secrets was allowed")
	}
	r.Prune()
	now = now.Add(time.Hour)
	r.Prune()
	if n := len(r.entries); n != 0 {
		t.Fatalf("%d entries after prune", n)
	}
}

// Reads of many names within one TTL (made-up namespaces in URLs, say)
// never grow the cache past its bound.
func TestCacheStaysBounded(t *testing.T) {
	scheme := runtime.NewScheme()
	_ = corev1.AddToScheme(scheme)
	api := fake.NewClientBuilder().WithScheme(scheme).Build()
	r, err := New(api, api)
	if err != nil {
		t.Fatal(err)
	}
	r.MaxEntries = 64
	ctx := context.Background()
	for i := range 1000 {
		err := r.Get(ctx, types.NamespacedName{Namespace: "ns", Name: "s" + strconv.Itoa(i)}, &corev1.Secret{})
		if !apierrors.IsNotFound(err) {
			t.Fatalf("Get: %v", err)
		}
		r.mu.Lock()
		n := len(r.entries)
		r.mu.Unlock()
		if n > r.MaxEntries {
			t.Fatalf("%d entries after %d reads, bound %d", n, i+1, r.MaxEntries)
		}
	}
}
