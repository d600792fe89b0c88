package apiserver_test

import (
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/minik8s/minik8s/apiserver/apiservertest"
)

// TestIntegrationWriteSemantics covers smaller Kubernetes write rules:
// no-op updates, racing creates, immutable ConfigMaps, dry runs, status
// and scale patches, and the legacy bindings endpoint.
func TestIntegrationWriteSemantics(t *testing.T) {
	s := apiservertest.Start(t)
	cs := itClientset(t, s, false)
	ctx := itCtx(t)
	cms := cs.CoreV1().ConfigMaps("default")
	pods := cs.CoreV1().Pods("default")

	t.Run("no-op update keeps resourceVersion", func(t *testing.T) {
		cm, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "noop"}, Data: map[string]string{"a": "1"}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		head := itEtcdHead(t, s)
		again, err := cms.Update(ctx, cm, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if again.ResourceVersion != cm.ResourceVersion {
			t.Errorf("unchanged update moved resourceVersion %s -> %s", cm.ResourceVersion, again.ResourceVersion)
		}
		if _, err := cms.Patch(ctx, "noop", types.MergePatchType, []byte(`{"data":{"a":"1"}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		if h := itEtcdHead(t, s); h != head {
			t.Errorf("no-op writes changed the etcd revision %d -> %d", head, h)
		}
	})

	t.Run("racing creates", func(t *testing.T) {
		const n = 10
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "race"},
					Data: map[string]string{"winner": fmt.Sprint(i)}}, metav1.CreateOptions{})
			}()
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case apierrors.IsAlreadyExists(err):
			default:
				t.Errorf("racing create: %v", err)
			}
		}
		if won != 1 {
			t.Errorf("%d of %d racing creates of one name succeeded, want 1", won, n)
		}
	})

	t.Run("immutable configmap", func(t *testing.T) {
		cm, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "frozen"}, Data: map[string]string{"a": "1"},
			Immutable: itPtr(true)}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cm.Data["a"] = "2"
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
		st := itWantStatus(t, err, 422, metav1.StatusReasonInvalid)
		itWantField(t, st, "data")
		cm.Data["a"] = "1"
		cm.Labels = map[string]string{"metadata": "may-change"}
		if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			t.Errorf("metadata change of an immutable configmap: %v", err)
		}
	})

	t.Run("dry run", func(t *testing.T) {
		head := itEtcdHead(t, s)
		dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
		out, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "dry"}}, dry)
		if err != nil {
			t.Fatal(err)
		}
		if out.Name != "dry" || out.UID == "" {
			t.Errorf("dry-run create answer: %+v", out.ObjectMeta)
		}
		_, err = cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "Bad_Name"}}, dry)
		itWantStatus(t, err, 422, metav1.StatusReasonInvalid)
		// A taken name fails the dry run as it fails the real create.
		_, err = cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "noop"}}, dry)
		itWantStatus(t, err, 409, metav1.StatusReasonAlreadyExists)
		if _, err := cs.CoreV1().Services("default").Create(ctx, itService("dry-svc"), dry); err != nil {
			t.Fatal(err)
		}
		cm, err := cms.Get(ctx, "noop", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cm.Data["a"] = "dry"
		if out, err := cms.Update(ctx, cm, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil || out.Data["a"] != "dry" {
			t.Errorf("dry-run update: %v %v", out, err)
		}
		if err := cms.Delete(ctx, "noop", metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
			t.Fatal(err)
		}
		if err := cms.DeleteCollection(ctx, metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}}, metav1.ListOptions{}); err != nil {
			t.Fatal(err)
		}
		err = cms.Delete(ctx, "noop", metav1.DeleteOptions{DryRun: []string{"Some"}})
		itWantStatus(t, err, 400, metav1.StatusReasonBadRequest)
		if h := itEtcdHead(t, s); h != head {
			t.Errorf("dry runs wrote to etcd: revision %d -> %d", head, h)
		}
		if _, err := cms.Get(ctx, "dry", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("dry-run create stored the object: %v", err)
		}
		if cm, err := cms.Get(ctx, "noop", metav1.GetOptions{}); err != nil || cm.Data["a"] != "1" {
			t.Errorf("dry-run update/delete changed the object: %v %v", cm, err)
		}
	})

	t.Run("status patch", func(t *testing.T) {
		if _, err := pods.Create(ctx, itPod("status-patch", nil), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// What a kubelet sends: a strategic merge patch of status, plus a
		// spec change that /status must ignore.
		p, err := pods.Patch(ctx, "status-patch", types.StrategicMergePatchType,
			[]byte(`{"status":{"phase":"Running","podIP":"10.244.1.7","conditions":[{"type":"Ready","status":"True"}]},"spec":{"activeDeadlineSeconds":5}}`),
			metav1.PatchOptions{}, "status")
		if err != nil {
			t.Fatal(err)
		}
		if p.Status.Phase != corev1.PodRunning || p.Status.PodIP != "10.244.1.7" || len(p.Status.Conditions) != 1 {
			t.Errorf("status after patch: %+v", p.Status)
		}
		if p.Spec.ActiveDeadlineSeconds != nil {
			t.Errorf("status patch changed the spec")
		}
		// A main-resource patch cannot change status.
		p, err = pods.Patch(ctx, "status-patch", types.MergePatchType, []byte(`{"status":{"phase":"Failed"}}`), metav1.PatchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Status.Phase != corev1.PodRunning {
			t.Errorf("main patch changed status.phase to %q", p.Status.Phase)
		}
	})

	t.Run("scale patch", func(t *testing.T) {
		deps := cs.AppsV1().Deployments("default")
		if _, err := deps.Create(ctx, itDeployment("scale-patch", 1, "sp"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		out, err := cs.AppsV1().RESTClient().Patch(types.MergePatchType).Namespace("default").Resource("deployments").
			Name("scale-patch").SubResource("scale").Body([]byte(`{"spec":{"replicas":6}}`)).Do(ctx).Get()
		if err != nil {
			t.Fatal(err)
		}
		if sc, ok := out.(*autoscalingv1.Scale); !ok || sc.Spec.Replicas != 6 {
			t.Errorf("scale patch answer %T %+v", out, out)
		}
		d, err := deps.Get(ctx, "scale-patch", metav1.GetOptions{})
		if err != nil || *d.Spec.Replicas != 6 {
			t.Errorf("after scale patch: %v %v", d.Spec.Replicas, err)
		}
	})

	t.Run("legacy bindings endpoint", func(t *testing.T) {
		if _, err := pods.Create(ctx, itPod("legacy-bind", nil), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		c := newClient(t, s)
		code, body := c.do("POST", "/api/v1/namespaces/default/bindings", "application/json",
			`{"apiVersion":"v1","kind":"Binding","metadata":{"name":"legacy-bind"},"target":{"kind":"Node","name":"node-9"}}`)
		if code != 201 {
			t.Fatalf("POST bindings: %d %v", code, body)
		}
		p, err := pods.Get(ctx, "legacy-bind", metav1.GetOptions{})
		if err != nil || p.Spec.NodeName != "node-9" {
			t.Errorf("after legacy binding: %q %v", p.Spec.NodeName, err)
		}
		code, body = c.do("POST", "/api/v1/namespaces/default/bindings", "application/json",
			`{"apiVersion":"v1","kind":"Binding","metadata":{"name":"legacy-bind"},"target":{"kind":"Node","name":"node-8"}}`)
		if code != 409 {
			t.Errorf("second legacy binding: %d %v, want 409", code, body)
		}
		code, body = c.do("POST", "/api/v1/namespaces/default/pods/legacy-bind/binding", "application/json",
			`{"apiVersion":"v1","kind":"Binding","metadata":{"name":"other-pod"},"target":{"kind":"Node","name":"node-8"}}`)
		if code != 400 {
			t.Errorf("binding naming another pod: %d %v, want 400", code, body)
		}
	})
}

// TestIntegrationListSemantics covers paging through a filtered list,
// resourceVersion on lists and watch timeouts.
func TestIntegrationListSemantics(t *testing.T) {
	s := apiservertest.Start(t)
	cs := itClientset(t, s, false)
	ctx := itCtx(t)
	itNamespace(t, cs, "paging")
	cms := cs.CoreV1().ConfigMaps("paging")
	var want []string
	for i := range 20 {
		labels := map[string]string{}
		if i%6 == 1 {
			labels["pick"] = "yes"
			want = append(want, fmt.Sprintf("cm-%02d", i))
		}
		if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%02d", i), Labels: labels}},
			metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("filtered paging", func(t *testing.T) {
		var got []string
		opts := metav1.ListOptions{LabelSelector: "pick=yes", Limit: 2}
		for pages := 0; ; pages++ {
			if pages > 20 {
				t.Fatal("paging does not end")
			}
			l, err := cms.List(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(l.Items) > 2 {
				t.Fatalf("page with %d items, limit 2", len(l.Items))
			}
			for _, c := range l.Items {
				got = append(got, c.Name)
			}
			if l.Continue == "" {
				break
			}
			opts.Continue = l.Continue
		}
		if !slices.Equal(got, want) {
			t.Errorf("filtered paged list %v, want %v", got, want)
		}
	})

	t.Run("resourceVersion=0 list", func(t *testing.T) {
		l, err := cms.List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			t.Fatal(err)
		}
		if itRV(t, l.ResourceVersion) <= 0 {
			t.Errorf("list rv %q", l.ResourceVersion)
		}
		var names []string
		for _, c := range l.Items {
			names = append(names, c.Name)
		}
		sort.Strings(names)
		if len(names) > 20 {
			t.Errorf("rv=0 list has %d items, want at most 20", len(names))
		}
	})

	t.Run("resourceVersion too new", func(t *testing.T) {
		future := fmt.Sprint(itEtcdHead(t, s) + 1000)
		_, err := cms.List(ctx, metav1.ListOptions{ResourceVersion: future})
		st := itStatus(t, err)
		if st.Code != 504 || st.Reason != metav1.StatusReasonTimeout {
			t.Errorf("list at a future resourceVersion: %d %s %q, want 504 Timeout", st.Code, st.Reason, st.Message)
		}
		if st.Details == nil || len(st.Details.Causes) == 0 || st.Details.Causes[0].Type != metav1.CauseTypeResourceVersionTooLarge {
			t.Errorf("no ResourceVersionTooLarge cause: %+v", st.Details)
		}
	})

	t.Run("resourceVersion not older than", func(t *testing.T) {
		cm, err := cms.Get(ctx, "cm-00", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		l, err := cms.List(ctx, metav1.ListOptions{ResourceVersion: cm.ResourceVersion})
		if err != nil {
			t.Fatal(err)
		}
		if itRV(t, l.ResourceVersion) < itRV(t, cm.ResourceVersion) || len(l.Items) != 20 {
			t.Errorf("list at rv %s: rv %s with %d items", cm.ResourceVersion, l.ResourceVersion, len(l.Items))
		}
	})

	t.Run("watch timeoutSeconds", func(t *testing.T) {
		w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: "0", TimeoutSeconds: itPtr(int64(1))})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		n := 0
		deadline := time.After(30 * time.Second)
		for {
			select {
			case ev, ok := <-w.ResultChan():
				if !ok {
					if n != 20 {
						t.Errorf("watch ended after %d events, want the 20 initial ones", n)
					}
					return
				}
				if ev.Type != "ADDED" {
					t.Errorf("unexpected %s event", ev.Type)
				}
				n++
			case <-deadline:
				t.Fatal("watch with timeoutSeconds=1 still open after 30s")
			}
		}
	})
}
