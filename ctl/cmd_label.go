package ctl

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/spf13/cobra"

	"github.com/minik8s/minik8s/ctl/printer"
)

// metaMapOptions are the shared options of label and annotate.
type metaMapOptions struct {
	field           string // "labels" or "annotations"
	files           fileFlags
	overwrite       bool
	all             bool
	allNamespaces   bool
	selector        string
	fieldSelector   string
	resourceVersion string
	list            bool
	local           bool
	dryRun          dryRunFlag
	output          string
}

func newLabelCommand(e *env) *cobra.Command {
	o := &metaMapOptions{field: "labels"}
	cmd := &cobra.Command{
		Use:   "label [--overwrite] (-f FILENAME | TYPE NAME | TYPE/NAME) KEY_1=VAL_1 ... KEY_N=VAL_N [KEY-]",
		Short: "Update the labels on a resource",
		Long: `Add, change or remove labels of objects. KEY=VALUE sets a label, KEY- removes
it. Changing a label that already has another value needs --overwrite.
Keys are qualified names ([prefix/]name, name at most 63 characters of
letters, digits, '-', '_', '.'); values at most 63 such characters.`,
		Example: examples(`
# label a pod
ctl label pods web-1 tier=frontend

# change an existing label
ctl label --overwrite pods web-1 tier=backend

# every pod in the namespace, or those matching a selector
ctl label pods --all status=unhealthy
ctl label pods -l app=web release=v2

# remove a label, and list a pod's labels
ctl label pods web-1 tier-
ctl label pods web-1 --list`),
		ValidArgsFunction: e.completeResources,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd, e, args)
		},
	}
	o.addFlags(cmd)
	return cmd
}

func newAnnotateCommand(e *env) *cobra.Command {
	o := &metaMapOptions{field: "annotations"}
	cmd := &cobra.Command{
		Use:   "annotate [--overwrite] (-f FILENAME | TYPE NAME | TYPE/NAME) KEY_1=VAL_1 ... KEY_N=VAL_N [KEY-]",
		Short: "Update the annotations on a resource",
		Long: `Add, change or remove annotations of objects. KEY=VALUE sets one, KEY- removes
it. Changing an annotation that already has another value needs --overwrite.
Annotations hold free-form text for tools and people; labels are for
selecting.`,
		Example: examples(`
# note who owns a deployment
ctl annotate deployment web example.com/owner=alice

# change it, then remove it
ctl annotate --overwrite deployment web example.com/owner=bob
ctl annotate deployment web example.com/owner-

# the change cause shown by rollout history
ctl annotate deployment web kubernetes.io/change-cause="image updated to v2"`),
		ValidArgsFunction: e.completeResources,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd, e, args)
		},
	}
	o.addFlags(cmd)
	return cmd
}

func (o *metaMapOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringSliceVarP(&o.files.filenames, "filename", "f", nil, "Change the objects these files or directories define")
	f.BoolVarP(&o.files.recursive, "recursive", "R", false, "Read directories given with -f recursively")
	f.BoolVar(&o.overwrite, "overwrite", false, "Allow replacing existing values")
	f.BoolVar(&o.all, "all", false, "Change every object of the given types in the namespace")
	f.BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "With --all or -l, select in every namespace")
	f.StringVarP(&o.selector, "selector", "l", "", "Change the objects matching this label selector")
	f.StringVar(&o.fieldSelector, "field-selector", "", "Change the objects matching this field selector")
	f.StringVar(&o.resourceVersion, "resource-version", "", "Only change the object if it is still at this resourceVersion")
	f.BoolVar(&o.list, "list", false, "Print the object's current "+o.field+" instead of changing them")
	f.BoolVar(&o.local, "local", false, "Change the objects of -f locally and print them (-o), without contacting the server")
	o.dryRun.add(cmd)
	f.StringVarP(&o.output, "output", "o", "", "Print the changed objects: "+printer.Formats)
}

