package ctl

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/spf13/cobra"

	"github.com/minik8s/minik8s/ctl/jsonpath"
	"github.com/minik8s/minik8s/ctl/manifest"
	"github.com/minik8s/minik8s/ctl/printer"
)

type getOptions struct {
	output         string
	noHeaders      bool
	selector       string
	fieldSelector  string
	allNamespaces  bool
	watch          bool
	watchOnly      bool
	showLabels     bool
	showKind       bool
	labelColumns   []string
	ignoreNotFound bool
	filenames      []string
	recursive      bool
	sortBy         string
}

func newGetCommand(e *env) *cobra.Command {
	o := &getOptions{}
	cmd := &cobra.Command{
		Use:   "get [(-o|--output=)json|yaml|name|wide|jsonpath=...|custom-columns=...] (TYPE[.VERSION][.GROUP] [NAME | -l label] | TYPE[.VERSION][.GROUP]/NAME ...) [flags]",
		Short: "Display one or many resources",
		Long: `Display one or many resources.

Tables show the columns the server defines for each kind (as kubectl does);
-o wide adds the extra ones. Resource types may be given by their plural,
singular or short name (po, svc, deploy ...), several at once separated by
commas, or as the category "all". ` + "`ctl api-resources`" + ` lists them.`,
		Example: examples(`
# list pods in the current namespace, and in every namespace
ctl get pods
ctl get pods -A

# deployments and services together, with the wide columns
ctl get deploy,svc -o wide

# one object as YAML, or one field of it
ctl get deployment web -o yaml
ctl get pod web-1 -o jsonpath='{.status.podIP}'

# pods by label, with their labels shown
ctl get pods -l app=web --show-labels

# custom columns, and watching for changes
ctl get pods -o custom-columns=NAME:.metadata.name,NODE:.spec.nodeName
ctl get pods -w`),
		ValidArgsFunction: e.completeResources,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && len(o.filenames) == 0 {
				return usageError(cmd, "you must specify the type of resource to get (e.g. pods, deployments, services); `ctl api-resources` lists them")
			}
			return o.run(cmd.Context(), e, args)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.output, "output", "o", "", "Output format: "+printer.Formats)
	f.BoolVar(&o.noHeaders, "no-headers", false, "Leave out the header line of tables and custom columns")
	f.StringVarP(&o.selector, "selector", "l", "", "Label selector to filter on (e.g. -l app=web,tier!=db)")
	f.StringVar(&o.fieldSelector, "field-selector", "", "Field selector to filter on (e.g. --field-selector status.phase=Running)")
	f.BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "List objects in every namespace")
	f.BoolVarP(&o.watch, "watch", "w", false, "After listing, watch for changes and print them as they happen")
	f.BoolVar(&o.watchOnly, "watch-only", false, "Watch for changes without listing first")
	f.BoolVar(&o.showLabels, "show-labels", false, "Show all labels as the last column")
	f.BoolVar(&o.showKind, "show-kind", false, "Prefix names with their resource type")
	f.StringSliceVarP(&o.labelColumns, "label-columns", "L", nil, "Label keys to show as columns (e.g. -L app,tier)")
	f.BoolVar(&o.ignoreNotFound, "ignore-not-found", false, "Do not report named objects that do not exist")
	f.StringSliceVarP(&o.filenames, "filename", "f", nil, "Get the objects described by these files or directories (- for stdin)")
	f.BoolVarP(&o.recursive, "recursive", "R", false, "Read directories given with -f recursively")
	f.StringVar(&o.sortBy, "sort-by", "", "Sort by a JSONPath field (e.g. --sort-by=.metadata.name, --sort-by=.status.podIP)")
	_ = cmd.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"yaml", "json", "name", "wide", "jsonpath=", "custom-columns="}, cobra.ShellCompDirectiveNoSpace
	})
	return cmd
}

func (o *getOptions) listOptions() metav1.ListOptions {
	return metav1.ListOptions{LabelSelector: o.selector, FieldSelector: o.fieldSelector}
}

