package scheme

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	k8scorev1 "k8s.io/api/core/v1"
)

// jsonFields lists a struct's JSON field names with their Go kinds,
// following inline (embedded) members as encoding/json does.
func jsonFields(t reflect.Type) map[string]reflect.Kind {
	out := map[string]reflect.Kind{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" && f.Anonymous {
			for k, v := range jsonFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" || name == "-" {
			continue
		}
		out[name] = f.Type.Kind()
	}
	return out
}

// TestVolumeProjectionTypesMatchUpstream compares the downwardAPI and
// projected volume types field for field (JSON name and kind) with
// k8s.io/api. VolumeProjection leaves out clusterTrustBundle and
// podCertificate (unknown fields to us) and the alpha user/defaultUser
// fields; serviceAccountToken is kept so a
// Kubernetes manifest decodes, and validation rejects it.
func TestVolumeProjectionTypesMatchUpstream(t *testing.T) {
	// user/defaultUser (file owner) are alpha upstream (feature gate
	// AtomicWriteVolumeUserFields) and not implemented, for configMap and
	// secret volumes either.
	alphaUser := []string{"user", "defaultUser"}
	pairs := []struct {
		ours, k8s any
		missing   []string
	}{
		{corev1.DownwardAPIVolumeSource{}, k8scorev1.DownwardAPIVolumeSource{}, alphaUser},
		{corev1.DownwardAPIVolumeFile{}, k8scorev1.DownwardAPIVolumeFile{}, alphaUser},
		{corev1.ObjectFieldSelector{}, k8scorev1.ObjectFieldSelector{}, nil},
		{corev1.ResourceFieldSelector{}, k8scorev1.ResourceFieldSelector{}, nil},
		{corev1.ProjectedVolumeSource{}, k8scorev1.ProjectedVolumeSource{}, alphaUser},
		{corev1.VolumeProjection{}, k8scorev1.VolumeProjection{}, []string{"clusterTrustBundle", "podCertificate"}},
		{corev1.SecretProjection{}, k8scorev1.SecretProjection{}, nil},
		{corev1.ConfigMapProjection{}, k8scorev1.ConfigMapProjection{}, nil},
		{corev1.DownwardAPIProjection{}, k8scorev1.DownwardAPIProjection{}, nil},
		{corev1.ServiceAccountTokenProjection{}, k8scorev1.ServiceAccountTokenProjection{}, alphaUser},
		{corev1.KeyToPath{}, k8scorev1.KeyToPath{}, alphaUser},
	}
	for _, p := range pairs {
		ot, kt := reflect.TypeOf(p.ours), reflect.TypeOf(p.k8s)
		ours, theirs := jsonFields(ot), jsonFields(kt)
		for name, kind := range theirs {
			ok, has := ours[name]
			switch {
			case !has && !slices.Contains(p.missing, name):
				t.Errorf("%s: no field %q (upstream %s has it)", ot.Name(), name, kt.Name())
			case has && ok != kind:
				t.Errorf("%s.%s: kind %v, upstream %v", ot.Name(), name, ok, kind)
			}
		}
		for name := range ours {
			if _, has := theirs[name]; !has {
				t.Errorf("%s: field %q is not in upstream %s", ot.Name(), name, kt.Name())
			}
		}
	}
	// And the volume sources themselves.
	vs := jsonFields(reflect.TypeOf(corev1.VolumeSource{}))
	up := jsonFields(reflect.TypeOf(k8scorev1.VolumeSource{}))
	for _, name := range []string{"downwardAPI", "projected"} {
		if vs[name] != up[name] || vs[name] != reflect.Pointer {
			t.Errorf("VolumeSource.%s: kind %v, upstream %v", name, vs[name], up[name])
		}
	}
}
