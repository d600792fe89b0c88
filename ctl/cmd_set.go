package ctl

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/spf13/cobra"

	"github.com/minik8s/minik8s/ctl/printer"
)

func newSetCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "set SUBCOMMAND",
		Short: "Set specific features on objects",
		Long:  "Change one aspect of existing objects. Subcommands: image.",
		Example: examples(`
ctl set image deployment/web web=minik8s.local/web:v2`),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError(cmd, "name what to set, e.g. `ctl set image deployment/web web=nginx:1.16.1`")
		},
	}
	cmd.AddCommand(newSetImageCommand(e))
	return cmd
}

type setImageOptions struct {
	files    fileFlags
	selector string
	all      bool
	dryRun   dryRunFlag
	output   string
}

func newSetImageCommand(e *env) *cobra.Command {
	o := &setImageOptions{}
	cmd := &cobra.Command{
		Use:   "image (-f FILENAME | TYPE NAME) CONTAINER_NAME_1=CONTAINER_IMAGE_1 ... CONTAINER_NAME_N=CONTAINER_IMAGE_N",
		Short: "Update the image of a pod template",
		Long: `Change container images of pods, deployments and replica sets (for the latter
two, in the pod template, which rolls the change out). CONTAINER=IMAGE names
a container; *=IMAGE changes every container, init containers included.`,
		Example: examples(`
# roll out a new nginx
ctl set image deployment/nginx-deployment nginx=nginx:1.16.1

# every container of every deployment labelled app=web
ctl set image deploy -l app=web '*=minik8s.local/web:v2'

# follow the rollout
ctl rollout status deployment/nginx-deployment`),
		ValidArgsFunction: e.completeResources,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.dryRun.check(); err != nil {
				return err
			}
			return o.run(cmd, e, args)
		},
	}
	f := cmd.Flags()
	f.StringSliceVarP(&o.files.filenames, "filename", "f", nil, "Change the objects these files or directories define")
	f.BoolVarP(&o.files.recursive, "recursive", "R", false, "Read directories given with -f recursively")
	f.StringVarP(&o.selector, "selector", "l", "", "Change the objects matching this label selector")
	f.BoolVar(&o.all, "all", false, "Change every object of the given types in the namespace")
	o.dryRun.add(cmd)
	f.StringVarP(&o.output, "output", "o", "", "Print the changed objects: "+printer.Formats)
	return cmd
}

// containerPaths are where pod specs live in the kinds set image knows.
func containerPaths(kind string) ([]string, bool) {
	switch kind {
	case "Pod":
		return []string{"spec"}, true
	case "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "ReplicationController":
		return []string{"spec", "template", "spec"}, true
	}
	return nil, false
}

func (o *setImageOptions) run(cmd *cobra.Command, e *env, args []string) error {
	ctx := cmd.Context()
	i := len(args)
	for i > 0 && strings.Contains(args[i-1], "=") {
		i--
	}
	resArgs, pairs := args[:i], args[i:]
	if len(pairs) == 0 {
		return usageError(cmd, "at least one CONTAINER=IMAGE is required")
	}
	images := map[string]string{}
	for _, p := range pairs {
		c, img, _ := strings.Cut(p, "=")
		if c == "" || img == "" {
			return usageError(cmd, "%q is not CONTAINER=IMAGE", p)
		}
		images[c] = img
	}
	targets, err := e.resolveTargets(ctx, cmd, resArgs, o.files, o.selector, "", o.all, false)
	if err != nil {
		return err
	}
	rp, err := e.newResultPrinter(o.output)
	if err != nil {
		return err
	}
	failed := false
	for _, t := range targets {
		name := printer.ResourceName(t.m.GVK(), t.name)
		path, ok := containerPaths(t.m.Kind)
		if !ok {
			e.reportError(fmt.Errorf("%s: set image does not know where %s keeps its containers", name, t.m.Kind))
			failed = true
			continue
		}
		obj, err := e.getObject(ctx, t.m, t.ns, t.name)
		if err != nil {
			e.reportError(err)
			failed = true
			continue
		}
		patch, changed, err := imagePatch(obj, path, images)
		if err != nil {
			e.reportError(fmt.Errorf("%s: %w", name, err))
			failed = true
			continue
		}
		out := obj
		if changed && !o.dryRun.client() {
			out, err = e.patchObject(ctx, t.m, t.ns, t.name, types.StrategicMergePatchType, patch, writeOpts{dryRun: o.dryRun.server()})
			if err != nil {
				e.reportError(err)
				failed = true
				continue
			}
		}
		verb := "image updated"
		if !changed {
			verb = "image unchanged"
		}
		rp.done(name, verb+o.dryRun.suffix(), out)
	}
	if err := rp.flush(); err != nil {
		return err
	}
	if failed {
		return errPrinted
	}
	return nil
}

// imagePatch builds the strategic merge patch setting container images;
// lists merge by container name, so other containers are untouched.
func imagePatch(obj *unstructured.Unstructured, path []string, images map[string]string) ([]byte, bool, error) {
	podSpec := map[string]any{}
	found := map[string]bool{}
	changed := false
	for _, field := range []string{"initContainers", "containers"} {
		list, _, err := unstructured.NestedSlice(obj.Object, append(path, field)...)
		if err != nil {
			return nil, false, err
		}
		var out []any
		for _, c := range list {
			cm, ok := c.(map[string]any)
			if !ok {
				continue
			}
			name, _ := cm["name"].(string)
			img, ok := images[name]
			if !ok {
				img, ok = images["*"]
			}
			if !ok {
				continue
			}
			found[name] = true
			if cm["image"] == img {
				continue
			}
			changed = true
			out = append(out, map[string]any{"name": name, "image": img})
		}
		if len(out) > 0 {
			podSpec[field] = out
		}
	}
	var missing []string
	for c := range images {
		if c != "*" && !found[c] {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, false, fmt.Errorf("unable to find container named %q", strings.Join(missing, `", "`))
	}
	var patch any = podSpec
	for i := len(path) - 1; i >= 0; i-- {
		patch = map[string]any{path[i]: patch}
	}
	data, err := json.Marshal(patch)
	return data, changed, err
}
