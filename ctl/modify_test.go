package ctl

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/apiserver/apiservertest"
)

func boolp(b bool) *bool { return &b }

func TestDescribeLabelScaleEditDiff(t *testing.T) {
	s := apiservertest.Start(t)
	h := newHarness(t, s, "team")
	ctx := context.Background()
	dir := t.TempDir()
	web := writeFile(t, dir, "web.yaml", webV1)
	h.ok("apply", "-f", web)
	d, err := h.cs.Deployments.Namespace("team").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// What the (future) deployment controller and kubelet would write:
	// a ReplicaSet, a pod, status, endpoints and events.
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "web-5d8f9c", Labels: map[string]string{"app": "web"},
		Annotations:     map[string]string{appsv1.RevisionAnnotation: "1"},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: d.UID, Controller: boolp(true)}}},
		Spec: appsv1.ReplicaSetSpec{Replicas: int32p(2), Selector: d.Spec.Selector, Template: d.Spec.Template}}
	rs, err = h.cs.ReplicaSets.Namespace("team").Create(ctx, rs, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod := testPod("web-5d8f9c-x1", map[string]string{"app": "web"})
	pod.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: boolp(true)}}
	pod, err = h.cs.Pods.Namespace("team").Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ep := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Subsets: []corev1.EndpointSubset{{
		Addresses: []corev1.EndpointAddress{{IP: "10.244.1.9"}}, Ports: []corev1.EndpointPort{{Name: "http", Port: 8080, Protocol: corev1.ProtocolTCP}}}}}
	if _, err := h.cs.Endpoints.Namespace("team").Create(ctx, ep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	mkEvent := func(name, kind, obj string, uid types.UID, reason, msg string) {
		ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: name},
			InvolvedObject: corev1.ObjectReference{Kind: kind, Namespace: "team", Name: obj, UID: uid},
			Reason:         reason, Message: msg, Type: corev1.EventTypeNormal, Count: 1,
			Source: corev1.EventSource{Component: "test-controller"}, LastTimestamp: metav1.Now(), FirstTimestamp: metav1.Now()}
		if _, err := h.cs.Events.Namespace("team").Create(ctx, ev, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mkEvent("web.1", "Deployment", "web", d.UID, "ScalingReplicaSet", "Scaled up replica set web-5d8f9c to 2")
	mkEvent("web.2", "Deployment", "web", "old-uid", "ScalingReplicaSet", "an event about an earlier web")
	mkEvent("pod.1", "Pod", pod.Name, pod.UID, "Scheduled", "Successfully assigned team/web-5d8f9c-x1 to node-1")

	t.Run("describe", func(t *testing.T) {
		h := h.at(t)
		out := h.ok("describe", "deployment", "web")
		wantContains(t, "describe deploy", out, "Name:", "web", "Namespace:", "team", "Selector:", "app=web",
			"2 desired | 0 updated | 0 total | 0 available | 0 unavailable", "NewReplicaSet:", "web-5d8f9c (0/2 replicas created)",
			"Events:", "ScalingReplicaSet", "Scaled up replica set web-5d8f9c to 2", "test-controller")
		if strings.Contains(out, "an event about an earlier web") {
			t.Errorf("describe shows an event of another object with the same name:\n%s", out)
		}
		if strings.Contains(out, "last-applied-configuration") {
			t.Error("describe shows the last-applied annotation")
		}
		svc := h.ok("describe", "svc/web")
		wantContains(t, "describe svc", svc, "Endpoints:", "10.244.1.9:8080", "TargetPort:", "8080/TCP")
		// prefix match on pods, and the pod's events
		pods := h.ok("describe", "pods", "web-5d8f9c")
		wantContains(t, "describe pods prefix", pods, "Name:", "web-5d8f9c-x1", "Controlled By:", "ReplicaSet/web-5d8f9c", "Scheduled")
		rsOut := h.ok("describe", "rs", "web-5d8f9c")
		wantContains(t, "describe rs", rsOut, "Controlled By:", "Deployment/web", "Pods Status:", "0 Running / 1 Waiting")
		all := h.ok("describe", "-f", web)
		wantContains(t, "describe -f", all, "Name:", "Selector:", "Type:", "ClusterIP")
		wantContains(t, "describe missing", h.fails("describe", "deploy", "nope"), `deployments.apps "nope" not found`)
		gen := h.ok("describe", "lease", "--all-namespaces")
		_ = gen
		noEvents := h.ok("describe", "deploy", "web", "--show-events=false")
		if strings.Contains(noEvents, "Events:") {
			t.Error("--show-events=false still shows events")
		}
	})

	t.Run("label and annotate", func(t *testing.T) {
		h := h.at(t)
		if out := h.ok("label", "pods", "web-5d8f9c-x1", "tier=frontend"); out != "pod/web-5d8f9c-x1 labeled\n" {
			t.Errorf("label: %q", out)
		}
		errOut := h.fails("label", "pods", "web-5d8f9c-x1", "tier=backend")
		wantContains(t, "no overwrite", errOut, "'tier' already has a value (frontend), and --overwrite is false")
		h.ok("label", "--overwrite", "pods", "web-5d8f9c-x1", "tier=backend")
		if out := h.ok("label", "pods", "web-5d8f9c-x1", "--list"); !strings.Contains(out, "tier=backend\n") {
			t.Errorf("--list: %q", out)
		}
		if out := h.ok("label", "pods", "web-5d8f9c-x1", "tier-"); out != "pod/web-5d8f9c-x1 unlabeled\n" {
			t.Errorf("unlabel: %q", out)
		}
		p, _ := h.cs.Pods.Namespace("team").Get(ctx, "web-5d8f9c-x1", metav1.GetOptions{})
		if _, ok := p.Labels["tier"]; ok || p.Labels["app"] != "web" {
			t.Errorf("labels after removal: %v", p.Labels)
		}
		wantContains(t, "bad key", h.fails("label", "pods", "web-5d8f9c-x1", "bad key=x"), `invalid key "bad key"`)
		wantContains(t, "bad value", h.fails("label", "pods", "web-5d8f9c-x1", "k=has space"), `invalid value "has space"`)
		if out := h.ok("label", "deploy,svc", "--all", "env=test"); out != "deployment.apps/web labeled\nservice/web labeled\n" {
			t.Errorf("label --all: %q", out)
		}
		if out := h.ok("label", "deploy", "-l", "app=web", "env=test"); out != "deployment.apps/web not labeled\n" {
			t.Errorf("label same value: %q", out)
		}
		// a stale --resource-version is refused by the server
		wantContains(t, "stale rv", h.fails("label", "deploy", "web", "stale=yes", "--resource-version=1"), "Conflict")

		if out := h.ok("annotate", "deploy", "web", "example.com/owner=alice"); out != "deployment.apps/web annotated\n" {
			t.Errorf("annotate: %q", out)
		}
		h.fails("annotate", "deploy", "web", "example.com/owner=bob")
		h.ok("annotate", "--overwrite", "deploy", "web", "example.com/owner=bob", "kubernetes.io/change-cause=testing")
		d, _ := h.cs.Deployments.Namespace("team").Get(ctx, "web", metav1.GetOptions{})
		if d.Annotations["example.com/owner"] != "bob" || d.Annotations["kubernetes.io/change-cause"] != "testing" {
			t.Errorf("annotations = %v", d.Annotations)
		}
		h.ok("annotate", "deploy", "web", "example.com/owner-")
		d, _ = h.cs.Deployments.Namespace("team").Get(ctx, "web", metav1.GetOptions{})
		if _, ok := d.Annotations["example.com/owner"]; ok {
			t.Error("annotation not removed")
		}
		// --local changes files, not the server
		out := h.ok("label", "--local", "-f", web, "local=yes", "-o", "yaml")
		wantContains(t, "--local", out, "local: \"yes\"")
	})

	t.Run("scale", func(t *testing.T) {
		h := h.at(t)
		if out := h.ok("scale", "deployment/web", "--replicas=5"); out != "deployment.apps/web scaled\n" {
			t.Errorf("scale: %q", out)
		}
		d, _ := h.cs.Deployments.Namespace("team").Get(ctx, "web", metav1.GetOptions{})
		if *d.Spec.Replicas != 5 {
			t.Errorf("replicas = %d", *d.Spec.Replicas)
		}
		wantContains(t, "precondition", h.fails("scale", "deploy", "web", "--current-replicas=2", "--replicas=3"),
			"expected 2 replicas, found 5")
		h.ok("scale", "deploy", "web", "--current-replicas=5", "--replicas=1")
		h.ok("scale", "rs", "web-5d8f9c", "--replicas=0")
		r, _ := h.cs.ReplicaSets.Namespace("team").Get(ctx, "web-5d8f9c", metav1.GetOptions{})
		if *r.Spec.Replicas != 0 {
			t.Errorf("rs replicas = %d", *r.Spec.Replicas)
		}
		wantContains(t, "scale a pod", h.fails("scale", "pod", "web-5d8f9c-x1", "--replicas=2"), "cannot be scaled")
		wantContains(t, "no replicas", h.fails("scale", "deploy", "web"), "--replicas=COUNT is required")
		// back to what the file says, for the diff test below
		h.ok("scale", "deploy", "web", "--replicas=2")
	})

	t.Run("set image", func(t *testing.T) {
		h := h.at(t)
		if out := h.ok("set", "image", "deployment/web", "web=minik8s.local/web:v2"); out != "deployment.apps/web image updated\n" {
			t.Errorf("set image: %q", out)
		}
		d, _ := h.cs.Deployments.Namespace("team").Get(ctx, "web", metav1.GetOptions{})
		if img := d.Spec.Template.Spec.Containers[0].Image; img != "minik8s.local/web:v2" {
			t.Errorf("image = %s", img)
		}
		if len(d.Spec.Template.Spec.Containers[0].Env) != 2 {
			t.Errorf("set image touched other fields: %+v", d.Spec.Template.Spec.Containers[0])
		}
		wantContains(t, "missing container", h.fails("set", "image", "deploy/web", "nope=x"), `unable to find container named "nope"`)
		h.ok("set", "image", "pod/web-5d8f9c-x1", "*=minik8s.local/busybox:1.36")
		p, _ := h.cs.Pods.Namespace("team").Get(ctx, "web-5d8f9c-x1", metav1.GetOptions{})
		if p.Spec.Containers[0].Image != "minik8s.local/busybox:1.36" {
			t.Errorf("pod image = %s", p.Spec.Containers[0].Image)
		}
		h.ok("set", "image", "deployment/web", "web=minik8s.local/web:v1")
	})

	t.Run("expose", func(t *testing.T) {
		h := h.at(t)
		if out := h.ok("expose", "deployment", "web", "--name=web-np", "--port=80", "--target-port=8080", "--type=NodePort"); out != "service/web-np exposed\n" {
			t.Errorf("expose: %q", out)
		}
		svc, err := h.cs.Services.Namespace("team").Get(ctx, "web-np", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if svc.Spec.Type != corev1.ServiceTypeNodePort || svc.Spec.Selector["app"] != "web" || len(svc.Spec.Ports) != 1 ||
			svc.Spec.Ports[0].Port != 80 || svc.Spec.Ports[0].TargetPort.IntValue() != 8080 || svc.Spec.Ports[0].NodePort == 0 {
			t.Errorf("exposed service = %+v", svc.Spec)
		}
		// without --port: the containers' ports
		h.ok("expose", "deploy", "web", "--name=web-auto")
		svc, _ = h.cs.Services.Namespace("team").Get(ctx, "web-auto", metav1.GetOptions{})
		if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 8080 {
			t.Errorf("auto ports = %+v", svc.Spec.Ports)
		}
		wantContains(t, "no ports", h.fails("expose", "pod", "web-5d8f9c-x1"), "couldn't find a port")
		out := h.ok("expose", "pod", "web-5d8f9c-x1", "--port=9000", "--dry-run=client", "-o", "yaml")
		wantContains(t, "expose dry run", out, "kind: Service", "port: 9000", "app: web")
		if _, err := h.cs.Services.Namespace("team").Get(ctx, "web-5d8f9c-x1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("dry run created the service: %v", err)
		}
	})

	t.Run("patch", func(t *testing.T) {
		h := h.at(t)
		if out := h.ok("patch", "deployment", "web", "-p", `{"spec":{"replicas":3}}`); out != "deployment.apps/web patched\n" {
			t.Errorf("patch: %q", out)
		}
		h.ok("patch", "deploy/web", "-p", "spec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: minik8s.local/web:v9\n")
		d, _ := h.cs.Deployments.Namespace("team").Get(ctx, "web", metav1.GetOptions{})
		if *d.Spec.Replicas != 3 || d.Spec.Template.Spec.Containers[0].Image != "minik8s.local/web:v9" || len(d.Spec.Template.Spec.Containers[0].Env) != 2 {
			t.Errorf("after patches: replicas %d, container %+v", *d.Spec.Replicas, d.Spec.Template.Spec.Containers[0])
		}
		h.ok("patch", "svc", "web-np", "--type=json", "-p", `[{"op":"replace","path":"/spec/type","value":"ClusterIP"}]`)
		svc, _ := h.cs.Services.Namespace("team").Get(ctx, "web-np", metav1.GetOptions{})
		if svc.Spec.Type != corev1.ServiceTypeClusterIP {
			t.Errorf("json patch: type %s", svc.Spec.Type)
		}
		h.ok("patch", "deploy", "web", "--subresource=status", "--type=merge", "-p", `{"status":{"observedGeneration":42}}`)
		d, _ = h.cs.Deployments.Namespace("team").Get(ctx, "web", metav1.GetOptions{})
		if d.Status.ObservedGeneration != 42 {
			t.Errorf("status patch: observedGeneration %d", d.Status.ObservedGeneration)
		}
		wantContains(t, "unknown field", h.fails("patch", "deploy", "web", "--type=merge", "-p", `{"spec":{"replicaz":1}}`), "replicaz")
		wantContains(t, "bad patch", h.fails("patch", "deploy", "web", "-p", `{"spec":`), "not valid JSON or YAML")
		h.ok("patch", "deploy", "web", "-p", `{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"minik8s.local/web:v1"}]}}}}`)
		h.ok("patch", "deploy", "web", "--type=merge", "-p", `{"spec":{"replicas":2}}`)
	})

	t.Run("diff", func(t *testing.T) {
		h := h.at(t)
		// Same as live: no output, exit 0.
		out, errOut, code := h.run("diff", "-f", web)
		if code != 0 || out != "" {
			t.Errorf("diff of applied file: exit %d\n%s%s", code, out, errOut)
		}
		changed := strings.Replace(webV1, "replicas: 2", "replicas: 4", 1) + `---
apiVersion: v1
kind: ConfigMap
metadata:
  name: brand-new
data:
  k: v
`
		path := writeFile(t, dir, "web-changed.yaml", changed)
		out, errOut, code = h.run("diff", "-f", path)
		if code != 1 {
			t.Fatalf("diff with changes: exit %d, want 1\n%s%s", code, out, errOut)
		}
		wantContains(t, "diff", out, "diff -u -N live/apps.v1.Deployment.team.web merged/apps.v1.Deployment.team.web",
			"-  replicas: 2", "+  replicas: 4", "--- live/v1.ConfigMap.team.brand-new", "+  name: brand-new", "+  k: v")
		if _, err := h.cs.ConfigMaps.Namespace("team").Get(ctx, "brand-new", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("diff created the config map: %v", err)
		}
		d, _ := h.cs.Deployments.Namespace("team").Get(ctx, "web", metav1.GetOptions{})
		if *d.Spec.Replicas != 2 {
			t.Errorf("diff changed the deployment: replicas %d", *d.Spec.Replicas)
		}
		// Secrets are masked.
		h.ok("create", "secret", "generic", "pw", "--from-literal=password=old")
		sec := writeFile(t, dir, "secret.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: pw}\nstringData: {password: new}\n")
		out, _, code = h.run("diff", "-f", sec)
		if code != 1 || strings.Contains(out, "b2xk") || strings.Contains(out, "bmV3") {
			t.Errorf("secret diff (exit %d) shows values:\n%s", code, out)
		}
		wantContains(t, "masked", out, "*** (before)", "*** (after)")
		// errors exit 2
		bad := writeFile(t, dir, "bad.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\nbogus: 1\n")
		_, errOut, code = h.run("diff", "-f", bad)
		if code != 2 || !strings.Contains(errOut, "bogus") {
			t.Errorf("diff of a broken file: exit %d %s", code, errOut)
		}
		// an external diff program gets two directories
		t.Setenv("KUBECTL_EXTERNAL_DIFF", "diff -r")
		out, _, code = h.run("diff", "-f", path)
		if code != 1 || !strings.Contains(out, "< ") || !strings.Contains(out, "replicas: 4") {
			t.Errorf("external diff: exit %d\n%s", code, out)
		}
	})

	t.Run("edit", func(t *testing.T) {
		h := h.at(t)
		script := func(name, body string) string {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			return p
		}
		t.Setenv("KUBE_EDITOR", script("bump.sh", `sed -i 's/replicas: 2/replicas: 7/' "$1"`))
		if out := h.ok("edit", "deployment/web"); out != "deployment.apps/web edited\n" {
			t.Errorf("edit: %q", out)
		}
		d, _ := h.cs.Deployments.Namespace("team").Get(ctx, "web", metav1.GetOptions{})
		if *d.Spec.Replicas != 7 {
			t.Errorf("replicas after edit = %d", *d.Spec.Replicas)
		}
		t.Setenv("KUBE_EDITOR", "true")
		_, errOut, code := h.run("edit", "deployment/web")
		if code != 0 || !strings.Contains(errOut, "Edit cancelled, no changes made.") {
			t.Errorf("unchanged edit: %d %q", code, errOut)
		}
		// An invalid edit reopens the editor with the error; fixing it
		// saves.
		seen := filepath.Join(dir, "seen")
		t.Setenv("KUBE_EDITOR", script("twice.sh", `if [ ! -f `+seen+` ]; then
  touch `+seen+`
  sed -i 's/replicas: 7/replicas: -3/' "$1"
else
  cp "$1" `+seen+`
  sed -i 's/replicas: -3/replicas: 6/' "$1"
fi`))
		if out := h.ok("edit", "deployment/web"); out != "deployment.apps/web edited\n" {
			t.Errorf("edit after fix: %q", out)
		}
		second, _ := os.ReadFile(seen)
		wantContains(t, "reopened file", string(second), "# Error from server (Invalid)", "spec.replicas: Invalid value: -3")
		d, _ = h.cs.Deployments.Namespace("team").Get(ctx, "web", metav1.GetOptions{})
		if *d.Spec.Replicas != 6 {
			t.Errorf("replicas after fixed edit = %d", *d.Spec.Replicas)
		}
		// An unknown field is caught before the server, with its name.
		t.Setenv("KUBE_EDITOR", script("typo.sh", `sed -i 's/^  replicas: 6/  replicaz: 6/' "$1"`))
		errOut = h.fails("edit", "deployment/web")
		wantContains(t, "typo", errOut, "spec.replicaz: unknown field", "Your edited copy is in")
		// Someone else changes the object during the edit: the edit is
		// refused instead of undoing their change.
		t.Setenv("KUBE_EDITOR", script("slow.sh", `sed -i 's/replicas: 6/replicas: 9/' "$1"`))
		afterEditorHook = func() {
			d, _ := h.cs.Deployments.Namespace("team").Get(ctx, "web", metav1.GetOptions{})
			d.Labels["changed-by"] = "someone-else"
			if _, err := h.cs.Deployments.Namespace("team").Update(ctx, d, metav1.UpdateOptions{}); err != nil {
				t.Error(err)
			}
		}
		defer func() { afterEditorHook = nil }()
		errOut = h.fails("edit", "deployment/web")
		wantContains(t, "conflict", errOut, "was changed by someone else while you edited it", "Your edited copy is in")
		d, _ = h.cs.Deployments.Namespace("team").Get(ctx, "web", metav1.GetOptions{})
		if *d.Spec.Replicas != 6 || d.Labels["changed-by"] != "someone-else" {
			t.Errorf("after conflicting edit: replicas %d labels %v", *d.Spec.Replicas, d.Labels)
		}
	})
}
