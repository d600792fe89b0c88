package ctl

import (
	"encoding/json"
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/spf13/cobra"

	autoscalingv1 "github.com/minik8s/minik8s/api/autoscaling/v1"
	"github.com/minik8s/minik8s/ctl/printer"
)

type scaleOptions struct {
	files           fileFlags
	replicas        int32
	currentReplicas int32
	resourceVersion string
	selector        string
	all             bool
	dryRun          dryRunFlag
	output          string
}

func newScaleCommand(e *env) *cobra.Command {
	o := &scaleOptions{}
	cmd := &cobra.Command{
		Use:   "scale [--resource-version=VERSION] [--current-replicas=COUNT] --replicas=COUNT (-f FILENAME | TYPE NAME)",
		Short: "Set a new size for a deployment or replica set",
		Long: `Set the number of replicas of deployments and replica sets, through their scale
subresource (what autoscalers use too).

--current-replicas and --resource-version are preconditions: the change is
refused if the object is not at that size or version any more, so two people
scaling at once do not overwrite each other unknowingly.`,
		Example: examples(`
# five web replicas
ctl scale --replicas=5 deployment/web

# only if it currently runs 2
ctl scale --current-replicas=2 --replicas=3 deployment/web

# several at once, or from a file
ctl scale --replicas=0 deploy/web deploy/api
ctl scale --replicas=3 -f web.yaml`),
		ValidArgsFunction: e.completeResources,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("replicas") {
				return usageError(cmd, "--replicas=COUNT is required")
			}
			if o.replicas < 0 {
				return usageError(cmd, "--replicas must be 0 or more, not %d", o.replicas)
			}
			if err := o.dryRun.check(); err != nil {
				return err
			}
			return o.run(cmd, e, args)
		},
	}
	f := cmd.Flags()
	f.StringSliceVarP(&o.files.filenames, "filename", "f", nil, "Scale the objects these files or directories define")
	f.BoolVarP(&o.files.recursive, "recursive", "R", false, "Read directories given with -f recursively")
	f.Int32Var(&o.replicas, "replicas", 0, "The new number of replicas (required)")
	f.Int32Var(&o.currentReplicas, "current-replicas", -1, "Precondition: the current number of replicas (-1 = no check)")
	f.StringVar(&o.resourceVersion, "resource-version", "", "Precondition: the object's current resourceVersion")
	f.StringVarP(&o.selector, "selector", "l", "", "Scale the objects matching this label selector")
	f.BoolVar(&o.all, "all", false, "Scale every object of the given types in the namespace")
	o.dryRun.add(cmd)
	f.StringVarP(&o.output, "output", "o", "", "name: print only resource/name")
	return cmd
}

func (o *scaleOptions) run(cmd *cobra.Command, e *env, args []string) error {
	ctx := cmd.Context()
	targets, err := e.resolveTargets(ctx, cmd, args, o.files, o.selector, "", o.all, false)
	if err != nil {
		return err
	}
	failed := false
	for _, t := range targets {
		name := printer.ResourceName(t.m.GVK(), t.name)
		r := e.req(http.MethodGet, t.m, t.ns).Name(t.name).SubResource("scale")
		body, err := r.Do(ctx).Raw()
		if err != nil {
			if se, ok := err.(*apierrors.StatusError); ok && (se.ErrStatus.Code == http.StatusNotFound && se.ErrStatus.Details != nil && se.ErrStatus.Details.Name == "" || se.ErrStatus.Code == http.StatusMethodNotAllowed) {
				err = fmt.Errorf("%s cannot be scaled: %s has no scale subresource", name, t.m.GroupResource())
			}
			e.reportError(err)
			failed = true
			continue
		}
		var sc autoscalingv1.Scale
		if err := json.Unmarshal(body, &sc); err != nil {
			return fmt.Errorf("decoding scale of %s: %w", name, err)
		}
		if o.currentReplicas >= 0 && sc.Spec.Replicas != o.currentReplicas {
			e.reportError(fmt.Errorf("%s: expected %d replicas, found %d (--current-replicas precondition failed; nothing changed)", name, o.currentReplicas, sc.Spec.Replicas))
			failed = true
			continue
		}
		if o.resourceVersion != "" && sc.ResourceVersion != o.resourceVersion {
			e.reportError(fmt.Errorf("%s: resourceVersion is %s, not %s (--resource-version precondition failed; nothing changed)", name, sc.ResourceVersion, o.resourceVersion))
			failed = true
			continue
		}
		if !o.dryRun.client() {
			sc.Spec.Replicas = o.replicas
			// With a precondition the resourceVersion stays, so the write
			// fails with a Conflict if the object changed since it was
			// checked; without one the write is unconditional.
			if o.currentReplicas < 0 && o.resourceVersion == "" {
				sc.ResourceVersion = ""
			}
			data, err := json.Marshal(&sc)
			if err != nil {
				return err
			}
			put := e.req(http.MethodPut, t.m, t.ns).Name(t.name).SubResource("scale").Body(data)
			if o.dryRun.server() {
				put = put.Param("dryRun", "All")
			}
			if err := put.Do(ctx).Error(); err != nil {
				e.reportError(err)
				failed = true
				continue
			}
		}
		if o.output == "name" {
			fmt.Fprintln(e.streams.Out, name)
		} else {
			fmt.Fprintf(e.streams.Out, "%s scaled%s\n", name, o.dryRun.suffix())
		}
	}
	if failed {
		return errPrinted
	}
	return nil
}
