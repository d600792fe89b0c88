package scheme

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
	autoscalingv1 "github.com/minik8s/minik8s/api/autoscaling/v1"
	coordinationv1 "github.com/minik8s/minik8s/api/coordination/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
	policyv1 "github.com/minik8s/minik8s/api/policy/v1"
	k8sappsv1 "k8s.io/api/apps/v1"
	k8sautoscalingv1 "k8s.io/api/autoscaling/v1"
	k8scoordinationv1 "k8s.io/api/coordination/v1"
	k8scorev1 "k8s.io/api/core/v1"
	k8spolicyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
)

// fixture pairs a JSON manifest written with Kubernetes field names with our
// type and the upstream k8s.io/api type for the same kind.
type fixture struct {
	file string
	gvk  schema.GroupVersionKind
	ours runtime.Object
	k8s  any
}

var fixtures = []fixture{
	{"pod.json", corev1.SchemeGroupVersion.WithKind("Pod"), &corev1.Pod{}, &k8scorev1.Pod{}},
	{"service.json", corev1.SchemeGroupVersion.WithKind("Service"), &corev1.Service{}, &k8scorev1.Service{}},
	{"endpoints.json", corev1.SchemeGroupVersion.WithKind("Endpoints"), &corev1.Endpoints{}, &k8scorev1.Endpoints{}},
	{"configmap.json", corev1.SchemeGroupVersion.WithKind("ConfigMap"), &corev1.ConfigMap{}, &k8scorev1.ConfigMap{}},
	{"secret.json", corev1.SchemeGroupVersion.WithKind("Secret"), &corev1.Secret{}, &k8scorev1.Secret{}},
	{"node.json", corev1.SchemeGroupVersion.WithKind("Node"), &corev1.Node{}, &k8scorev1.Node{}},
	{"namespace.json", corev1.SchemeGroupVersion.WithKind("Namespace"), &corev1.Namespace{}, &k8scorev1.Namespace{}},
	{"event.json", corev1.SchemeGroupVersion.WithKind("Event"), &corev1.Event{}, &k8scorev1.Event{}},
	{"binding.json", corev1.SchemeGroupVersion.WithKind("Binding"), &corev1.Binding{}, &k8scorev1.Binding{}},
	{"deployment.json", appsv1.SchemeGroupVersion.WithKind("Deployment"), &appsv1.Deployment{}, &k8sappsv1.Deployment{}},
	{"replicaset.json", appsv1.SchemeGroupVersion.WithKind("ReplicaSet"), &appsv1.ReplicaSet{}, &k8sappsv1.ReplicaSet{}},
	{"lease.json", coordinationv1.SchemeGroupVersion.WithKind("Lease"), &coordinationv1.Lease{}, &k8scoordinationv1.Lease{}},
	{"scale.json", autoscalingv1.SchemeGroupVersion.WithKind("Scale"), &autoscalingv1.Scale{}, &k8sautoscalingv1.Scale{}},
	{"eviction.json", policyv1.SchemeGroupVersion.WithKind("Eviction"), &policyv1.Eviction{}, &k8spolicyv1.Eviction{}},
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// generic turns JSON into maps/slices so two documents compare by content,
// not by key order or whitespace.
func generic(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("unmarshal %s: %v", data, err)
	}
	return v
}

// TestRoundTripMatchesManifest decodes each manifest through the scheme's
// strict codec (so a misspelled or missing JSON field fails) and encodes it
// back: the result must be the same document.
func TestRoundTripMatchesManifest(t *testing.T) {
	for _, f := range fixtures {
		t.Run(f.file, func(t *testing.T) {
			data := readFixture(t, f.file)
			obj, gvk, err := StrictCodecs.UniversalDeserializer().Decode(data, nil, nil)
			if err != nil {
				t.Fatalf("strict decode: %v", err)
			}
			if *gvk != f.gvk {
				t.Errorf("decoded kind %v, want %v", *gvk, f.gvk)
			}
			if reflect.TypeOf(obj) != reflect.TypeOf(f.ours) {
				t.Fatalf("decoded into %T, want %T", obj, f.ours)
			}
			info, ok := runtime.SerializerInfoForMediaType(Codecs.SupportedMediaTypes(), runtime.ContentTypeJSON)
			if !ok {
				t.Fatal("no JSON serializer")
			}
			enc := Codecs.EncoderForVersion(info.Serializer, f.gvk.GroupVersion())
			var buf bytes.Buffer
			if err := enc.Encode(obj, &buf); err != nil {
				t.Fatalf("encode: %v", err)
			}
			if got, want := generic(t, buf.Bytes()), generic(t, data); !reflect.DeepEqual(got, want) {
				t.Errorf("round trip changed the document\n got: %s\nwant: %s", buf.Bytes(), data)
			}
		})
	}
}

