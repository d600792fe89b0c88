package apiserver_test

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/minik8s/minik8s/apiserver/apiservertest"
)

func itTwoContainerDeployment(name string) *appsv1.Deployment {
	d := itDeployment(name, 1, "patch")
	d.Spec.Template.Spec.Containers = []corev1.Container{
		{Name: "web", Image: "minik8s.local/web:v1"},
		{Name: "sidecar", Image: "minik8s.local/busybox:1.35", Command: []string{"sleep", "3600"}},
	}
	return d
}

func itContainers(d *appsv1.Deployment) map[string]string {
	out := map[string]string{}
	for _, c := range d.Spec.Template.Spec.Containers {
		out[c.Name] = c.Image
	}
	return out
}

// TestIntegrationPatches applies JSON, merge and strategic merge patches to
// a Deployment's containers and a Pod's labels.
func TestIntegrationPatches(t *testing.T) {
	s := apiservertest.Start(t)
	cs := itClientset(t, s, false)
	ctx := itCtx(t)
	deps := cs.AppsV1().Deployments("default")

	t.Run("strategic merge keeps the other container", func(t *testing.T) {
		if _, err := deps.Create(ctx, itTwoContainerDeployment("smp"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		d, err := deps.Patch(ctx, "smp", types.StrategicMergePatchType,
			[]byte(`{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"minik8s.local/web:v2"}]}}}}`), metav1.PatchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := itContainers(d); len(got) != 2 || got["web"] != "minik8s.local/web:v2" || got["sidecar"] != "minik8s.local/busybox:1.35" {
			t.Fatalf("containers after strategic merge patch: %v", got)
		}
		if d.Spec.Template.Spec.Containers[1].Command[0] != "sleep" {
			t.Errorf("sidecar lost its command: %+v", d.Spec.Template.Spec.Containers[1])
		}
		if d.Generation != 2 {
			t.Errorf("generation %d after a template change, want 2", d.Generation)
		}
		// $patch: delete removes one element by its merge key.
		d, err = deps.Patch(ctx, "smp", types.StrategicMergePatchType,
			[]byte(`{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","$patch":"delete"}]}}}}`), metav1.PatchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := itContainers(d); len(got) != 1 || got["web"] != "minik8s.local/web:v2" {
			t.Fatalf("containers after $patch delete: %v", got)
		}
	})

	t.Run("merge patch replaces the list", func(t *testing.T) {
		if _, err := deps.Create(ctx, itTwoContainerDeployment("merge"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		d, err := deps.Patch(ctx, "merge", types.MergePatchType,
			[]byte(`{"spec":{"replicas":3,"template":{"spec":{"containers":[{"name":"web","image":"minik8s.local/web:v2"}]}}}}`), metav1.PatchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := itContainers(d); len(got) != 1 || got["web"] != "minik8s.local/web:v2" {
			t.Fatalf("containers after merge patch: %v (RFC 7386 replaces lists)", got)
		}
		if *d.Spec.Replicas != 3 {
			t.Errorf("replicas %d", *d.Spec.Replicas)
		}
		// Defaults are applied to what the patch brought in.
		if pp := d.Spec.Template.Spec.Containers[0].ImagePullPolicy; pp == "" {
			t.Errorf("patched container was not defaulted (imagePullPolicy empty)")
		}
	})

	t.Run("json patch", func(t *testing.T) {
		if _, err := deps.Create(ctx, itTwoContainerDeployment("jsonp"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		d, err := deps.Patch(ctx, "jsonp", types.JSONPatchType, []byte(`[
			{"op":"test","path":"/spec/template/spec/containers/1/name","value":"sidecar"},
			{"op":"replace","path":"/spec/template/spec/containers/1/image","value":"minik8s.local/busybox:1.36"},
			{"op":"add","path":"/metadata/labels","value":{"patched":"json"}},
			{"op":"replace","path":"/spec/replicas","value":4}]`), metav1.PatchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := itContainers(d); len(got) != 2 || got["sidecar"] != "minik8s.local/busybox:1.36" || got["web"] != "minik8s.local/web:v1" {
			t.Fatalf("containers after json patch: %v", got)
		}
		if *d.Spec.Replicas != 4 || d.Labels["patched"] != "json" {
			t.Errorf("replicas %d labels %v", *d.Spec.Replicas, d.Labels)
		}
		// A failing test op aborts the whole patch.
		_, err = deps.Patch(ctx, "jsonp", types.JSONPatchType, []byte(`[
			{"op":"replace","path":"/spec/replicas","value":9},
			{"op":"test","path":"/spec/template/spec/containers/1/name","value":"other"}]`), metav1.PatchOptions{})
		if st := itStatus(t, err); st.Code < 400 || st.Code >= 500 {
			t.Errorf("failed json patch test op: %d %s, want 4xx", st.Code, st.Message)
		}
		if d, _ := deps.Get(ctx, "jsonp", metav1.GetOptions{}); *d.Spec.Replicas != 4 {
			t.Errorf("aborted patch changed replicas to %d", *d.Spec.Replicas)
		}
	})

	t.Run("pod labels", func(t *testing.T) {
		pods := cs.CoreV1().Pods("default")
		if _, err := pods.Create(ctx, itPod("labels", map[string]string{"a": "1", "b": "2"}), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, step := range []struct {
			pt    types.PatchType
			patch string
			want  map[string]string
		}{
			{types.StrategicMergePatchType, `{"metadata":{"labels":{"c":"3","a":null}}}`, map[string]string{"b": "2", "c": "3"}},
			{types.MergePatchType, `{"metadata":{"labels":{"d":"4","b":null}}}`, map[string]string{"c": "3", "d": "4"}},
			{types.JSONPatchType, `[{"op":"add","path":"/metadata/labels/e","value":"5"},{"op":"remove","path":"/metadata/labels/c"}]`, map[string]string{"d": "4", "e": "5"}},
		} {
			p, err := pods.Patch(ctx, "labels", step.pt, []byte(step.patch), metav1.PatchOptions{})
			if err != nil {
				t.Fatalf("%s %s: %v", step.pt, step.patch, err)
			}
			if !mapsEqual(p.Labels, step.want) {
				t.Errorf("%s %s: labels %v, want %v", step.pt, step.patch, p.Labels, step.want)
			}
			if p.Spec.Containers[0].Image != "minik8s.local/busybox:1.35" {
				t.Errorf("label patch changed the spec: %+v", p.Spec.Containers)
			}
		}
	})

	t.Run("invalid patches are 4xx", func(t *testing.T) {
		pods := cs.CoreV1().Pods("default")
		if _, err := pods.Create(ctx, itPod("badpatch", map[string]string{"a": "1"}), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		before, err := pods.Get(ctx, "badpatch", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name  string
			pt    types.PatchType
			patch string
			code  int32 // 0 = any 4xx
		}{
			{"json patch not json", types.JSONPatchType, `[{"op":`, 400},
			{"json patch not a list", types.JSONPatchType, `{"op":"add"}`, 0},
			{"json patch unknown op", types.JSONPatchType, `[{"op":"frobnicate","path":"/metadata/labels/x","value":"1"}]`, 0},
			{"json patch missing path", types.JSONPatchType, `[{"op":"remove","path":"/spec/nope/deeper"}]`, 0},
			{"merge patch not json", types.MergePatchType, `{"metadata":`, 400},
			{"merge patch wrong type", types.MergePatchType, `{"spec":{"containers":"three"}}`, 400},
			{"strategic patch not json", types.StrategicMergePatchType, `nope`, 400},
			{"strategic patch wrong type", types.StrategicMergePatchType, `{"metadata":{"labels":["x"]}}`, 0},
			{"strategic patch bad directive", types.StrategicMergePatchType, `{"spec":{"containers":[{"$patch":"explode"}]}}`, 0},
			{"patch renames", types.MergePatchType, `{"metadata":{"name":"other"}}`, 400},
			{"patch moves namespace", types.MergePatchType, `{"metadata":{"namespace":"kube-system"}}`, 400},
			{"patch makes it invalid", types.MergePatchType, `{"metadata":{"labels":{"bad key!":"x"}}}`, 422},
			{"patch changes immutable field", types.JSONPatchType, `[{"op":"add","path":"/spec/containers/-","value":{"name":"new","image":"x"}}]`, 422},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := pods.Patch(ctx, "badpatch", tc.pt, []byte(tc.patch), metav1.PatchOptions{})
				st := itStatus(t, err)
				if st.Code < 400 || st.Code >= 500 || (tc.code != 0 && st.Code != tc.code) {
					t.Errorf("%s: %d %s: %s (want %d / 4xx)", tc.patch, st.Code, st.Reason, st.Message, tc.code)
				}
			})
		}
		// The raw protocol: an unknown patch content type is 415.
		c := newClient(t, s)
		code, body := c.do("PATCH", "/api/v1/namespaces/default/pods/badpatch", "application/apply-patch+yaml", "metadata: {}")
		if code != 415 || body["kind"] != "Status" {
			t.Errorf("apply patch: %d %v, want 415 Status", code, body)
		}
		code, body = c.do("PATCH", "/api/v1/namespaces/default/pods/badpatch", "text/plain", "{}")
		if code != 415 {
			t.Errorf("text/plain patch: %d %v, want 415", code, body)
		}
		after, err := pods.Get(ctx, "badpatch", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if after.ResourceVersion != before.ResourceVersion {
			t.Errorf("a refused patch wrote the pod: rv %s -> %s, labels %v", before.ResourceVersion, after.ResourceVersion, after.Labels)
		}
	})
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
