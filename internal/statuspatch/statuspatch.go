// Package statuspatch writes the part of an object's status that one field
// manager owns, with server-side apply on the status subresource. The
// controller and the receiver each apply only their own fields, so neither
// clobbers the other.
package statuspatch

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Apply server-side-applies status (a typed status struct holding only the
// fields this manager owns; zero fields are omitted by their json tags) to the
// object gvk/namespace/name, forcing ownership of those fields.
func Apply(ctx context.Context, c client.Client, gvk schema.GroupVersionKind, namespace, name string, status any, fieldManager string) error {
	st, err := runtime.DefaultUnstructuredConverter.ToUnstructured(status)
	if err != nil {
		return fmt.Errorf("convert status of %s/%s: %w", namespace, name, err)
	}
	u := &unstructured.Unstructured{Object: map[string]any{"status": st}}
	u.SetGroupVersionKind(gvk)
	u.SetNamespace(namespace)
	u.SetName(name)
	if err := c.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(fieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply status of %s/%s as %s: %w", namespace, name, fieldManager, err)
	}
	return nil
}