// TestWireCompatibleWithUpstream decodes each manifest into both our type and
// the upstream k8s.io/api type and requires identical JSON out of both.
func TestWireCompatibleWithUpstream(t *testing.T) {
	for _, f := range fixtures {
		t.Run(f.file, func(t *testing.T) {
			data := readFixture(t, f.file)
			ours := f.ours.DeepCopyObject()
			if err := json.Unmarshal(data, ours); err != nil {
				t.Fatalf("ours: %v", err)
			}
			theirs := reflect.New(reflect.TypeOf(f.k8s).Elem()).Interface()
			if err := json.Unmarshal(data, theirs); err != nil {
				t.Fatalf("upstream: %v", err)
			}
			a, err := json.Marshal(ours)
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(theirs)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(generic(t, a), generic(t, b)) {
				t.Errorf("JSON differs from upstream\n ours: %s\n k8s: %s", a, b)
			}
		})
	}
}

// TestStrategicMergeMatchesUpstream applies the same strategic merge patch
// to our Pod/Service/Node/Deployment structs and to upstream's: equal
// results prove the patchStrategy/patchMergeKey tags agree.
func TestStrategicMergeMatchesUpstream(t *testing.T) {
	tests := []struct {
		name   string
		file   string
		ours   any
		k8s    any
		patch  string
		expect func(t *testing.T, merged map[string]any)
	}{
		{
			name: "pod containers by name, env by name, ports by containerPort, volumes by name",
			file: "pod.json", ours: &corev1.Pod{}, k8s: &k8scorev1.Pod{},
			patch: `{"spec":{"containers":[{"name":"web","image":"minik8s.local/web:v2",
				"env":[{"name":"MODE","value":"dev"},{"name":"NEW","value":"1"}],
				"ports":[{"containerPort":8080,"name":"web"},{"containerPort":9090}],
				"volumeMounts":[{"mountPath":"/etc/web","readOnly":false,"name":"cfg"}]},
				{"name":"sidecar","image":"minik8s.local/busybox:1.35"}],
				"volumes":[{"name":"scratch","emptyDir":null,"hostPath":{"path":"/tmp"}}],
				"tolerations":[{"key":"only","operator":"Exists"}]},
				"status":{"conditions":[{"type":"Ready","status":"False"}]}}`,
			expect: func(t *testing.T, m map[string]any) {
				spec := m["spec"].(map[string]any)
				if n := len(spec["containers"].([]any)); n != 2 {
					t.Errorf("containers merged to %d entries, want 2", n)
				}
				// tolerations have no merge key: replaced wholesale.
				if n := len(spec["tolerations"].([]any)); n != 1 {
					t.Errorf("tolerations %d entries, want 1 (replace)", n)
				}
				conds := m["status"].(map[string]any)["conditions"].([]any)
				if len(conds) != 2 {
					t.Errorf("conditions %d entries, want 2 (merge by type)", len(conds))
				}
			},
		},
		{
			name: "service ports merge by port",
			file: "service.json", ours: &corev1.Service{}, k8s: &k8scorev1.Service{},
			patch: `{"spec":{"ports":[{"port":80,"targetPort":8081},{"port":443,"name":"https"}]}}`,
			expect: func(t *testing.T, m map[string]any) {
				if n := len(m["spec"].(map[string]any)["ports"].([]any)); n != 3 {
					t.Errorf("ports %d entries, want 3", n)
				}
			},
		},
		{
			name: "node conditions and addresses merge by type",
			file: "node.json", ours: &corev1.Node{}, k8s: &k8scorev1.Node{},
			patch: `{"status":{"conditions":[{"type":"Ready","status":"False"},{"type":"DiskPressure","status":"False"}],"addresses":[{"type":"Hostname","address":"n1"}]},"spec":{"podCIDRs":["10.244.9.0/24"]}}`,
		},
		{
			name: "deployment strategy retainKeys",
			file: "deployment.json", ours: &appsv1.Deployment{}, k8s: &k8sappsv1.Deployment{},
			patch: `{"spec":{"strategy":{"type":"Recreate","$retainKeys":["type"]},"template":{"spec":{"containers":[{"name":"web","image":"minik8s.local/web:v3"}]}}}}`,
			expect: func(t *testing.T, m map[string]any) {
				st := m["spec"].(map[string]any)["strategy"].(map[string]any)
				if _, ok := st["rollingUpdate"]; ok {
					t.Errorf("rollingUpdate kept after retainKeys patch: %v", st)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := readFixture(t, tt.file)
			ours, err := strategicpatch.StrategicMergePatch(data, []byte(tt.patch), tt.ours)
			if err != nil {
				t.Fatalf("ours: %v", err)
			}
			theirs, err := strategicpatch.StrategicMergePatch(data, []byte(tt.patch), tt.k8s)
			if err != nil {
				t.Fatalf("upstream: %v", err)
			}
			got := generic(t, ours)
			if want := generic(t, theirs); !reflect.DeepEqual(got, want) {
				t.Errorf("merge differs from upstream\n ours: %s\n k8s: %s", ours, theirs)
			}
			if tt.expect != nil {
				tt.expect(t, got.(map[string]any))
			}
		})
	}
}

// TestSchemeKnowsMetaTypes checks the kinds the API server and clients need
// besides our own objects.
func TestSchemeKnowsMetaTypes(t *testing.T) {
	tests := []struct {
		obj  runtime.Object
		want schema.GroupVersionKind
	}{
		{&metav1.Status{}, schema.GroupVersionKind{Version: "v1", Kind: "Status"}},
		{&metav1.Table{}, metav1.SchemeGroupVersion.WithKind("Table")},
		{&metav1.PartialObjectMetadata{}, metav1.SchemeGroupVersion.WithKind("PartialObjectMetadata")},
		{&corev1.PodList{}, corev1.SchemeGroupVersion.WithKind("PodList")},
		{&appsv1.DeploymentList{}, appsv1.SchemeGroupVersion.WithKind("DeploymentList")},
		{&coordinationv1.LeaseList{}, coordinationv1.SchemeGroupVersion.WithKind("LeaseList")},
	}
	for _, tt := range tests {
		kinds, _, err := Scheme.ObjectKinds(tt.obj)
		if err != nil {
			t.Errorf("%T: %v", tt.obj, err)
			continue
		}
		found := false
		for _, k := range kinds {
			found = found || k == tt.want
		}
		if !found {
			t.Errorf("%T kinds %v, want %v among them", tt.obj, kinds, tt.want)
		}
	}
	for _, gv := range []schema.GroupVersion{metav1.SchemeGroupVersion, corev1.SchemeGroupVersion, appsv1.SchemeGroupVersion} {
		if !Scheme.Recognizes(gv.WithKind("DeleteOptions")) {
			t.Errorf("DeleteOptions not registered under %v", gv)
		}
	}
}

// TestParameterCodecListOptions decodes watch/list query parameters.
func TestParameterCodecListOptions(t *testing.T) {
	var opts metav1.ListOptions
	q := map[string][]string{"labelSelector": {"app=web"}, "watch": {"true"}, "resourceVersion": {"10"}, "limit": {"5"}}
	if err := ParameterCodec.DecodeParameters(q, corev1.SchemeGroupVersion, &opts); err != nil {
		t.Fatal(err)
	}
	if opts.LabelSelector != "app=web" || !opts.Watch || opts.ResourceVersion != "10" || opts.Limit != 5 {
		t.Errorf("decoded %+v", opts)
	}
}