func (o *getOptions) run(ctx context.Context, e *env, args []string) error {
	if _, err := e.client(); err != nil {
		return err
	}
	ns, err := e.ns()
	if err != nil {
		return err
	}
	if o.allNamespaces {
		ns = ""
	}
	var sels []*selection
	if len(o.filenames) > 0 {
		if len(args) > 0 {
			return fmt.Errorf("give either resource arguments or -f, not both")
		}
		sels, err = e.selectionsFromFiles(ctx, o.filenames, o.recursive)
	} else {
		sels, err = e.parseArgs(ctx, args)
	}
	if err != nil {
		return err
	}
	if len(sels) > 0 && namedCount(sels) > 0 && o.selector != "" {
		return fmt.Errorf("name cannot be provided when a selector (-l) is specified")
	}
	if o.watch || o.watchOnly {
		return o.runWatch(ctx, e, sels, ns)
	}
	if printer.IsTable(o.output) {
		return o.printTables(ctx, e, sels, ns)
	}
	p, err := printer.New(o.output, o.noHeaders)
	if err != nil {
		return err
	}
	return o.printObjects(ctx, e, p, sels, ns)
}

// selectionsFromFiles names the objects described by manifests.
func (e *env) selectionsFromFiles(ctx context.Context, files []string, recursive bool) ([]*selection, error) {
	docs, err := manifest.Read(files, recursive, e.streams.In)
	if err != nil {
		return nil, err
	}
	mp, err := e.discovery(ctx)
	if err != nil {
		return nil, err
	}
	var out []*selection
	for _, d := range docs {
		m, err := mp.forKind(d.Object.GroupVersionKind())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d, err)
		}
		if d.Object.GetName() == "" {
			return nil, fmt.Errorf("%s: metadata.name is not set", d)
		}
		ns := ""
		if m.Namespaced {
			ns = d.Object.GetNamespace()
		}
		if n := len(out); n > 0 && out[n-1].m == m && out[n-1].ns == ns {
			out[n-1].names = append(out[n-1].names, d.Object.GetName())
			continue
		}
		out = append(out, &selection{m: m, ns: ns, names: []string{d.Object.GetName()}})
	}
	return out, nil
}

func selNamespace(s *selection, ns string) string {
	if !s.m.Namespaced {
		return ""
	}
	if s.ns != "" {
		return s.ns
	}
	return ns
}

func (o *getOptions) printTables(ctx context.Context, e *env, sels []*selection, ns string) error {
	withKind := o.showKind || len(sels) > 1
	for _, s := range sels {
		withKind = withKind || s.category
	}
	out := e.streams.Out
	printed, failed := false, false
	for _, s := range sels {
		sns := selNamespace(s, ns)
		var t *metav1.Table
		if s.names == nil {
			var err error
			t, err = e.getTable(ctx, s.m, sns, "", o.listOptions(), o.sortBy != "")
			if err != nil {
				return err
			}
		} else {
			for _, name := range s.names {
				one, err := e.getTable(ctx, s.m, sns, name, metav1.ListOptions{}, o.sortBy != "")
				if err != nil {
					if apierrors.IsNotFound(err) && o.ignoreNotFound {
						continue
					}
					e.reportError(err)
					failed = true
					continue
				}
				if t == nil {
					t = one
				} else {
					t.Rows = append(t.Rows, one.Rows...)
				}
			}
		}
		if t == nil || len(t.Rows) == 0 {
			continue
		}
		if o.sortBy != "" {
			if err := sortRows(t, o.sortBy); err != nil {
				return err
			}
		}
		if printed {
			fmt.Fprintln(out)
		}
		opts := printer.TableOptions{Wide: o.output == "wide", NoHeaders: o.noHeaders,
			WithNamespace: o.allNamespaces && s.m.Namespaced, ShowLabels: o.showLabels, LabelColumns: o.labelColumns}
		if withKind {
			opts.Kind = s.m.KindString()
		}
		if err := printer.PrintTable(out, t, opts); err != nil {
			return err
		}
		printed = true
	}
	if failed {
		return errPrinted
	}
	if !printed && namedCount(sels) == 0 {
		e.noResources(sels, ns)
	}
	return nil
}

// noResources tells the user (on stderr, as kubectl does) that the
// listing was empty.
func (e *env) noResources(sels []*selection, ns string) {
	namespaced := false
	for _, s := range sels {
		namespaced = namespaced || s.m.Namespaced
	}
	if ns != "" && namespaced {
		fmt.Fprintf(e.streams.ErrOut, "No resources found in %s namespace.\n", ns)
		return
	}
	fmt.Fprintln(e.streams.ErrOut, "No resources found")
}

