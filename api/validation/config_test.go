package validation

import (
	"strings"
	"testing"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestValidateConfigMap(t *testing.T) {
	tests := []struct {
		name string
		cm   corev1.ConfigMap
		want []string
	}{
		{name: "valid", cm: corev1.ConfigMap{Data: map[string]string{"app.conf": "x", "KEY_1": "y"}, BinaryData: map[string][]byte{"logo.png": {1}}}},
		{name: "bad keys", cm: corev1.ConfigMap{Data: map[string]string{"a/b": "x", "..": "y"}, BinaryData: map[string][]byte{"c d": {1}}},
			want: []string{"data[a/b]: Invalid value", "data[..]: Invalid value", "binaryData[c d]: Invalid value"}},
		{name: "key in both data and binaryData", cm: corev1.ConfigMap{Data: map[string]string{"k": "x"}, BinaryData: map[string][]byte{"k": {1}}},
			want: []string{"data[k]: Invalid value"}},
		{name: "too large", cm: corev1.ConfigMap{Data: map[string]string{"big": strings.Repeat("x", corev1.MaxSecretSize+1)}},
			want: []string{"data: Too long"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cm := tt.cm.DeepCopy()
			cm.ObjectMeta = metav1.ObjectMeta{Name: "web-config", Namespace: "default"}
			expectErrors(t, ValidateCreate(cm), tt.want...)
		})
	}
}

func TestValidateConfigMapUpdate(t *testing.T) {
	tests := []struct {
		name      string
		immutable bool
		mutate    func(cm *corev1.ConfigMap)
		want      []string
	}{
		{name: "mutable data changes", mutate: func(cm *corev1.ConfigMap) { cm.Data["a"] = "2" }},
		{name: "immutable labels may change", immutable: true, mutate: func(cm *corev1.ConfigMap) { cm.Labels = map[string]string{"x": "y"} }},
		{name: "immutable data frozen", immutable: true, mutate: func(cm *corev1.ConfigMap) { cm.Data["a"] = "2" },
			want: []string{"data: Forbidden"}},
		{name: "immutable binary data frozen", immutable: true, mutate: func(cm *corev1.ConfigMap) { cm.BinaryData = map[string][]byte{"b": {2}} },
			want: []string{"binaryData: Forbidden"}},
		{name: "immutable cannot be unset", immutable: true, mutate: func(cm *corev1.ConfigMap) { cm.Immutable = ptr(false) },
			want: []string{"immutable: Forbidden"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := stored(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "default"}, Data: map[string]string{"a": "1"}})
			if tt.immutable {
				old.Immutable = ptr(true)
			}
			cm := old.DeepCopy()
			tt.mutate(cm)
			expectErrors(t, ValidateUpdate(cm, old), tt.want...)
		})
	}
}

func TestValidateSecret(t *testing.T) {
	tests := []struct {
		name string
		s    corev1.Secret
		want []string
	}{
		{name: "opaque", s: corev1.Secret{Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"pw": []byte("x")}}},
		{name: "type required", s: corev1.Secret{}, want: []string{"type: Required value"}},
		{name: "bad key in data and stringData", s: corev1.Secret{Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{"a b": nil}, StringData: map[string]string{"c/d": ""}},
			want: []string{"data[a b]: Invalid value", "stringData[c/d]: Invalid value"}},
		{name: "tls needs cert and key", s: corev1.Secret{Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": []byte("c")}},
			want: []string{"data[tls.key]: Required value"}},
		{name: "tls via stringData", s: corev1.Secret{Type: corev1.SecretTypeTLS, StringData: map[string]string{"tls.crt": "c", "tls.key": "k"}}},
		{name: "dockerconfigjson must be JSON", s: corev1.Secret{Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{".dockerconfigjson": []byte("{")}},
			want: []string{"data[.dockerconfigjson]: Invalid value"}},
		{name: "basic auth needs username or password", s: corev1.Secret{Type: corev1.SecretTypeBasicAuth},
			want: []string{"data[username]: Required value", "data[password]: Required value"}},
		{name: "service account token needs annotation", s: corev1.Secret{Type: corev1.SecretTypeServiceAccountToken},
			want: []string{"metadata.annotations[kubernetes.io/service-account.name]: Required value"}},
		{name: "too large", s: corev1.Secret{Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"k": make([]byte, corev1.MaxSecretSize+1)}},
			want: []string{"data: Too long"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.s.DeepCopy()
			s.ObjectMeta = metav1.ObjectMeta{Name: "web-secret", Namespace: "default"}
			expectErrors(t, ValidateCreate(s), tt.want...)
		})
	}
}

func TestValidateSecretUpdate(t *testing.T) {
	tests := []struct {
		name      string
		immutable bool
		mutate    func(s *corev1.Secret)
		want      []string
	}{
		{name: "data may change", mutate: func(s *corev1.Secret) { s.Data["pw"] = []byte("new") }},
		{name: "type immutable", mutate: func(s *corev1.Secret) { s.Type = "example.com/other" },
			want: []string{"type: Invalid value"}},
		{name: "immutable data frozen", immutable: true, mutate: func(s *corev1.Secret) { s.Data["pw"] = []byte("new") },
			want: []string{"data: Forbidden"}},
		{name: "immutable unchanged ok", immutable: true, mutate: func(s *corev1.Secret) { s.Annotations = map[string]string{"a": "b"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := stored(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "default"},
				Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"pw": []byte("old")}})
			if tt.immutable {
				old.Immutable = ptr(true)
			}
			s := old.DeepCopy()
			tt.mutate(s)
			expectErrors(t, ValidateUpdate(s, old), tt.want...)
		})
	}
}
