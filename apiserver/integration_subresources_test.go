package apiserver_test

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/minik8s/minik8s/apiserver/apiservertest"
)

// TestIntegrationGenerationAndStatus checks metadata.generation and the
// spec/status split of the status subresource on a Deployment: generation
// counts spec changes only; /status writes ignore spec, main writes ignore
// status.
func TestIntegrationGenerationAndStatus(t *testing.T) {
	s := apiservertest.Start(t)
	itBodyEncodings(t, s, func(t *testing.T, cs *kubernetes.Clientset, sfx string) {
		ctx := itCtx(t)
		deps := cs.AppsV1().Deployments("default")
		d, err := deps.Create(ctx, itDeployment("gen-"+sfx, 1, "gen"), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if d.Generation != 1 {
			t.Fatalf("new deployment: generation %d, want 1", d.Generation)
		}

		d.Spec.Replicas = itPtr(int32(4))
		d, err = deps.Update(ctx, d, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if d.Generation != 2 {
			t.Fatalf("after spec change: generation %d, want 2", d.Generation)
		}

		d.Labels = map[string]string{"tier": "frontend"}
		d, err = deps.Update(ctx, d, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if d.Generation != 2 || d.Labels["tier"] != "frontend" {
			t.Fatalf("after label change: generation %d labels %v, want 2 and tier=frontend", d.Generation, d.Labels)
		}

		// Status write: the status sticks, the spec change sent along with
		// it is ignored, generation stays.
		rvBefore := d.ResourceVersion
		d.Status.Replicas, d.Status.ObservedGeneration = 4, 2
		d.Spec.Replicas = itPtr(int32(9))
		d, err = deps.UpdateStatus(ctx, d, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if d.Status.Replicas != 4 || d.Status.ObservedGeneration != 2 {
			t.Errorf("status write: status %+v not stored", d.Status)
		}
		if *d.Spec.Replicas != 4 {
			t.Errorf("status write changed spec.replicas to %d", *d.Spec.Replicas)
		}
		if d.Generation != 2 {
			t.Errorf("status write: generation %d, want 2", d.Generation)
		}
		if d.ResourceVersion == rvBefore {
			t.Errorf("status write did not change resourceVersion")
		}

		// Main write: the status sent along is ignored.
		d.Status.Replicas = 100
		d.Spec.Replicas = itPtr(int32(5))
		d, err = deps.Update(ctx, d, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if d.Status.Replicas != 4 {
			t.Errorf("main update changed status.replicas to %d", d.Status.Replicas)
		}
		if *d.Spec.Replicas != 5 || d.Generation != 3 {
			t.Errorf("main update: replicas %d generation %d, want 5 and 3", *d.Spec.Replicas, d.Generation)
		}

		// Status given on create is dropped.
		d2 := itDeployment("gen2-"+sfx, 1, "gen")
		d2.Status.Replicas = 7
		d2, err = deps.Create(ctx, d2, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if d2.Status.Replicas != 0 {
			t.Errorf("create kept status.replicas %d", d2.Status.Replicas)
		}

		// Pod status: phase through /status, labels sent to /status ignored.
		pods := cs.CoreV1().Pods("default")
		p, err := pods.Create(ctx, itPod("status-"+sfx, nil), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Status.Phase != corev1.PodPending {
			t.Errorf("new pod phase %q, want Pending", p.Status.Phase)
		}
		p.Status.Phase = corev1.PodRunning
		p.Labels = map[string]string{"sneaky": "yes"}
		p, err = pods.UpdateStatus(ctx, p, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Status.Phase != corev1.PodRunning || p.Labels["sneaky"] != "" {
			t.Errorf("pod status write: phase %q labels %v", p.Status.Phase, p.Labels)
		}
	})
}

// TestIntegrationScaleSubresource reads and writes autoscaling/v1 Scale for
// deployments and replicasets with client-go's GetScale/UpdateScale.
func TestIntegrationScaleSubresource(t *testing.T) {
	s := apiservertest.Start(t)
	itBodyEncodings(t, s, func(t *testing.T, cs *kubernetes.Clientset, sfx string) {
		ctx := itCtx(t)
		deps := cs.AppsV1().Deployments("default")
		rss := cs.AppsV1().ReplicaSets("default")
		if _, err := deps.Create(ctx, itDeployment("scale-"+sfx, 2, "scale"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := rss.Create(ctx, itReplicaSet("scale-"+sfx, 2, "scale"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		type scaler struct {
			kind   string
			get    func() (*autoscalingv1.Scale, error)
			update func(*autoscalingv1.Scale) (*autoscalingv1.Scale, error)
			spec   func() (int32, int64, error)
		}
		name := "scale-" + sfx
		for _, sc := range []scaler{
			{"Deployment",
				func() (*autoscalingv1.Scale, error) { return deps.GetScale(ctx, name, metav1.GetOptions{}) },
				func(s *autoscalingv1.Scale) (*autoscalingv1.Scale, error) {
					return deps.UpdateScale(ctx, name, s, metav1.UpdateOptions{})
				},
				func() (int32, int64, error) {
					d, err := deps.Get(ctx, name, metav1.GetOptions{})
					if err != nil {
						return 0, 0, err
					}
					return *d.Spec.Replicas, d.Generation, nil
				}},
			{"ReplicaSet",
				func() (*autoscalingv1.Scale, error) { return rss.GetScale(ctx, name, metav1.GetOptions{}) },
				func(s *autoscalingv1.Scale) (*autoscalingv1.Scale, error) {
					return rss.UpdateScale(ctx, name, s, metav1.UpdateOptions{})
				},
				func() (int32, int64, error) {
					r, err := rss.Get(ctx, name, metav1.GetOptions{})
					if err != nil {
						return 0, 0, err
					}
					return *r.Spec.Replicas, r.Generation, nil
				}},
		} {
			t.Run(sc.kind, func(t *testing.T) {
				scale, err := sc.get()
				if err != nil {
					t.Fatal(err)
				}
				if scale.Spec.Replicas != 2 || scale.Name != name || scale.Status.Selector != "app=scale" {
					t.Fatalf("scale: %+v", scale)
				}
				stale := scale.DeepCopy()
				scale.Spec.Replicas = 5
				out, err := sc.update(scale)
				if err != nil {
					t.Fatal(err)
				}
				if out.Spec.Replicas != 5 {
					t.Errorf("update scale returned replicas %d", out.Spec.Replicas)
				}
				replicas, gen, err := sc.spec()
				if err != nil {
					t.Fatal(err)
				}
				if replicas != 5 || gen != 2 {
					t.Errorf("after scale: spec.replicas %d generation %d, want 5 and 2", replicas, gen)
				}
				// The Scale's resourceVersion guards the write.
				stale.Spec.Replicas = 7
				_, err = sc.update(stale)
				itWantStatus(t, err, 409, metav1.StatusReasonConflict)
				stale.Spec.Replicas = -1
				stale.ResourceVersion = ""
				_, err = sc.update(stale)
				itWantStatus(t, err, 422, metav1.StatusReasonInvalid)
				if replicas, _, _ := sc.spec(); replicas != 5 {
					t.Errorf("rejected scale writes changed replicas to %d", replicas)
				}
			})
		}
		// Kinds without a scale subresource answer 404/405, not 500.
		_, err := cs.CoreV1().RESTClient().Get().Namespace("default").Resource("configmaps").Name("x").SubResource("scale").DoRaw(ctx)
		if st := itStatus(t, err); st.Code >= 500 {
			t.Errorf("configmaps/scale: %d %s", st.Code, st.Message)
		}
	})
}

// TestIntegrationPodBinding binds pods with client-go's Bind.
func TestIntegrationPodBinding(t *testing.T) {
	s := apiservertest.Start(t)
	itBodyEncodings(t, s, func(t *testing.T, cs *kubernetes.Clientset, sfx string) {
		ctx := itCtx(t)
		pods := cs.CoreV1().Pods("default")
		name := "bind-" + sfx
		if _, err := pods.Create(ctx, itPod(name, nil), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		b := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: name},
			Target: corev1.ObjectReference{Kind: "Node", Name: "node-1"}}
		if err := pods.Bind(ctx, b, metav1.CreateOptions{}); err != nil {
			t.Fatalf("bind: %v", err)
		}
		p, err := pods.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Spec.NodeName != "node-1" {
			t.Errorf("nodeName %q after bind", p.Spec.NodeName)
		}
		found := false
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled {
				found = c.Status == corev1.ConditionTrue
			}
		}
		if !found {
			t.Errorf("no PodScheduled=True condition after bind: %+v", p.Status.Conditions)
		}
		b.Target.Name = "node-2"
		err = pods.Bind(ctx, b, metav1.CreateOptions{})
		itWantStatus(t, err, 409, metav1.StatusReasonConflict)
		if p, _ := pods.Get(ctx, name, metav1.GetOptions{}); p.Spec.NodeName != "node-1" {
			t.Errorf("second bind moved the pod to %q", p.Spec.NodeName)
		}
		// nodeName is immutable through a normal update.
		p.Spec.NodeName = "node-3"
		_, err = pods.Update(ctx, p, metav1.UpdateOptions{})
		itWantStatus(t, err, 422, metav1.StatusReasonInvalid)
		// Binding a pod that does not exist.
		b.Name = "missing-" + sfx
		err = pods.Bind(ctx, b, metav1.CreateOptions{})
		itWantStatus(t, err, 404, metav1.StatusReasonNotFound)
	})
}

// TestIntegrationListSelectorsAndPaging covers label and field selectors,
// paging with limit/continue, and deletecollection.
func TestIntegrationListSelectorsAndPaging(t *testing.T) {
	s := apiservertest.Start(t)
	cs := itClientset(t, s, false)
	ctx := itCtx(t)
	itNamespace(t, cs, "sel-a")
	itNamespace(t, cs, "sel-b")
	for i, spec := range []struct{ ns, name, app, node string }{
		{"sel-a", "web-1", "web", "node-1"},
		{"sel-a", "web-2", "web", "node-2"},
		{"sel-a", "db-1", "db", "node-1"},
		{"sel-b", "web-1", "web", ""},
		{"sel-b", "cache-1", "cache", "node-2"},
	} {
		p := itPod(spec.name, map[string]string{"app": spec.app, "idx": fmt.Sprint(i)})
		p.Spec.NodeName = spec.node
		if _, err := cs.CoreV1().Pods(spec.ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// One running pod.
	p, err := cs.CoreV1().Pods("sel-a").Get(ctx, "db-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Status.Phase = corev1.PodRunning
	if _, err := cs.CoreV1().Pods("sel-a").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	podNames := func(ns string, opts metav1.ListOptions) []string {
		t.Helper()
		l, err := cs.CoreV1().Pods(ns).List(ctx, opts)
		if err != nil {
			t.Fatalf("list %s %+v: %v", ns, opts, err)
		}
		var out []string
		for _, p := range l.Items {
			out = append(out, p.Namespace+"/"+p.Name)
		}
		sort.Strings(out)
		return out
	}
	for _, tc := range []struct {
		ns   string
		opts metav1.ListOptions
		want []string
	}{
		{"", metav1.ListOptions{LabelSelector: "app=web"}, []string{"sel-a/web-1", "sel-a/web-2", "sel-b/web-1"}},
		{"sel-a", metav1.ListOptions{LabelSelector: "app in (web,db),idx!=0"}, []string{"sel-a/db-1", "sel-a/web-2"}},
		{"", metav1.ListOptions{LabelSelector: "app=nope"}, nil},
		{"", metav1.ListOptions{FieldSelector: "metadata.name=web-1"}, []string{"sel-a/web-1", "sel-b/web-1"}},
		{"", metav1.ListOptions{FieldSelector: "metadata.namespace=sel-b"}, []string{"sel-b/cache-1", "sel-b/web-1"}},
		{"", metav1.ListOptions{FieldSelector: "spec.nodeName=node-1"}, []string{"sel-a/db-1", "sel-a/web-1"}},
		{"", metav1.ListOptions{FieldSelector: "spec.nodeName="}, []string{"sel-b/web-1"}},
		{"", metav1.ListOptions{FieldSelector: "status.phase=Running"}, []string{"sel-a/db-1"}},
		{"", metav1.ListOptions{FieldSelector: "status.phase!=Running,spec.nodeName=node-2"}, []string{"sel-a/web-2", "sel-b/cache-1"}},
		{"sel-a", metav1.ListOptions{FieldSelector: "spec.nodeName=node-1", LabelSelector: "app=web"}, []string{"sel-a/web-1"}},
	} {
		if got := podNames(tc.ns, tc.opts); !slices.Equal(got, tc.want) {
			t.Errorf("list ns=%q label=%q field=%q: got %v, want %v", tc.ns, tc.opts.LabelSelector, tc.opts.FieldSelector, got, tc.want)
		}
	}

	_, err = cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nope=x"})
	st := itWantStatus(t, err, 400, metav1.StatusReasonBadRequest)
	if !strings.Contains(st.Message, "spec.nope") {
		t.Errorf("unsupported field selector message does not name the field: %q", st.Message)
	}
	_, err = cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: "app in (unclosed"})
	itWantStatus(t, err, 400, metav1.StatusReasonBadRequest)

	t.Run("paging", func(t *testing.T) {
		cms := cs.CoreV1().ConfigMaps("sel-a")
		var want []string
		for i := range 7 {
			n := fmt.Sprintf("page-%02d", i)
			want = append(want, n)
			if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: n}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		var got []string
		opts := metav1.ListOptions{Limit: 3}
		pages := 0
		var firstRV string
		for {
			l, err := cms.List(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			if pages == 1 {
				firstRV = l.ResourceVersion
				// Written after the first page: must not show up in the
				// later pages, which read the same snapshot.
				if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "page-99"}}, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
				if l.RemainingItemCount == nil || *l.RemainingItemCount != 4 {
					t.Errorf("first page remainingItemCount %v, want 4", l.RemainingItemCount)
				}
			} else if l.ResourceVersion != firstRV {
				t.Errorf("page %d resourceVersion %s, first page %s", pages, l.ResourceVersion, firstRV)
			}
			if len(l.Items) > 3 {
				t.Fatalf("page %d has %d items, limit 3", pages, len(l.Items))
			}
			for _, c := range l.Items {
				got = append(got, c.Name)
			}
			if l.Continue == "" {
				break
			}
			opts.Continue = l.Continue
			if pages > 10 {
				t.Fatal("paging does not end")
			}
		}
		if pages != 3 || !slices.Equal(got, want) {
			t.Errorf("paged list: %d pages %v, want 3 pages %v", pages, got, want)
		}
	})

	t.Run("deletecollection", func(t *testing.T) {
		pods := cs.CoreV1().Pods("sel-a")
		err := pods.DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: itPtr(int64(0))}, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			t.Fatal(err)
		}
		if got := podNames("sel-a", metav1.ListOptions{}); !slices.Equal(got, []string{"sel-a/db-1"}) {
			t.Errorf("after deletecollection app=web in sel-a: %v", got)
		}
		if got := podNames("sel-b", metav1.ListOptions{LabelSelector: "app=web"}); !slices.Equal(got, []string{"sel-b/web-1"}) {
			t.Errorf("deletecollection reached into another namespace: %v", got)
		}
		cms := cs.CoreV1().ConfigMaps("sel-a")
		if err := cms.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
			t.Fatal(err)
		}
		l, err := cms.List(ctx, metav1.ListOptions{})
		if err != nil || len(l.Items) != 0 {
			t.Errorf("configmaps after deletecollection: %v %v", len(l.Items), err)
		}
		if _, err := cms.Get(ctx, "page-00", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("get after deletecollection: %v", err)
		}
	})
}