// splitChanges separates KEY=VALUE / KEY- arguments (at the end) from
// resource arguments.
func splitChanges(args []string) (resources []string, set map[string]string, remove []string, err error) {
	i := len(args)
	for i > 0 {
		a := args[i-1]
		if strings.Contains(a, "=") || strings.HasSuffix(a, "-") {
			i--
			continue
		}
		break
	}
	resources = args[:i]
	set = map[string]string{}
	for _, a := range args[i:] {
		if k, v, ok := strings.Cut(a, "="); ok {
			if _, dup := set[k]; dup {
				return nil, nil, nil, fmt.Errorf("%q is given twice", k)
			}
			set[k] = v
			continue
		}
		remove = append(remove, strings.TrimSuffix(a, "-"))
	}
	for _, k := range remove {
		if _, ok := set[k]; ok {
			return nil, nil, nil, fmt.Errorf("can not both modify and remove %q in the same command", k)
		}
	}
	return resources, set, remove, nil
}

func (o *metaMapOptions) validate(set map[string]string, remove []string) error {
	var errs []string
	for k, v := range set {
		for _, msg := range validation.IsQualifiedName(k) {
			errs = append(errs, fmt.Sprintf("invalid key %q: %s", k, msg))
		}
		if o.field == "labels" {
			for _, msg := range validation.IsValidLabelValue(v) {
				errs = append(errs, fmt.Sprintf("invalid value %q for %s: %s", v, k, msg))
			}
		}
	}
	for _, k := range remove {
		for _, msg := range validation.IsQualifiedName(k) {
			errs = append(errs, fmt.Sprintf("invalid key %q: %s", k, msg))
		}
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// resolveTargets lists the objects a command acts on: from -f files,
// names, or -l / --all.
func (e *env) resolveTargets(ctx context.Context, cmd *cobra.Command, args []string, files fileFlags, selector, fieldSelector string, all, allNamespaces bool) ([]target, error) {
	if len(files.filenames) > 0 {
		if len(args) > 0 {
			return nil, usageError(cmd, "give either -f or resource arguments, not both")
		}
		objs, err := e.readObjects(ctx, &fileFlags{filenames: files.filenames, recursive: files.recursive, validate: "ignore"}, true)
		if err != nil {
			return nil, err
		}
		var out []target
		for _, fo := range objs {
			out = append(out, target{m: fo.m, ns: fo.ns, name: fo.obj.GetName()})
		}
		return out, nil
	}
	if len(args) == 0 {
		return nil, usageError(cmd, "you must specify the type of resource and a name (e.g. pods web-1), or -f FILE")
	}
	if _, err := e.client(); err != nil {
		return nil, err
	}
	sels, err := e.parseArgs(ctx, args)
	if err != nil {
		return nil, err
	}
	ns, err := e.ns()
	if err != nil {
		return nil, err
	}
	if allNamespaces {
		ns = ""
	}
	named := namedCount(sels) > 0
	switch {
	case named && (selector != "" || all):
		return nil, usageError(cmd, "names cannot be given together with -l or --all")
	case !named && selector == "" && fieldSelector == "" && !all:
		return nil, usageError(cmd, "resource(s) were provided, but no name was specified: give names, -l SELECTOR or --all")
	}
	var out []target
	for _, s := range sels {
		sns := selNamespace(s, ns)
		if named {
			for _, n := range s.names {
				out = append(out, target{m: s.m, ns: sns, name: n})
			}
			continue
		}
		items, _, err := e.listObjects(ctx, s.m, sns, metav1.ListOptions{LabelSelector: selector, FieldSelector: fieldSelector})
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			out = append(out, target{m: s.m, ns: it.GetNamespace(), name: it.GetName()})
		}
	}
	return out, nil
}

func (o *metaMapOptions) run(cmd *cobra.Command, e *env, args []string) error {
	ctx := cmd.Context()
	if err := o.dryRun.check(); err != nil {
		return err
	}
	resArgs, set, remove, err := splitChanges(args)
	if err != nil {
		return err
	}
	if !o.list && len(set) == 0 && len(remove) == 0 {
		return usageError(cmd, "at least one %s update is required (KEY=VALUE or KEY-)", strings.TrimSuffix(o.field, "s"))
	}
	if err := o.validate(set, remove); err != nil {
		return err
	}
	if o.local {
		return o.runLocal(ctx, e, set, remove)
	}
	targets, err := e.resolveTargets(ctx, cmd, resArgs, o.files, o.selector, o.fieldSelector, o.all, o.allNamespaces)
	if err != nil {
		return err
	}
	if o.resourceVersion != "" && len(targets) != 1 {
		return fmt.Errorf("--resource-version only works with a single object, not %d", len(targets))
	}
	rp, err := e.newResultPrinter(o.output)
	if err != nil {
		return err
	}
	failed := false
	for _, t := range targets {
		obj, err := e.getObject(ctx, t.m, t.ns, t.name)
		if err != nil {
			e.reportError(err)
			failed = true
			continue
		}
		name := printer.ResourceName(t.m.GVK(), t.name)
		if o.list {
			cur := o.current(obj)
			keys := make([]string, 0, len(cur))
			for k := range cur {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(e.streams.Out, "%s=%s\n", k, cur[k])
			}
			continue
		}
		verb, patch, err := o.change(e, name, obj, set, remove)
		if err != nil {
			e.reportError(err)
			failed = true
			continue
		}
		out := obj
		if patch != nil && !o.dryRun.client() {
			out, err = e.patchObject(ctx, t.m, t.ns, t.name, types.MergePatchType, patch, writeOpts{dryRun: o.dryRun.server()})
			if err != nil {
				e.reportError(err)
				failed = true
				continue
			}
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

func (o *metaMapOptions) current(obj *unstructured.Unstructured) map[string]string {
	if o.field == "labels" {
		return obj.GetLabels()
	}
	return obj.GetAnnotations()
}

// change computes the merge patch for one object and the verb to report;
// a nil patch means nothing changes.
func (o *metaMapOptions) change(e *env, name string, obj *unstructured.Unstructured, set map[string]string, remove []string) (string, []byte, error) {
	cur := o.current(obj)
	word := strings.TrimSuffix(o.field, "s") // label, annotation
	changes := map[string]any{}
	for k, v := range set {
		old, exists := cur[k]
		if exists && old == v {
			continue
		}
		if exists && !o.overwrite {
			return "", nil, fmt.Errorf("%s: '%s' already has a value (%s), and --overwrite is false", name, k, old)
		}
		changes[k] = v
	}
	removed := 0
	for _, k := range remove {
		if _, ok := cur[k]; !ok {
			fmt.Fprintf(e.streams.ErrOut, "%s %q not found on %s.\n", word, k, name)
			continue
		}
		changes[k] = nil
		removed++
	}
	verbs := map[string][3]string{"labels": {"labeled", "unlabeled", "not labeled"}, "annotations": {"annotated", "annotated", "not annotated"}}[o.field]
	if len(changes) == 0 {
		return verbs[2], nil, nil
	}
	md := map[string]any{o.field: changes}
	if o.resourceVersion != "" {
		md["resourceVersion"] = o.resourceVersion
	}
	patch, err := json.Marshal(map[string]any{"metadata": md})
	if err != nil {
		return "", nil, err
	}
	if removed == len(changes) {
		return verbs[1], patch, nil
	}
	return verbs[0], patch, nil
}

// runLocal changes the objects of -f files and prints them.
func (o *metaMapOptions) runLocal(ctx context.Context, e *env, set map[string]string, remove []string) error {
	if len(o.files.filenames) == 0 {
		return fmt.Errorf("--local needs -f")
	}
	if o.output == "" {
		o.output = "yaml"
	}
	p, err := printer.New(o.output, false)
	if err != nil {
		return err
	}
	docs, err := readDocsLocal(e, o.files)
	if err != nil {
		return err
	}
	var objs []*unstructured.Unstructured
	for _, u := range docs {
		m := o.current(u)
		if m == nil {
			m = map[string]string{}
		}
		for k, v := range set {
			if old, ok := m[k]; ok && old != v && !o.overwrite {
				return fmt.Errorf("%s/%s: '%s' already has a value (%s), and --overwrite is false", strings.ToLower(u.GetKind()), u.GetName(), k, old)
			}
			m[k] = v
		}
		for _, k := range remove {
			delete(m, k)
		}
		if o.field == "labels" {
			u.SetLabels(m)
		} else {
			u.SetAnnotations(m)
		}
		objs = append(objs, u)
	}
	return p.Print(e.streams.Out, objs, len(objs) == 1)
}
