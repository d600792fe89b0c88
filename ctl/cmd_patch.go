package ctl

import (
	"encoding/json"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/spf13/cobra"

	"github.com/minik8s/minik8s/ctl/printer"
)

type patchOptions struct {
	files       fileFlags
	patch       string
	patchFile   string
	typ         string
	subresource string
	dryRun      dryRunFlag
	output      string
}

func newPatchCommand(e *env) *cobra.Command {
	o := &patchOptions{}
	cmd := &cobra.Command{
		Use:   "patch (-f FILENAME | TYPE NAME) [-p PATCH | --patch-file FILE] [--type strategic|merge|json]",
		Short: "Update fields of a resource",
		Long: `Change fields of objects with a patch, in JSON or YAML: a strategic merge patch
(the default; lists of known kinds merge by key, e.g. containers by name), a
JSON merge patch (--type merge; lists are replaced), or a JSON patch
(--type json; a list of operations).`,
		Example: examples(`
# one field
ctl patch deployment web -p '{"spec":{"replicas":3}}'

# a container's image, merged by name
ctl patch deploy web -p '{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"minik8s.local/web:v2"}]}}}}'

# a JSON patch, and the status subresource
ctl patch svc web --type=json -p '[{"op":"replace","path":"/spec/type","value":"NodePort"}]'
ctl patch deploy web --subresource=status --type=merge -p '{"status":{"observedGeneration":0}}'`),
		ValidArgsFunction: e.completeResources,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.dryRun.check(); err != nil {
				return err
			}
			pt, ok := map[string]types.PatchType{"strategic": types.StrategicMergePatchType, "merge": types.MergePatchType, "json": types.JSONPatchType}[o.typ]
			if !ok {
				return usageError(cmd, "--type must be strategic, merge or json, not %q", o.typ)
			}
			raw := []byte(o.patch)
			if o.patchFile != "" {
				if o.patch != "" {
					return usageError(cmd, "give -p or --patch-file, not both")
				}
				b, err := os.ReadFile(o.patchFile)
				if err != nil {
					return err
				}
				raw = b
			}
			if len(raw) == 0 {
				return usageError(cmd, "a patch is required: -p '{...}' or --patch-file FILE")
			}
			patch, err := yaml.YAMLToJSON(raw)
			if err != nil {
				return fmt.Errorf("the patch is not valid JSON or YAML: %w", err)
			}
			var check any
			if err := json.Unmarshal(patch, &check); err != nil {
				return fmt.Errorf("the patch is not valid JSON or YAML: %w", err)
			}
			targets, err := e.resolveTargets(cmd.Context(), cmd, args, o.files, "", "", false, false)
			if err != nil {
				return err
			}
			rp, err := e.newResultPrinter(o.output)
			if err != nil {
				return err
			}
			var sub []string
			if o.subresource != "" {
				sub = []string{o.subresource}
			}
			for _, t := range targets {
				name := printer.ResourceName(t.m.GVK(), t.name)
				before, err := e.getObject(cmd.Context(), t.m, t.ns, t.name)
				if err != nil {
					return err
				}
				out := before
				if !o.dryRun.client() {
					out, err = e.patchObject(cmd.Context(), t.m, t.ns, t.name, pt, patch, writeOpts{dryRun: o.dryRun.server(), fieldValidation: "Strict"}, sub...)
					if err != nil {
						return err
					}
				}
				verb := "patched"
				if out.GetResourceVersion() == before.GetResourceVersion() && !o.dryRun.client() && !o.dryRun.server() {
					verb = "patched (no change)"
				}
				rp.done(name, verb+o.dryRun.suffix(), out)
			}
			return rp.flush()
		},
	}
	f := cmd.Flags()
	f.StringSliceVarP(&o.files.filenames, "filename", "f", nil, "Patch the objects these files or directories define")
	f.StringVarP(&o.patch, "patch", "p", "", "The patch, in JSON or YAML")
	f.StringVar(&o.patchFile, "patch-file", "", "A file holding the patch")
	f.StringVar(&o.typ, "type", "strategic", "strategic, merge or json")
	f.StringVar(&o.subresource, "subresource", "", "Patch a subresource: status or scale")
	o.dryRun.add(cmd)
	f.StringVarP(&o.output, "output", "o", "", "Print the patched objects: "+printer.Formats)
	return cmd
}
