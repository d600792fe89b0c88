package scheme

import (
	"strings"
	"testing"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
	coordinationv1 "github.com/minik8s/minik8s/api/coordination/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
)

// TestDecodeAppliesDefaults: objects decoded with the universal decoder, and
// objects passed to Scheme.Default, come out defaulted.
func TestDecodeAppliesDefaults(t *testing.T) {
	data := []byte(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},
		"spec":{"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},
		"spec":{"containers":[{"name":"web","image":"minik8s.local/web:v1"}]}}}}`)
	obj, _, err := Codecs.UniversalDecoder(appsv1.SchemeGroupVersion).Decode(data, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, ok := obj.(*appsv1.Deployment)
	if !ok {
		t.Fatalf("decoded %T", obj)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 || d.Spec.Template.Spec.Containers[0].ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("decoded deployment not defaulted: %+v", d.Spec)
	}

	svc := &corev1.Service{}
	Scheme.Default(svc)
	if svc.Spec.Type != corev1.ServiceTypeClusterIP {
		t.Errorf("Scheme.Default(service) type = %q", svc.Spec.Type)
	}
}

// TestStrictDecodingRejectsUnknownFields: StrictCodecs name the offending
// field, Codecs ignore it (the API server's default, fieldValidation=Ignore).
func TestStrictDecodingRejectsUnknownFields(t *testing.T) {
	data := []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"x","imagePullPolicyy":"Always"}]}}`)
	if _, _, err := StrictCodecs.UniversalDeserializer().Decode(data, nil, nil); err == nil || !strings.Contains(err.Error(), "imagePullPolicyy") {
		t.Errorf("strict decode error = %v, want one naming imagePullPolicyy", err)
	}
	obj, _, err := Codecs.UniversalDeserializer().Decode(data, nil, nil)
	if err != nil {
		t.Fatalf("lenient decode: %v", err)
	}
	if _, ok := obj.(*corev1.Pod); !ok {
		t.Errorf("decoded %T", obj)
	}
	// YAML manifests decode through the same factory.
	yml := []byte("apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata:\n  name: l\nspec:\n  holderIdentity: me\n")
	obj, _, err = Codecs.UniversalDeserializer().Decode(yml, nil, nil)
	if err != nil {
		t.Fatalf("yaml decode: %v", err)
	}
	if l, ok := obj.(*coordinationv1.Lease); !ok || *l.Spec.HolderIdentity != "me" {
		t.Errorf("decoded %#v", obj)
	}
}
