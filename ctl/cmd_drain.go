package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"

	"github.com/spf13/cobra"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	policyv1 "github.com/minik8s/minik8s/api/policy/v1"
	"github.com/minik8s/minik8s/ctl/printer"
)

// Node maintenance: cordon and uncordon set a node's spec.unschedulable;
// drain cordons a node and evicts its pods through the pods/eviction
// subresource, as kubectl does. The rules for which pods block a drain and
// the messages are kubectl's.

func newCordonCommand(e *env) *cobra.Command {
	return newCordonLikeCommand(e, true)
}

func newUncordonCommand(e *env) *cobra.Command {
	return newCordonLikeCommand(e, false)
}

func newCordonLikeCommand(e *env, cordon bool) *cobra.Command {
	var dryRun dryRunFlag
	cmd := &cobra.Command{
		Use:   "cordon NODE",
		Short: "Mark node as unschedulable",
		Long: `Mark a node as unschedulable (spec.unschedulable): the scheduler places no new
pods there; the pods already on it keep running. ` + "`ctl get nodes`" + ` shows it as
SchedulingDisabled. Use ` + "`ctl drain`" + ` to also move its pods away, and
` + "`ctl uncordon`" + ` to make it schedulable again.`,
		Example: examples(`
# no new pods on node-2
ctl cordon node-2

# what would change, without changing it
ctl cordon node-2 --dry-run=server`),
	}
	if !cordon {
		cmd.Use = "uncordon NODE"
		cmd.Short = "Mark node as schedulable"
		cmd.Long = `Mark a node as schedulable again (clears spec.unschedulable), after
` + "`ctl cordon`" + ` or ` + "`ctl drain`" + `. Pods moved away by a drain do not come back;
new pods may be placed there.`
		cmd.Example = examples(`
# node-2 is back from maintenance
ctl uncordon node-2`)
	}
	cmd.ValidArgsFunction = e.completeNodes
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) != 1 {
			return usageError(cmd, "give exactly one NODE, e.g. `%s NODE`", cmd.CommandPath())
		}
		if err := dryRun.check(); err != nil {
			return err
		}
		_, err := e.setUnschedulable(cmd.Context(), args[0], cordon, dryRun)
		return err
	}
	dryRun.add(cmd)
	return cmd
}

// completeNodes completes the one NODE argument.
func (e *env) completeNodes(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return e.completeResources(cmd, []string{"nodes"}, toComplete)
}

