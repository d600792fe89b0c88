package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/spf13/cobra"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
	"github.com/minik8s/minik8s/ctl/describe"
	"github.com/minik8s/minik8s/ctl/printer"
	"github.com/minik8s/minik8s/ctl/rollout"
)

func newRolloutCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollout SUBCOMMAND",
		Short: "Manage the rollout of a resource",
		Long: `Follow and steer deployment rollouts: status waits until a rollout finishes
(or fails), history lists the revisions (one per ReplicaSet), undo goes back
to an earlier revision, restart rolls every pod anew, pause and resume stop
and continue rolling out template changes.`,
		Example: examples(`
# roll out a new image and wait for it
ctl set image deployment/web web=minik8s.local/web:v2
ctl rollout status deployment/web

# go back to the previous revision
ctl rollout history deployment/web
ctl rollout undo deployment/web`),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError(cmd, "name a subcommand: status, history, undo, restart, pause or resume")
		},
	}
	cmd.AddCommand(newRolloutStatusCommand(e), newRolloutHistoryCommand(e), newRolloutUndoCommand(e),
		newRolloutRestartCommand(e), newRolloutPauseCommand(e, true), newRolloutPauseCommand(e, false))
	return cmd
}

// deploymentTargets resolves arguments that must name deployments.
func (e *env) deploymentTargets(cmd *cobra.Command, args []string, files fileFlags, selector string) ([]target, error) {
	ts, err := e.resolveTargets(cmd.Context(), cmd, args, files, selector, "", false, false)
	if err != nil {
		return nil, err
	}
	for _, t := range ts {
		if t.m.Group != "apps" || t.m.Kind != "Deployment" {
			return nil, fmt.Errorf("%s: rollout works on deployments only (no %s support)", printer.ResourceName(t.m.GVK(), t.name), t.m.Kind)
		}
	}
	return ts, nil
}

func (e *env) getDeployment(ctx context.Context, t target) (*appsv1.Deployment, *unstructured.Unstructured, error) {
	u, err := e.getObject(ctx, t.m, t.ns, t.name)
	if err != nil {
		return nil, nil, err
	}
	d, err := toDeployment(u)
	return d, u, err
}

func toDeployment(u *unstructured.Unstructured) (*appsv1.Deployment, error) {
	d := &appsv1.Deployment{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, d); err != nil {
		return nil, fmt.Errorf("decoding deployment %s: %w", u.GetName(), err)
	}
	return d, nil
}

