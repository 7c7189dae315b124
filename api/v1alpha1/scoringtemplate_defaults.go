package v1alpha1

import (
	"context"
	"fmt"
	"sort"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// DefaultTemplateIndexKey indexes ScoringTemplates by spec.default.
const DefaultTemplateIndexKey = ".spec.default"

// IndexDefaultTemplates registers the spec.default index on a cache's field
// indexer. The controller and the receiver (which resolves a namespace's
// default template) both need it.
func IndexDefaultTemplates(ctx context.Context, indexer client.FieldIndexer) error {
	if err := indexer.IndexField(ctx, &ScoringTemplate{}, DefaultTemplateIndexKey, func(o client.Object) []string {
		if o.(*ScoringTemplate).Spec.Default {
			return []string{"true"}
		}
		return []string{"false"}
	}); err != nil {
		return fmt.Errorf("index ScoringTemplates by default: %w", err)
	}
	return nil
}

// DefaultTemplates lists the names of the templates marked default in a
// namespace, sorted, from a reader that has the DefaultTemplateIndexKey index.
func DefaultTemplates(ctx context.Context, c client.Reader, namespace string) ([]string, error) {
	var list ScoringTemplateList
	if err := c.List(ctx, &list, client.InNamespace(namespace), client.MatchingFields{DefaultTemplateIndexKey: "true"}); err != nil {
		return nil, fmt.Errorf("list default ScoringTemplates in %s: %w", namespace, err)
	}
	var names []string
	for _, t := range list.Items {
		if t.DeletionTimestamp.IsZero() {
			names = append(names, t.Name)
		}
	}
	sort.Strings(names)
	return names, nil
}