// setUnschedulable cordons (or uncordons) a node and prints kubectl's
// "node/NAME cordoned", "already cordoned", "uncordoned" ... It returns the
// nodes mapping for the caller's further use.
func (e *env) setUnschedulable(ctx context.Context, name string, unschedulable bool, dryRun dryRunFlag) (*mapping, error) {
	mp, err := e.discovery(ctx)
	if err != nil {
		return nil, err
	}
	nm, err := mp.resource("nodes")
	if err != nil {
		return nil, err
	}
	obj, err := e.getObject(ctx, nm, "", name)
	if err != nil {
		return nil, err
	}
	current, _, _ := unstructured.NestedBool(obj.Object, "spec", "unschedulable")
	verb := "cordoned"
	if !unschedulable {
		verb = "uncordoned"
	}
	what := printer.ResourceName(nm.GVK(), name)
	if current == unschedulable {
		fmt.Fprintf(e.streams.Out, "%s already %s%s\n", what, verb, dryRun.suffix())
		return nm, nil
	}
	if !dryRun.client() {
		// Uncordoning removes the field, as kubectl does (false is its
		// default and is not stored).
		patch := `{"spec":{"unschedulable":true}}`
		if !unschedulable {
			patch = `{"spec":{"unschedulable":null}}`
		}
		if _, err := e.patchObject(ctx, nm, "", name, types.MergePatchType, []byte(patch), writeOpts{dryRun: dryRun.server()}); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(e.streams.Out, "%s %s%s\n", what, verb, dryRun.suffix())
	return nm, nil
}

type drainOptions struct {
	ignoreDaemonSets   bool
	deleteEmptyDirData bool
	force              bool
	disableEviction    bool
	gracePeriod        int64
	timeout            time.Duration
	podSelector        string
	dryRun             dryRunFlag
}

func newDrainCommand(e *env) *cobra.Command {
	o := &drainOptions{}
	cmd := &cobra.Command{
		Use:   "drain NODE",
		Short: "Drain node in preparation for maintenance",
		Long: `Drain a node before maintenance: cordon it (no new pods are placed there), then
evict every pod on it through the pods/eviction subresource and wait until
they are gone. Their controllers (ReplicaSets of Deployments) create
replacements on other nodes. The node stays cordoned afterwards; use
` + "`ctl uncordon`" + ` when it is back.

An eviction is a graceful delete: the node's kubelet stops the containers
within the grace period (--grace-period, else the pod's own) and then the
pod disappears. minik8s has no PodDisruptionBudgets, so no eviction is
refused to protect an application's availability; evictions only fail as a
delete would.

Some pods block the drain, and nothing is evicted, unless a flag allows
them:
  - pods that declare no controller (no ownerReference with controller:
    true): nothing would recreate them, so they are lost; --force evicts them
  - pods with emptyDir volumes: that data is lost; --delete-emptydir-data
Finished pods (Succeeded or Failed) never block.

--ignore-daemonsets is accepted for kubectl compatibility; minik8s has no
DaemonSets. If the server has no eviction subresource (or with
--disable-eviction) the pods are deleted instead. If the drain fails or
times out (--timeout), the node stays cordoned and the drain can be run
again.`,
		Example: examples(`
# move everything off node-2 (pods of Deployments and ReplicaSets)
ctl drain node-2

# also pods without a controller and pods with emptyDir volumes
ctl drain node-2 --force --delete-emptydir-data

# give up after two minutes; stop the containers at once
ctl drain node-2 --timeout=2m --grace-period=0

# only the pods labelled app=web; what would happen, changing nothing
ctl drain node-2 --pod-selector app=web
ctl drain node-2 --dry-run=server`),
		ValidArgsFunction: e.completeNodes,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError(cmd, "give exactly one NODE, e.g. `ctl drain NODE`")
			}
			if err := o.dryRun.check(); err != nil {
				return err
			}
			return o.run(cmd.Context(), e, args[0])
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.ignoreDaemonSets, "ignore-daemonsets", false, "Ignore DaemonSet-managed pods (accepted for kubectl compatibility; minik8s has no DaemonSets)")
	f.BoolVar(&o.deleteEmptyDirData, "delete-emptydir-data", false, "Evict pods with emptyDir volumes too (their local data is lost)")
	f.BoolVar(&o.force, "force", false, "Evict pods that declare no controller too (nothing recreates them)")
	f.BoolVar(&o.disableEviction, "disable-eviction", false, "Delete the pods instead of evicting them")
	f.Int64Var(&o.gracePeriod, "grace-period", -1, "Seconds each pod gets to stop; -1 = the pod's own terminationGracePeriodSeconds, 0 = at once")
	f.DurationVar(&o.timeout, "timeout", 0, "How long to wait for the evictions and the pods to be gone, e.g. 5m (0 = as long as it takes)")
	f.StringVar(&o.podSelector, "pod-selector", "", "Only evict the pods matching this label selector")
	o.dryRun.add(cmd)
	return cmd
}

// drainPod is a pod to evict.
type drainPod struct {
	ns, name string
	uid      types.UID
}

func (p drainPod) String() string { return p.ns + "/" + p.name }

// Why pods block a drain, or what the user lets happen to them (kubectl's
// wording).
const (
	unmanagedFatal      = "Pods that declare no controller (use --force to override)"
	unmanagedWarning    = "deleting Pods that declare no controller"
	localStorageFatal   = "Pods with local storage (use --delete-emptydir-data to override)"
	localStorageWarning = "deleting Pods with local storage"
	mirrorPodAnnotation = "kubernetes.io/config.mirror"
)

