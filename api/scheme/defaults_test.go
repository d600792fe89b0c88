package scheme

import (
	"testing"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
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