func newRolloutStatusCommand(e *env) *cobra.Command {
	var (
		files    fileFlags
		selector string
		watchIt  bool
		timeout  time.Duration
		revision int64
	)
	cmd := &cobra.Command{
		Use:   "status (TYPE NAME | TYPE/NAME) [flags]",
		Short: "Show the status of the rollout",
		Long: `Wait until a deployment's rollout finishes, printing its progress as it goes:
every desired replica must run the latest template and be available, and the
deployment controller must have seen the latest spec (observedGeneration).

Exits 0 when the rollout is complete, 1 if it failed - the deployment's
Progressing condition reports ProgressDeadlineExceeded - or on --timeout.
With --watch=false the current state is printed once (exit 0 either way).`,
		Example: examples(`
# wait for a rollout
ctl rollout status deployment/web

# give up after two minutes
ctl rollout status deploy/web --timeout=2m

# print the state without waiting
ctl rollout status deploy/web --watch=false`),
		ValidArgsFunction: e.completeResources,
		RunE: func(cmd *cobra.Command, args []string) error {
			ts, err := e.deploymentTargets(cmd, args, files, selector)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			for _, t := range ts {
				if err := e.rolloutStatus(ctx, t, watchIt, revision); err != nil {
					if errors.Is(err, context.DeadlineExceeded) || ctx.Err() == context.DeadlineExceeded {
						return fmt.Errorf("timed out after %v waiting for the rollout of %s to finish", timeout, printer.ResourceName(t.m.GVK(), t.name))
					}
					return err
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVarP(&files.filenames, "filename", "f", nil, "The deployments these files define")
	f.StringVarP(&selector, "selector", "l", "", "The deployments matching this label selector")
	f.BoolVarP(&watchIt, "watch", "w", true, "Wait until the rollout finishes")
	f.DurationVar(&timeout, "timeout", 0, "Give up after this long (e.g. 5m); 0 waits as long as it takes")
	f.Int64Var(&revision, "revision", 0, "Fail unless the deployment is at this revision")
	return cmd
}

func (e *env) rolloutStatus(ctx context.Context, t target, watchIt bool, revision int64) error {
	last := ""
	show := func(u *unstructured.Unstructured) (bool, error) {
		d, err := toDeployment(u)
		if err != nil {
			return false, err
		}
		msg, done, err := rollout.Status(d, revision)
		if err != nil {
			return false, err
		}
		if msg != last {
			fmt.Fprint(e.streams.Out, msg)
			last = msg
		}
		return done, nil
	}
	for {
		u, err := e.getObject(ctx, t.m, t.ns, t.name)
		if err != nil {
			return err
		}
		done, err := show(u)
		if err != nil || done || !watchIt {
			return err
		}
		w, err := e.watchObjects(ctx, t.m, t.ns, metav1.ListOptions{
			FieldSelector:   fields.OneTermEqualSelector("metadata.name", t.name).String(),
			ResourceVersion: u.GetResourceVersion(),
		}, false)
		if err != nil {
			if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
				continue
			}
			return err
		}
		done, err = func() (bool, error) {
			defer w.Stop()
			for {
				select {
				case <-ctx.Done():
					return false, ctx.Err()
				case ev, ok := <-w.ResultChan():
					if !ok {
						return false, nil // watch ended: read again and resume
					}
					switch ev.Type {
					case watch.Deleted:
						return false, fmt.Errorf("deployment %q was deleted while waiting for its rollout", t.name)
					case watch.Error:
						if st, ok := ev.Object.(*metav1.Status); ok && (st.Code == 410 || st.Reason == metav1.StatusReasonExpired) {
							return false, nil
						}
						return false, fmt.Errorf("watching deployment %q: %v", t.name, ev.Object)
					case watch.Added, watch.Modified:
						if u, ok := ev.Object.(*unstructured.Unstructured); ok {
							if done, err := show(u); err != nil || done {
								return done, err
							}
						}
					}
				}
			}
		}()
		if err != nil || done {
			return err
		}
	}
}

func newRolloutHistoryCommand(e *env) *cobra.Command {
	var (
		files    fileFlags
		selector string
		revision int64
	)
	cmd := &cobra.Command{
		Use:   "history (TYPE NAME | TYPE/NAME) [flags]",
		Short: "View rollout history",
		Long: `List a deployment's revisions: one per ReplicaSet it controls, numbered by their
deployment.kubernetes.io/revision annotation, with the kubernetes.io/change-cause
annotation as the reason. --revision=N shows that revision's pod template.`,
		Example: examples(`
ctl rollout history deployment/web
ctl rollout history deployment/web --revision=3`),
		ValidArgsFunction: e.completeResources,
		RunE: func(cmd *cobra.Command, args []string) error {
			ts, err := e.deploymentTargets(cmd, args, files, selector)
			if err != nil {
				return err
			}
			for i, t := range ts {
				if i > 0 {
					fmt.Fprintln(e.streams.Out)
				}
				d, _, err := e.getDeployment(cmd.Context(), t)
				if err != nil {
					return err
				}
				h, err := e.history(cmd.Context(), t, d)
				if err != nil {
					return err
				}
				name := printer.ResourceName(t.m.GVK(), t.name)
				if revision > 0 {
					entry, err := rollout.Find(h, revision)
					if err != nil {
						return fmt.Errorf("%s: %w", name, err)
					}
					fmt.Fprintf(e.streams.Out, "%s with revision #%d\n", name, revision)
					if err := describe.PodTemplate(e.streams.Out, rollout.Template(entry.ReplicaSet)); err != nil {
						return err
					}
					continue
				}
				if len(h) == 0 {
					fmt.Fprintf(e.streams.Out, "No rollout history found for %s.\n", name)
					continue
				}
				fmt.Fprintln(e.streams.Out, name)
				rows := [][]string{{"REVISION", "CHANGE-CAUSE"}}
				for _, en := range h {
					cause := en.ChangeCause
					if cause == "" {
						cause = "<none>"
					}
					rows = append(rows, []string{fmt.Sprint(en.Revision), cause})
				}
				if err := printer.Text(e.streams.Out, rows); err != nil {
					return err
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVarP(&files.filenames, "filename", "f", nil, "The deployments these files define")
	f.StringVarP(&selector, "selector", "l", "", "The deployments matching this label selector")
	f.Int64Var(&revision, "revision", 0, "Show the pod template of this revision")
	return cmd
}

// history lists the revisions of a deployment from its ReplicaSets.
func (e *env) history(ctx context.Context, t target, d *appsv1.Deployment) ([]rollout.Entry, error) {
	mp, err := e.discovery(ctx)
	if err != nil {
		return nil, err
	}
	rsm, err := mp.resource("replicasets.apps")
	if err != nil {
		return nil, err
	}
	items, _, err := e.listObjects(ctx, rsm, t.ns, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var rss []appsv1.ReplicaSet
	for _, it := range items {
		var rs appsv1.ReplicaSet
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(it.Object, &rs); err != nil {
			return nil, fmt.Errorf("decoding replica set %s: %w", it.GetName(), err)
		}
		rss = append(rss, rs)
	}
	return rollout.History(d, rss), nil
}

func newRolloutUndoCommand(e *env) *cobra.Command {
	var (
		files      fileFlags
		selector   string
		toRevision int64
		dryRun     dryRunFlag
	)
	cmd := &cobra.Command{
		Use:   "undo (TYPE NAME | TYPE/NAME) [flags]",
		Short: "Undo a previous rollout",
		Long: `Roll a deployment back: its pod template becomes that of an earlier revision
(the previous one, or --to-revision), which the deployment controller then
rolls out like any change. A paused deployment must be resumed first.`,
		Example: examples(`
# back to the previous revision
ctl rollout undo deployment/web

# back to revision 3
ctl rollout undo deployment/web --to-revision=3`),
		ValidArgsFunction: e.completeResources,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := dryRun.check(); err != nil {
				return err
			}
			ts, err := e.deploymentTargets(cmd, args, files, selector)
			if err != nil {
				return err
			}
			for _, t := range ts {
				if err := e.undo(cmd.Context(), t, toRevision, dryRun); err != nil {
					return err
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVarP(&files.filenames, "filename", "f", nil, "The deployments these files define")
	f.StringVarP(&selector, "selector", "l", "", "The deployments matching this label selector")
	f.Int64Var(&toRevision, "to-revision", 0, "The revision to go back to (0 = the previous one)")
	dryRun.add(cmd)
	return cmd
}

func (e *env) undo(ctx context.Context, t target, to int64, dryRun dryRunFlag) error {
	name := printer.ResourceName(t.m.GVK(), t.name)
	d, _, err := e.getDeployment(ctx, t)
	if err != nil {
		return err
	}
	if d.Spec.Paused {
		return fmt.Errorf("you cannot roll back a paused deployment; resume it first with `ctl rollout resume %s` and try again", name)
	}
	h, err := e.history(ctx, t, d)
	if err != nil {
		return err
	}
	entry, err := rollout.Find(h, to)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	tmpl := rollout.Template(entry.ReplicaSet)
	if rollout.SameTemplate(tmpl, d.Spec.Template) {
		fmt.Fprintf(e.streams.Out, "%s skipped rollback (current template already matches revision %d)\n", name, entry.Revision)
		return nil
	}
	// A JSON patch that tests the resourceVersion: if the deployment
	// changed since it was read, the server refuses the rollback.
	patch, err := json.Marshal([]map[string]any{
		{"op": "test", "path": "/metadata/resourceVersion", "value": d.ResourceVersion},
		{"op": "replace", "path": "/spec/template", "value": tmpl},
		{"op": "add", "path": "/metadata/annotations", "value": rollout.RollbackAnnotations(d, entry.ReplicaSet)},
	})
	if err != nil {
		return err
	}
	if !dryRun.client() {
		if _, err := e.patchObject(ctx, t.m, t.ns, t.name, types.JSONPatchType, patch, writeOpts{dryRun: dryRun.server()}); err != nil {
			return err
		}
	}
	fmt.Fprintf(e.streams.Out, "%s rolled back%s\n", name, dryRun.suffix())
	return nil
}

func newRolloutRestartCommand(e *env) *cobra.Command {
	var (
		files    fileFlags
		selector string
		dryRun   dryRunFlag
	)
	cmd := &cobra.Command{
		Use:   "restart (TYPE NAME | TYPE/NAME) [flags]",
		Short: "Restart a resource",
		Long: `Replace every pod of a deployment with a new one, by a rolling update: the pod
template gets the annotation kubectl.kubernetes.io/restartedAt=<now>, which
makes it a new revision.`,
		Example: examples(`
ctl rollout restart deployment/web
ctl rollout restart deploy -l app=web`),
		ValidArgsFunction: e.completeResources,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := dryRun.check(); err != nil {
				return err
			}
			ts, err := e.deploymentTargets(cmd, args, files, selector)
			if err != nil {
				return err
			}
			for _, t := range ts {
				name := printer.ResourceName(t.m.GVK(), t.name)
				d, _, err := e.getDeployment(cmd.Context(), t)
				if err != nil {
					return err
				}
				if d.Spec.Paused {
					return fmt.Errorf("can't restart paused %s (run `ctl rollout resume %s` first)", name, name)
				}
				patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
					"annotations": map[string]any{rollout.RestartedAtAnnotation: e.now().Format(time.RFC3339)}}}}})
				if !dryRun.client() {
					if _, err := e.patchObject(cmd.Context(), t.m, t.ns, t.name, types.StrategicMergePatchType, patch, writeOpts{dryRun: dryRun.server()}); err != nil {
						return err
					}
				}
				fmt.Fprintf(e.streams.Out, "%s restarted%s\n", name, dryRun.suffix())
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVarP(&files.filenames, "filename", "f", nil, "The deployments these files define")
	cmd.Flags().StringVarP(&selector, "selector", "l", "", "The deployments matching this label selector")
	dryRun.add(cmd)
	return cmd
}

func newRolloutPauseCommand(e *env, pause bool) *cobra.Command {
	var (
		files    fileFlags
		selector string
		dryRun   dryRunFlag
	)
	use, short, long, verb := "pause", "Mark the provided resource as paused",
		`Pause a deployment: changes to its pod template are no longer rolled out until
it is resumed, so several changes can be made and then rolled out at once.
Scaling still works while paused.`, "paused"
	if !pause {
		use, short, long, verb = "resume", "Resume a paused resource",
			`Resume a paused deployment: template changes made while it was paused are
rolled out now.`, "resumed"
	}
	cmd := &cobra.Command{
		Use:   use + " (TYPE NAME | TYPE/NAME) [flags]",
		Short: short,
		Long:  long,
		Example: examples(`
ctl rollout pause deployment/web
ctl set image deployment/web web=minik8s.local/web:v2
ctl rollout resume deployment/web`),
		ValidArgsFunction: e.completeResources,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := dryRun.check(); err != nil {
				return err
			}
			ts, err := e.deploymentTargets(cmd, args, files, selector)
			if err != nil {
				return err
			}
			failed := false
			for _, t := range ts {
				name := printer.ResourceName(t.m.GVK(), t.name)
				d, _, err := e.getDeployment(cmd.Context(), t)
				if err != nil {
					return err
				}
				if d.Spec.Paused == pause {
					state := "paused"
					if !pause {
						state = "not paused"
					}
					e.reportError(fmt.Errorf("%s %q is already %s", t.m.GroupResource(), t.name, state))
					failed = true
					continue
				}
				patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"paused": pause}})
				if !dryRun.client() {
					if _, err := e.patchObject(cmd.Context(), t.m, t.ns, t.name, types.StrategicMergePatchType, patch, writeOpts{dryRun: dryRun.server()}); err != nil {
						return err
					}
				}
				fmt.Fprintf(e.streams.Out, "%s %s%s\n", name, verb, dryRun.suffix())
			}
			if failed {
				return errPrinted
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVarP(&files.filenames, "filename", "f", nil, "The deployments these files define")
	cmd.Flags().StringVarP(&selector, "selector", "l", "", "The deployments matching this label selector")
	dryRun.add(cmd)
	return cmd
}