func (o *drainOptions) run(ctx context.Context, e *env, node string) error {
	nm, err := e.setUnschedulable(ctx, node, true, o.dryRun)
	if err != nil {
		return err
	}
	mp, err := e.discovery(ctx)
	if err != nil {
		return err
	}
	pm, err := mp.resource("pods")
	if err != nil {
		return err
	}
	pods, err := o.podsToEvict(ctx, e, pm, node)
	if err != nil {
		return err
	}
	drained := printer.ResourceName(nm.GVK(), node) + " drained" + o.dryRun.suffix()
	if o.dryRun.client() {
		for _, p := range pods {
			fmt.Fprintf(e.streams.Out, "evicting pod %s (dry run)\n", p)
		}
		fmt.Fprintln(e.streams.Out, drained)
		return nil
	}
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	evictionVersion := ""
	if !o.disableEviction {
		if evictionVersion, err = e.evictionSupport(ctx, pm); err != nil {
			return o.failed(node, []string{err.Error()})
		}
	}
	var errs []string
	var pending []drainPod
	for _, p := range pods {
		if evictionVersion != "" {
			fmt.Fprintf(e.streams.Out, "evicting pod %s%s\n", p, o.dryRun.suffix())
		}
		err := o.evictOrDelete(ctx, e, pm, p, evictionVersion)
		switch {
		case apierrors.IsNotFound(err):
			continue // gone already
		case err != nil && ctx.Err() != nil:
			errs = append(errs, fmt.Sprintf("error when evicting pods/%q -n %q: %v", p.name, p.ns, o.ctxError(ctx)))
			continue
		case err != nil:
			errs = append(errs, fmt.Sprintf("error when evicting pods/%q -n %q: %s", p.name, p.ns, e.formatError(err)))
			continue
		}
		pending = append(pending, p)
	}
	if !o.dryRun.server() {
		verb := "evicted"
		if evictionVersion == "" {
			verb = "deleted"
		}
		left, err := o.waitGone(ctx, e, pm, pending, verb)
		if err != nil {
			names := make([]string, len(left))
			for i, p := range left {
				names[i] = p.String()
			}
			errs = append(errs, fmt.Sprintf("%v waiting for these pods to terminate: %s", err, strings.Join(names, ", ")))
		}
	}
	if len(errs) > 0 {
		return o.failed(node, errs)
	}
	fmt.Fprintln(e.streams.Out, drained)
	return nil
}

// ctxError says why ctx ended: --timeout ran out, or the command was
// interrupted.
func (o *drainOptions) ctxError(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) && o.timeout > 0 {
		return fmt.Errorf("timed out after %v", o.timeout)
	}
	return ctx.Err()
}

// failed is the error of a drain that did not complete; the node stays
// cordoned.
func (o *drainOptions) failed(node string, msgs []string) error {
	head := fmt.Sprintf("unable to drain node %q (it stays cordoned)", node)
	if len(msgs) == 1 {
		return errors.New(head + ": " + msgs[0])
	}
	return errors.New(head + ":\n" + strings.Join(msgs, "\n"))
}

// podsToEvict lists the node's pods and applies kubectl's rules: pods that
// would be lost block the drain unless a flag allows them; the allowed ones
// are listed in a warning.
func (o *drainOptions) podsToEvict(ctx context.Context, e *env, pm *mapping, node string) ([]drainPod, error) {
	items, _, err := e.listObjects(ctx, pm, "", metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.nodeName", node).String(),
		LabelSelector: o.podSelector,
	})
	if err != nil {
		return nil, err
	}
	type reasons struct {
		order []string
		pods  map[string][]string
	}
	add := func(r *reasons, msg, pod string) {
		if r.pods == nil {
			r.pods = map[string][]string{}
		}
		if _, ok := r.pods[msg]; !ok {
			r.order = append(r.order, msg)
		}
		r.pods[msg] = append(r.pods[msg], pod)
	}
	var fatal, warn reasons
	var out []drainPod
	for _, it := range items {
		p, err := toPod(it)
		if err != nil {
			return nil, err
		}
		if _, mirror := p.Annotations[mirrorPodAnnotation]; mirror {
			continue // the kubelet's copy of a static pod: not deletable through the API
		}
		dp := drainPod{ns: p.Namespace, name: p.Name, uid: p.UID}
		blocked := false
		if finished := p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed; !finished {
			if metav1.GetControllerOf(p) == nil {
				if o.force {
					add(&warn, unmanagedWarning, dp.String())
				} else {
					add(&fatal, unmanagedFatal, dp.String())
					blocked = true
				}
			}
			if hasEmptyDir(p) {
				if o.deleteEmptyDirData {
					add(&warn, localStorageWarning, dp.String())
				} else {
					add(&fatal, localStorageFatal, dp.String())
					blocked = true
				}
			}
		}
		if !blocked {
			out = append(out, dp)
		}
	}
	if len(fatal.order) > 0 {
		msgs := make([]string, len(fatal.order))
		for i, m := range fatal.order {
			msgs[i] = fmt.Sprintf("cannot delete %s: %s", m, strings.Join(fatal.pods[m], ", "))
		}
		return nil, o.failed(node, msgs)
	}
	if len(warn.order) > 0 {
		msgs := make([]string, len(warn.order))
		for i, m := range warn.order {
			msgs[i] = fmt.Sprintf("%s: %s", m, strings.Join(warn.pods[m], ", "))
		}
		fmt.Fprintf(e.streams.ErrOut, "Warning: %s\n", strings.Join(msgs, "; "))
	}
	return out, nil
}