func (o *getOptions) collect(ctx context.Context, e *env, sels []*selection, ns string) ([]*unstructured.Unstructured, bool, error) {
	var objs []*unstructured.Unstructured
	failed := false
	for _, s := range sels {
		sns := selNamespace(s, ns)
		if s.names == nil {
			items, _, err := e.listObjects(ctx, s.m, sns, o.listOptions())
			if err != nil {
				return nil, false, err
			}
			objs = append(objs, items...)
			continue
		}
		for _, name := range s.names {
			obj, err := e.getObject(ctx, s.m, sns, name)
			if err != nil {
				if apierrors.IsNotFound(err) && o.ignoreNotFound {
					continue
				}
				e.reportError(err)
				failed = true
				continue
			}
			objs = append(objs, obj)
		}
	}
	return objs, failed, nil
}

func (o *getOptions) printObjects(ctx context.Context, e *env, p printer.ObjectPrinter, sels []*selection, ns string) error {
	objs, failed, err := o.collect(ctx, e, sels, ns)
	if err != nil {
		return err
	}
	if o.sortBy != "" {
		if err := sortObjects(objs, o.sortBy); err != nil {
			return err
		}
	}
	single := len(sels) == 1 && namedCount(sels) == 1
	if len(objs) == 0 {
		if failed {
			return errPrinted
		}
		if single {
			return nil
		}
		switch p.(type) {
		case printer.NamePrinter, *printer.CustomColumns:
			e.noResources(sels, ns)
			return nil
		}
	}
	if err := p.Print(e.streams.Out, objs, single); err != nil {
		return err
	}
	if failed {
		return errPrinted
	}
	return nil
}

func (o *getOptions) runWatch(ctx context.Context, e *env, sels []*selection, ns string) error {
	if len(sels) != 1 {
		return fmt.Errorf("watch is only supported on one resource type at a time (got %d)", len(sels))
	}
	s := sels[0]
	sns := selNamespace(s, ns)
	opts := o.listOptions()
	if len(s.names) > 1 {
		return fmt.Errorf("watch is only supported on one object or on a collection, not %d named objects", len(s.names))
	}
	if len(s.names) == 1 {
		opts.FieldSelector = fields.OneTermEqualSelector("metadata.name", s.names[0]).String()
	}
	table := printer.IsTable(o.output)
	out := e.streams.Out
	var rv string
	if table {
		tw := printer.NewTableWriter(out, printer.TableOptions{Wide: o.output == "wide", NoHeaders: o.noHeaders,
			WithNamespace: o.allNamespaces && s.m.Namespaced, ShowLabels: o.showLabels, LabelColumns: o.labelColumns})
		t, err := e.getTable(ctx, s.m, sns, "", opts, false)
		if err != nil {
			return err
		}
		rv = t.ResourceVersion
		if !o.watchOnly {
			if err := tw.Write(t); err != nil {
				return err
			}
		} else {
			// Keep the column shape for the events (the first event
			// would carry it too).
			t.Rows = nil
		}
		return watchLoop(ctx, e, s.m, sns, metav1.ListOptions{LabelSelector: opts.LabelSelector, FieldSelector: opts.FieldSelector, ResourceVersion: rv}, true,
			func(ev watch.Event) error {
				tbl, ok := ev.Object.(*metav1.Table)
				if !ok {
					return fmt.Errorf("watch event carries %T, not a Table", ev.Object)
				}
				return tw.Write(tbl)
			})
	}
	p, err := printer.New(o.output, o.noHeaders)
	if err != nil {
		return err
	}
	objs, rv, err := e.listObjects(ctx, s.m, sns, opts)
	if err != nil {
		return err
	}
	first := true
	emit := func(obj *unstructured.Unstructured) error {
		if o.output == "yaml" && !first {
			fmt.Fprintln(out, "---")
		}
		first = false
		return p.Print(out, []*unstructured.Unstructured{obj}, true)
	}
	if !o.watchOnly {
		for _, obj := range objs {
			if err := emit(obj); err != nil {
				return err
			}
		}
	}
	return watchLoop(ctx, e, s.m, sns, metav1.ListOptions{LabelSelector: opts.LabelSelector, FieldSelector: opts.FieldSelector, ResourceVersion: rv}, false,
		func(ev watch.Event) error {
			u, ok := ev.Object.(*unstructured.Unstructured)
			if !ok {
				return fmt.Errorf("watch event carries %T", ev.Object)
			}
			return emit(u)
		})
}

