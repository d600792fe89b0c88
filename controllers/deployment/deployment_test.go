package deployment_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/controllers/deployment"
	"github.com/minik8s/minik8s/controllers/internal/testenv"
)

const (
	v1 = "minik8s.local/web:v1"
	v2 = "minik8s.local/web:v2"
	v3 = "minik8s.local/web:v3"
)

// TestRollingUpdateBounds rolls 10 replicas from v1 to v2 and checks at
// every pod watch event that no more than replicas+maxSurge pods exist
// (terminating ones excluded) and no fewer than replicas-maxUnavailable
// are ready.
func TestRollingUpdateBounds(t *testing.T) {
	e, k := start(t)
	k.ReadyDelay = 300 * time.Millisecond // each new pod takes a moment
	k.Run()
	for _, tc := range []struct {
		name                   string
		surge, unavailable     intstr.IntOrString
		wantSurge, wantUnavail int
	}{
		{"absolute", intstr.FromInt32(3), intstr.FromInt32(2), 3, 2},
		{"percent", intstr.FromString("25%"), intstr.FromString("25%"), 3, 2}, // 2.5 rounds up and down
		{"no surge", intstr.FromInt32(0), intstr.FromString("10%"), 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := e.Namespace("rolling-" + tc.name[:2])
			d := newDeployment("web", 10, v1)
			d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxSurge: &tc.surge, MaxUnavailable: &tc.unavailable}
			create(t, e, ns, d)
			waitComplete(t, e, ns, "web", v1)

			maxLive, minReady := 0, 10
			pw := watchPods(t, e, ns, func(pods map[string]*corev1.Pod) string {
				live, ready := imageCounts(pods)
				maxLive, minReady = max(maxLive, sum(live)), min(minReady, sum(ready))
				switch {
				case sum(live) > 10+tc.wantSurge:
					return fmt.Sprintf("%d pods (%v) > replicas+maxSurge = %d", sum(live), live, 10+tc.wantSurge)
				case sum(ready) < 10-tc.wantUnavail:
					return fmt.Sprintf("%d ready (%v) < replicas-maxUnavailable = %d", sum(ready), ready, 10-tc.wantUnavail)
				}
				return ""
			})
			update(t, e, ns, "web", setImage(v2))
			got := waitComplete(t, e, ns, "web", v2)
			pw.finish(t)
			if tc.wantSurge > 0 && maxLive <= 10 {
				t.Errorf("never surged above 10 pods (max %d): the bound was not exercised", maxLive)
			}
			t.Logf("max pods %d, min ready %d", maxLive, minReady)

			rss, err := replicaSets(e, ns)
			if err != nil || len(rss) != 2 {
				t.Fatalf("replica sets: %d, %v", len(rss), err)
			}
			old, cur := rss[0], rss[1]
			if deployment.Revision(&old) != 1 || deployment.Revision(&cur) != 2 || got.Annotations[appsv1.RevisionAnnotation] != "2" {
				t.Errorf("revisions: old %d, new %d, deployment %q", deployment.Revision(&old), deployment.Revision(&cur), got.Annotations[appsv1.RevisionAnnotation])
			}
			if *old.Spec.Replicas != 0 || *cur.Spec.Replicas != 10 {
				t.Errorf("old replicas %d, new %d", *old.Spec.Replicas, *cur.Spec.Replicas)
			}
			hash := cur.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
			if hash == "" || cur.Name != "web-"+hash || cur.Spec.Selector.MatchLabels[appsv1.DefaultDeploymentUniqueLabelKey] != hash ||
				hash != deployment.TemplateHash(&got.Spec.Template, got.Status.CollisionCount) {
				t.Errorf("new replica set %s: hash label %q, selector %v", cur.Name, hash, cur.Spec.Selector.MatchLabels)
			}
			if c := condition(got, appsv1.DeploymentAvailable); c == nil || c.Status != corev1.ConditionTrue {
				t.Errorf("Available condition %+v", c)
			}
		})
	}
}