func hasEmptyDir(p *corev1.Pod) bool {
	for _, v := range p.Spec.Volumes {
		if v.EmptyDir != nil {
			return true
		}
	}
	return false
}

// evictionSupport returns the apiVersion of the Eviction kind the server
// takes at pods/eviction (its discovery names it, as kubectl checks), or ""
// if the server has no eviction subresource.
func (e *env) evictionSupport(ctx context.Context, pm *mapping) (string, error) {
	body, err := e.rc.Get().AbsPath(discoveryPath(pm.GroupVersion())).Do(ctx).Raw()
	if err != nil {
		return "", err
	}
	var list metav1.APIResourceList
	if err := json.Unmarshal(body, &list); err != nil {
		return "", fmt.Errorf("discovery %s: %w", discoveryPath(pm.GroupVersion()), err)
	}
	for _, r := range list.APIResources {
		if r.Name == pm.Resource+"/eviction" && r.Kind == "Eviction" && r.Group != "" && r.Version != "" {
			return r.Group + "/" + r.Version, nil
		}
	}
	return "", nil
}

// evictOrDelete evicts one pod (or deletes it when evictionVersion is "").
// A 429 (a PodDisruptionBudget on a Kubernetes server; minik8s has none) is
// retried every 5 s until the timeout.
func (o *drainOptions) evictOrDelete(ctx context.Context, e *env, pm *mapping, p drainPod, evictionVersion string) error {
	opts := &metav1.DeleteOptions{}
	if o.gracePeriod >= 0 {
		opts.GracePeriodSeconds = &o.gracePeriod
	}
	if o.dryRun.server() {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	if evictionVersion == "" {
		_, err := e.deleteObject(ctx, pm, p.ns, p.name, *opts)
		return err
	}
	ev := &policyv1.Eviction{
		TypeMeta:      metav1.TypeMeta{Kind: "Eviction", APIVersion: evictionVersion},
		ObjectMeta:    metav1.ObjectMeta{Name: p.name, Namespace: p.ns},
		DeleteOptions: opts,
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	for {
		err := e.req(http.MethodPost, pm, p.ns).Name(p.name).SubResource("eviction").Body(data).Do(ctx).Error()
		if !apierrors.IsTooManyRequests(err) {
			return err
		}
		fmt.Fprintf(e.streams.ErrOut, "error when evicting pods/%q -n %q (will retry after 5s): %s\n", p.name, p.ns, e.formatError(err))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Second):
		}
	}
}

// waitGone waits until every pod is gone (or replaced by a new pod of the
// same name), printing "pod/NAME evicted" for each. On timeout it returns
// the pods still there.
func (o *drainOptions) waitGone(ctx context.Context, e *env, pm *mapping, pods []drainPod, verb string) ([]drainPod, error) {
	interval := 100 * time.Millisecond
	for {
		var left []drainPod
		for i, p := range pods {
			obj, err := e.getObject(ctx, pm, p.ns, p.name)
			switch {
			case apierrors.IsNotFound(err) || err == nil && obj.GetUID() != p.uid:
				fmt.Fprintf(e.streams.Out, "%s %s\n", printer.ResourceName(pm.GVK(), p.name), verb)
			case err != nil && ctx.Err() == nil:
				return append(left, pods[i:]...), err
			default:
				left = append(left, p)
			}
		}
		pods = left
		if len(pods) == 0 {
			return nil, nil
		}
		select {
		case <-ctx.Done():
			return pods, o.ctxError(ctx)
		case <-time.After(interval):
		}
		interval = min(2*interval, time.Second)
	}
}