// watchLoop delivers ADDED/MODIFIED/DELETED events until the context ends
// (Ctrl-C) or the server closes the watch.
func watchLoop(ctx context.Context, e *env, m *mapping, ns string, opts metav1.ListOptions, table bool, fn func(watch.Event) error) error {
	w, err := e.watchObjects(ctx, m, ns, opts, table)
	if err != nil {
		return err
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return nil
			}
			switch ev.Type {
			case watch.Error:
				if st, ok := ev.Object.(*metav1.Status); ok {
					return &apierrors.StatusError{ErrStatus: *st}
				}
				return fmt.Errorf("watch failed: %v", ev.Object)
			case watch.Bookmark:
				continue
			}
			if err := fn(ev); err != nil {
				return err
			}
		}
	}
}

// sortRows orders table rows by a JSONPath into each row's object.
func sortRows(t *metav1.Table, expr string) error {
	tmpl, err := sortTemplate(expr)
	if err != nil {
		return err
	}
	keys := make([]any, len(t.Rows))
	for i, r := range t.Rows {
		var obj any
		if len(r.Object.Raw) > 0 {
			d := json.NewDecoder(strings.NewReader(string(r.Object.Raw)))
			d.UseNumber()
			if err := d.Decode(&obj); err != nil {
				return err
			}
		}
		keys[i] = sortKey(tmpl, obj)
	}
	idx := make([]int, len(t.Rows))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return lessValue(keys[idx[a]], keys[idx[b]]) })
	rows := make([]metav1.TableRow, len(t.Rows))
	for i, j := range idx {
		rows[i] = t.Rows[j]
	}
	t.Rows = rows
	return nil
}

func sortObjects(objs []*unstructured.Unstructured, expr string) error {
	tmpl, err := sortTemplate(expr)
	if err != nil {
		return err
	}
	keys := map[*unstructured.Unstructured]any{}
	for _, o := range objs {
		g, err := printer.ToGeneric(o.Object)
		if err != nil {
			return err
		}
		keys[o] = sortKey(tmpl, g)
	}
	sort.SliceStable(objs, func(a, b int) bool { return lessValue(keys[objs[a]], keys[objs[b]]) })
	return nil
}

func sortTemplate(expr string) (*jsonpath.Template, error) {
	rel, err := jsonpath.Relaxed(expr)
	if err != nil {
		return nil, fmt.Errorf("--sort-by: %w", err)
	}
	t, err := jsonpath.Parse(rel)
	if err != nil {
		return nil, fmt.Errorf("--sort-by: %w", err)
	}
	return t, nil
}

func sortKey(t *jsonpath.Template, obj any) any {
	vals, err := t.Results(obj)
	if err != nil || len(vals) == 0 {
		return nil
	}
	return vals[0]
}

// lessValue orders missing values first, numbers numerically, the rest
// as text.
func lessValue(a, b any) bool {
	if a == nil || b == nil {
		return a == nil && b != nil
	}
	an, aok := a.(json.Number)
	bn, bok := b.(json.Number)
	if aok && bok {
		af, _ := an.Float64()
		bf, _ := bn.Float64()
		return af < bf
	}
	as, _ := jsonpath.Format(a)
	bs, _ := jsonpath.Format(b)
	return as < bs
}

// completeResources completes resource types, then names of objects.
func (e *env) completeResources(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	e.streams.ErrOut = io.Discard
	mp, err := e.discovery(ctx)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	if len(args) == 0 {
		var out []string
		for _, m := range mp.all {
			if strings.HasPrefix(m.Resource, toComplete) {
				out = append(out, m.Resource)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
	m, err := mp.resource(args[0])
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ns, err := e.ns()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	items, _, err := e.listObjects(ctx, m, nsIf(m, ns), metav1.ListOptions{})
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, it := range items {
		if strings.HasPrefix(it.GetName(), toComplete) {
			out = append(out, it.GetName())
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