func TestRollbackRestoresOldTemplateHash(t *testing.T) {
	e, k := start(t)
	k.Run()
	ns := e.Namespace("rollback")
	create(t, e, ns, newDeployment("web", 3, v1))
	waitComplete(t, e, ns, "web", v1)
	update(t, e, ns, "web", setImage(v2))
	waitComplete(t, e, ns, "web", v2)
	rss, err := replicaSets(e, ns)
	if err != nil || len(rss) != 2 {
		t.Fatalf("replica sets: %d, %v", len(rss), err)
	}
	v1RS := rss[0]
	v1Hash := v1RS.Labels[appsv1.DefaultDeploymentUniqueLabelKey]

	// What `kubectl rollout undo` does: copy revision 1's template, minus
	// the pod-template-hash label, into the Deployment.
	update(t, e, ns, "web", func(d *appsv1.Deployment) {
		d.Spec.Template = *v1RS.Spec.Template.DeepCopy()
		delete(d.Spec.Template.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	})
	d := waitComplete(t, e, ns, "web", v1)
	rss, err = replicaSets(e, ns)
	if err != nil || len(rss) != 2 {
		t.Fatalf("after rollback: %d replica sets (want the old one reused), %v", len(rss), err)
	}
	newest := rss[1]
	if newest.Name != v1RS.Name || newest.UID != v1RS.UID || deployment.Revision(&newest) != 3 || d.Annotations[appsv1.RevisionAnnotation] != "3" {
		t.Errorf("newest replica set %s revision %d (deployment %q); want %s reused as revision 3",
			newest.Name, deployment.Revision(&newest), d.Annotations[appsv1.RevisionAnnotation], v1RS.Name)
	}
	pods, _ := activePods(e, ns, "web")
	for _, p := range pods {
		if p.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != v1Hash {
			t.Errorf("pod %s has hash %q, want %q", p.Name, p.Labels[appsv1.DefaultDeploymentUniqueLabelKey], v1Hash)
		}
	}
}

func TestRecreateNeverMixesVersions(t *testing.T) {
	e, k := start(t)
	k.ReadyDelay = 200 * time.Millisecond
	k.Run()
	ns := e.Namespace("recreate")
	d := newDeployment("web", 4, v1)
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	create(t, e, ns, d)
	waitComplete(t, e, ns, "web", v1)
	pw := watchPods(t, e, ns, func(pods map[string]*corev1.Pod) string {
		images := map[string]int{}
		for _, p := range pods { // terminating pods too: they may still run
			images[p.Spec.Containers[0].Image]++
		}
		if images[v1] > 0 && images[v2] > 0 {
			return fmt.Sprintf("v1 and v2 pods exist together: %v", images)
		}
		return ""
	})
	update(t, e, ns, "web", setImage(v2))
	waitComplete(t, e, ns, "web", v2)
	pw.finish(t)
}

func TestPauseResumeAndProportionalScaling(t *testing.T) {
	e, k := start(t)
	k.Ready = func(p *corev1.Pod) bool { return p.Spec.Containers[0].Image != v2 } // v2 never becomes ready
	k.Run()
	ns := e.Namespace("pause")
	create(t, e, ns, newDeployment("web", 10, v1)) // default 25%/25%: surge 3, unavailable 2
	waitComplete(t, e, ns, "web", v1)
	update(t, e, ns, "web", setImage(v2))

	// The rollout stalls where the budgets leave it: old 8 (available 8 =
	// 10-2), new 5 (8+5 = 10+3).
	var oldRS, newRS string
	testenv.Eventually(t, "rollout stalled at old 8 / new 5", func() (bool, error) {
		rss, err := replicaSets(e, ns)
		if err != nil || len(rss) != 2 {
			return false, err
		}
		oldRS, newRS = rss[0].Name, rss[1].Name
		return *rss[0].Spec.Replicas == 8 && *rss[1].Spec.Replicas == 5, fmt.Errorf("replicas %d/%d", *rss[0].Spec.Replicas, *rss[1].Spec.Replicas)
	})

	// Paused, scaled to 20: the 12 extra replicas (20+5 allowed - 13) are
	// spread in proportion: 8 -> 16, 5 -> 9.
	update(t, e, ns, "web", func(d *appsv1.Deployment) { d.Spec.Paused = true })
	update(t, e, ns, "web", func(d *appsv1.Deployment) { d.Spec.Replicas = ptr(int32(20)) })
	testenv.Eventually(t, "proportional scale-up", func() (bool, error) {
		rss, err := replicaSets(e, ns)
		if err != nil || len(rss) != 2 {
			return false, err
		}
		return *rss[0].Spec.Replicas == 16 && *rss[1].Spec.Replicas == 9, fmt.Errorf("replicas %s=%d %s=%d", rss[0].Name, *rss[0].Spec.Replicas, rss[1].Name, *rss[1].Spec.Replicas)
	})
	// While paused, a template change starts nothing.
	update(t, e, ns, "web", setImage(v3))
	testenv.Eventually(t, "paused deployment observed", func() (bool, error) {
		d, err := e.CS.Deployments.Namespace(ns).Get(e.Ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		c := condition(d, appsv1.DeploymentProgressing)
		return d.Status.ObservedGeneration == d.Generation && c != nil && c.Reason == deployment.ReasonPaused, nil
	})
	if rss, _ := replicaSets(e, ns); len(rss) != 2 || rss[0].Name != oldRS || rss[1].Name != newRS {
		t.Fatalf("paused deployment changed its replica sets: %d of them", len(rss))
	}

	// Resumed, it rolls out v3 (which becomes ready) to all 20.
	k.Ready = nil
	k.Resync()
	update(t, e, ns, "web", func(d *appsv1.Deployment) { d.Spec.Paused = false })
	waitComplete(t, e, ns, "web", v3)
}

func TestProgressDeadlineExceeded(t *testing.T) {
	e, k := start(t)
	k.Ready = func(p *corev1.Pod) bool { return p.Spec.Containers[0].Image != v2 }
	k.Run()
	ns := e.Namespace("deadline")
	d := newDeployment("web", 2, v1)
	d.Spec.ProgressDeadlineSeconds = ptr(int32(2))
	create(t, e, ns, d)
	waitComplete(t, e, ns, "web", v1)
	update(t, e, ns, "web", setImage(v2))
	testenv.Eventually(t, "ProgressDeadlineExceeded", func() (bool, error) {
		d, err := e.CS.Deployments.Namespace(ns).Get(e.Ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		c := condition(d, appsv1.DeploymentProgressing)
		return c != nil && c.Status == corev1.ConditionFalse && c.Reason == deployment.ReasonTimedOut, fmt.Errorf("progressing %+v", c)
	})
	// Progress again clears it.
	k.Ready = nil
	k.Resync()
	waitComplete(t, e, ns, "web", v2)
}

func TestRevisionHistoryLimit(t *testing.T) {
	e, k := start(t)
	k.Run()
	ns := e.Namespace("history")
	d := newDeployment("web", 2, v1)
	d.Spec.RevisionHistoryLimit = ptr(int32(1))
	create(t, e, ns, d)
	waitComplete(t, e, ns, "web", v1)
	for _, img := range []string{v2, v3} {
		update(t, e, ns, "web", setImage(img))
		waitComplete(t, e, ns, "web", img)
	}
	testenv.Eventually(t, "only the newest old replica set kept", func() (bool, error) {
		rss, err := replicaSets(e, ns)
		if err != nil {
			return false, err
		}
		var revs []int64
		for _, rs := range rss {
			revs = append(revs, deployment.Revision(&rs))
		}
		return slices.Equal(revs, []int64{2, 3}), fmt.Errorf("revisions %v", revs)
	})
}

func TestMinReadySeconds(t *testing.T) {
	e, k := start(t)
	k.Run()
	ns := e.Namespace("minready")
	d := newDeployment("web", 2, v1)
	d.Spec.MinReadySeconds = 2
	create(t, e, ns, d)
	sawReadyNotAvailable := false
	testenv.Eventually(t, "available after minReadySeconds", func() (bool, error) {
		d, err := e.CS.Deployments.Namespace(ns).Get(e.Ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if d.Status.ReadyReplicas == 2 && d.Status.AvailableReplicas < 2 {
			sawReadyNotAvailable = true
		}
		return d.Status.AvailableReplicas == 2, nil
	})
	if !sawReadyNotAvailable {
		t.Error("pods counted available as soon as ready, despite minReadySeconds=2")
	}
}

// TestDeleteDeploymentPropagation deletes a running Deployment in each
// propagation mode and checks what is left.
func TestDeleteDeploymentPropagation(t *testing.T) {
	e, k := start(t)
	k.Run()
	for _, policy := range []metav1.DeletionPropagation{metav1.DeletePropagationBackground, metav1.DeletePropagationForeground, metav1.DeletePropagationOrphan} {
		t.Run(string(policy), func(t *testing.T) {
			ns := e.Namespace("delete-" + strings.ToLower(string(policy)))
			create(t, e, ns, newDeployment("web", 3, v1))
			waitComplete(t, e, ns, "web", v1)
			rss, _ := replicaSets(e, ns)
			if len(rss) != 1 {
				t.Fatalf("%d replica sets", len(rss))
			}
			if err := e.CS.Deployments.Namespace(ns).Delete(e.Ctx, "web", metav1.DeleteOptions{PropagationPolicy: &policy}); err != nil {
				t.Fatal(err)
			}
			testenv.Eventually(t, "deployment gone", func() (bool, error) {
				_, err := e.CS.Deployments.Namespace(ns).Get(e.Ctx, "web", metav1.GetOptions{})
				return apierrors.IsNotFound(err), nil
			})
			if policy != metav1.DeletePropagationOrphan {
				testenv.Eventually(t, "replica sets and pods gone", func() (bool, error) {
					rss, err := replicaSets(e, ns)
					if err != nil {
						return false, err
					}
					l, err := e.CS.Pods.Namespace(ns).List(e.Ctx, metav1.ListOptions{})
					return len(rss) == 0 && len(l.Items) == 0, err
				})
				return
			}
			// Orphan: the ReplicaSet stays, owner-less, with its 3 pods.
			testenv.Eventually(t, "replica set orphaned", func() (bool, error) {
				got, err := replicaSets(e, ns)
				return err == nil && len(got) == 1 && len(got[0].OwnerReferences) == 0, err
			})
			got, _ := replicaSets(e, ns)
			pods, err := activePods(e, ns, "web")
			if err != nil || len(pods) != 3 || got[0].UID != rss[0].UID {
				t.Fatalf("after orphaning: %d pods, %v", len(pods), err)
			}
			for _, p := range pods {
				if c := metav1.GetControllerOf(&p); c == nil || c.UID != rss[0].UID {
					t.Errorf("pod %s controller %+v", p.Name, c)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestScaleCompleteDeployment(t *testing.T) {
	e, k := start(t)
	k.Run()
	ns := e.Namespace("scale")
	create(t, e, ns, newDeployment("web", 3, v1))
	waitComplete(t, e, ns, "web", v1)
	for _, n := range []int32{6, 2, 0, 4} {
		update(t, e, ns, "web", func(d *appsv1.Deployment) { d.Spec.Replicas = ptr(n) })
		testenv.Eventually(t, fmt.Sprintf("scaled to %d", n), func() (bool, error) {
			rss, err := replicaSets(e, ns)
			if err != nil || len(rss) != 1 {
				return false, err
			}
			pods, err := activePods(e, ns, "web")
			d, derr := e.CS.Deployments.Namespace(ns).Get(e.Ctx, "web", metav1.GetOptions{})
			if err != nil || derr != nil {
				return false, err
			}
			return *rss[0].Spec.Replicas == n && rss[0].Annotations[appsv1.DesiredReplicasAnnotation] == fmt.Sprint(n) &&
				len(pods) == int(n) && d.Status.AvailableReplicas == n && d.Status.ObservedGeneration == d.Generation, nil
		})
	}
}
