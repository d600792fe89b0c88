package ctl

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/apiserver/apiservertest"
	"github.com/minik8s/minik8s/ctl/rollout"
	"github.com/minik8s/minik8s/internal/syncbuf"
)

func TestRollout(t *testing.T) {
	s := apiservertest.Start(t)
	h := newHarness(t, s, "ro")
	ctx := context.Background()
	deps := h.cs.Deployments.Namespace("ro")

	// setStatus plays the deployment controller: the test decides what the
	// status says.
	setStatus := func(t *testing.T, name string, mutate func(d *appsv1.Deployment)) {
		t.Helper()
		d, err := deps.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		mutate(d)
		if _, err := deps.UpdateStatus(ctx, d, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("status follows the deployment until it is rolled out", func(t *testing.T) {
		h := h.at(t)
		if _, err := deps.Create(ctx, testDeployment("web", 3, "minik8s.local/web:v1"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if out := h.ok("rollout", "status", "deploy/web", "--watch=false"); out != "Waiting for deployment spec update to be observed...\n" {
			t.Errorf("not observed: %q", out)
		}
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var out, errOut syncbuf.Buffer
		done := make(chan int, 1)
		go func() {
			done <- Main(cctx, []string{"--kubeconfig", s.Kubeconfig, "-n", "ro", "rollout", "status", "deployment/web"},
				Streams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
		}()
		waitFor(t, "first status line", func() bool { return strings.Contains(out.String(), "spec update to be observed") })
		steps := []struct {
			st   appsv1.DeploymentStatus
			want string
		}{
			{appsv1.DeploymentStatus{Replicas: 1, UpdatedReplicas: 1}, `1 out of 3 new replicas have been updated`},
			{appsv1.DeploymentStatus{Replicas: 4, UpdatedReplicas: 3, ReadyReplicas: 3, AvailableReplicas: 2}, `1 old replicas are pending termination`},
			{appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 3, AvailableReplicas: 2}, `2 of 3 updated replicas are available`},
			{appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3, ReadyReplicas: 3}, `deployment "web" successfully rolled out`},
		}
		for _, st := range steps {
			setStatus(t, "web", func(d *appsv1.Deployment) {
				st.st.ObservedGeneration = d.Generation
				d.Status = st.st
			})
			waitFor(t, st.want, func() bool { return strings.Contains(out.String(), st.want) })
		}
		if code := <-done; code != 0 {
			t.Errorf("rollout status exit %d: %s", code, errOut.String())
		}
		want := "Waiting for deployment spec update to be observed...\n" +
			"Waiting for deployment \"web\" rollout to finish: 1 out of 3 new replicas have been updated...\n" +
			"Waiting for deployment \"web\" rollout to finish: 1 old replicas are pending termination...\n" +
			"Waiting for deployment \"web\" rollout to finish: 2 of 3 updated replicas are available...\n" +
			"deployment \"web\" successfully rolled out\n"
		if out.String() != want {
			t.Errorf("status output:\n%s\nwant:\n%s", out.String(), want)
		}
		// Done already: returns at once.
		if out := h.ok("rollout", "status", "deploy/web"); out != "deployment \"web\" successfully rolled out\n" {
			t.Errorf("done: %q", out)
		}
		// A new spec generation is not yet observed.
		h.ok("scale", "deploy/web", "--replicas=4")
		if out := h.ok("rollout", "status", "deploy/web", "--watch=false"); out != "Waiting for deployment spec update to be observed...\n" {
			t.Errorf("after scale: %q", out)
		}
		errOut2 := h.fails("rollout", "status", "deploy/web", "--timeout=300ms")
		wantContains(t, "timeout", errOut2, "timed out after 300ms waiting for the rollout of deployment.apps/web")
	})

	t.Run("progress deadline exceeded fails", func(t *testing.T) {
		h := h.at(t)
		if _, err := deps.Create(ctx, testDeployment("stuck", 2, "minik8s.local/web:v9"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		setStatus(t, "stuck", func(d *appsv1.Deployment) {
			d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 2, UpdatedReplicas: 1,
				Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse,
					Reason: rollout.ProgressDeadlineExceeded, Message: `ReplicaSet "stuck-1" has timed out progressing.`}}}
		})
		wantContains(t, "deadline", h.fails("rollout", "status", "deploy/stuck"), `error: deployment "stuck" exceeded its progress deadline`)
		wantContains(t, "revision", h.fails("rollout", "status", "deploy/stuck", "--revision=4"), "desired revision (4) is different from the running revision (0)")
		wantContains(t, "not a deployment", h.fails("rollout", "status", "svc/kubernetes", "-n", "default"), "rollout works on deployments only")
	})

	t.Run("history and undo read the deployment's replica sets", func(t *testing.T) {
		h := h.at(t)
		d, err := deps.Create(ctx, testDeployment("app", 1, "minik8s.local/web:v3"), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if out := h.ok("rollout", "history", "deploy/app"); out != "No rollout history found for deployment.apps/app.\n" {
			t.Errorf("empty history: %q", out)
		}
		// The ReplicaSets the deployment controller would have made.
		for i, img := range []string{"v1", "v2", "v3"} {
			rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "app-" + img, Labels: map[string]string{"app": "app"},
				Annotations:     map[string]string{appsv1.RevisionAnnotation: []string{"1", "2", "3"}[i]},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "app", UID: d.UID, Controller: boolp(true)}}},
				Spec: appsv1.ReplicaSetSpec{Replicas: int32p(0), Selector: d.Spec.Selector, Template: *d.Spec.Template.DeepCopy()}}
			rs.Spec.Template.Labels = map[string]string{"app": "app", "pod-template-hash": img}
			rs.Spec.Template.Spec.Containers[0].Image = "minik8s.local/web:" + img
			if img == "v2" {
				rs.Annotations[rollout.ChangeCauseAnnotation] = "ctl set image deployment/app app=minik8s.local/web:v2"
			}
			if _, err := h.cs.ReplicaSets.Namespace("ro").Create(ctx, rs, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		d.Annotations = map[string]string{appsv1.RevisionAnnotation: "3"}
		if _, err := deps.Update(ctx, d, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		want := "deployment.apps/app\nREVISION   CHANGE-CAUSE\n1          <none>\n2          ctl set image deployment/app app=minik8s.local/web:v2\n3          <none>\n"
		if out := h.ok("rollout", "history", "deployment/app"); out != want {
			t.Errorf("history:\n%s\nwant:\n%s", out, want)
		}
		rev := h.ok("rollout", "history", "deployment/app", "--revision=2")
		wantContains(t, "revision 2", rev, "deployment.apps/app with revision #2", "Pod Template:", "Image:", "minik8s.local/web:v2")
		if strings.Contains(rev, "pod-template-hash") {
			t.Errorf("revision template shows the hash label:\n%s", rev)
		}
		wantContains(t, "missing revision", h.fails("rollout", "history", "deployment/app", "--revision=9"), "unable to find the specified revision 9")

		image := func() string {
			d, err := deps.Get(ctx, "app", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return d.Spec.Template.Spec.Containers[0].Image
		}
		if out := h.ok("rollout", "undo", "deployment/app", "--dry-run=server"); out != "deployment.apps/app rolled back (server dry run)\n" || image() != "minik8s.local/web:v3" {
			t.Errorf("undo dry run: %q, image %s", out, image())
		}
		if out := h.ok("rollout", "undo", "deployment/app"); out != "deployment.apps/app rolled back\n" {
			t.Errorf("undo: %q", out)
		}
		if img := image(); img != "minik8s.local/web:v2" {
			t.Errorf("after undo image = %s, want the previous revision's v2", img)
		}
		d, _ = deps.Get(ctx, "app", metav1.GetOptions{})
		if d.Annotations[rollout.ChangeCauseAnnotation] == "" || d.Spec.Template.Labels["pod-template-hash"] != "" {
			t.Errorf("after undo: annotations %v, template labels %v", d.Annotations, d.Spec.Template.Labels)
		}
		h.ok("rollout", "undo", "deployment/app", "--to-revision=1")
		if img := image(); img != "minik8s.local/web:v1" {
			t.Errorf("after undo --to-revision=1 image = %s", img)
		}
		if out := h.ok("rollout", "undo", "deployment/app", "--to-revision=1"); out != "deployment.apps/app skipped rollback (current template already matches revision 1)\n" {
			t.Errorf("undo to the current template: %q", out)
		}
		wantContains(t, "undo missing", h.fails("rollout", "undo", "deployment/app", "--to-revision=7"), "unable to find the specified revision 7")
	})

	t.Run("pause, resume, restart", func(t *testing.T) {
		h := h.at(t)
		if out := h.ok("rollout", "pause", "deployment/app"); out != "deployment.apps/app paused\n" {
			t.Errorf("pause: %q", out)
		}
		d, _ := deps.Get(ctx, "app", metav1.GetOptions{})
		if !d.Spec.Paused {
			t.Error("not paused")
		}
		wantContains(t, "pause twice", h.fails("rollout", "pause", "deployment/app"), `deployments.apps "app" is already paused`)
		wantContains(t, "undo paused", h.fails("rollout", "undo", "deployment/app"), "cannot roll back a paused deployment", "ctl rollout resume deployment.apps/app")
		wantContains(t, "restart paused", h.fails("rollout", "restart", "deployment/app"), "can't restart paused")
		if out := h.ok("rollout", "resume", "deployment/app"); out != "deployment.apps/app resumed\n" {
			t.Errorf("resume: %q", out)
		}
		wantContains(t, "resume twice", h.fails("rollout", "resume", "deployment/app"), "is already not paused")
		before, _ := deps.Get(ctx, "app", metav1.GetOptions{})
		if out := h.ok("rollout", "restart", "deployment/app"); out != "deployment.apps/app restarted\n" {
			t.Errorf("restart: %q", out)
		}
		d, _ = deps.Get(ctx, "app", metav1.GetOptions{})
		if d.Spec.Template.Annotations[rollout.RestartedAtAnnotation] == "" || d.Generation == before.Generation {
			t.Errorf("restart: template annotations %v, generation %d -> %d", d.Spec.Template.Annotations, before.Generation, d.Generation)
		}
	})
}
