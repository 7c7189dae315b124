package receiver_test

import (
	"context"
	"fmt"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mira/mira-operator/internal/k8sauth"
	"github.com/mira/mira-operator/internal/receiver"
)

// serviceAccountToken creates ServiceAccount ns/name, lets it create
// events.data.platform.mira.io in namespace allowIn (every namespace when
// allowIn is ""), and returns a token of it from the TokenRequest API.
func serviceAccountToken(ctx context.Context, ns, name, allowIn string) (string, error) {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if err := k8s.Create(ctx, sa); err != nil {
		return "", fmt.Errorf("create ServiceAccount: %w", err)
	}
	rules := []rbacv1.PolicyRule{{APIGroups: []string{k8sauth.Group}, Resources: []string{receiver.ResourceEvents}, Verbs: []string{"create"}}}
	subject := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name}}
	roleName := "publish-" + ns + "-" + name
	if allowIn == "" {
		if err := k8s.Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: roleName}, Rules: rules}); err != nil {
			return "", err
		}
		if err := k8s.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: roleName}, Subjects: subject,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: roleName}}); err != nil {
			return "", err
		}
	} else {
		if err := k8s.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: allowIn, Name: roleName}, Rules: rules}); err != nil {
			return "", err
		}
		if err := k8s.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: allowIn, Name: roleName}, Subjects: subject,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: roleName}}); err != nil {
			return "", err
		}
	}
	tr := &authnv1.TokenRequest{}
	if err := k8s.SubResource("token").Create(ctx, sa, tr); err != nil {
		return "", fmt.Errorf("request a ServiceAccount token: %w", err)
	}
	return tr.Status.Token, nil
}
