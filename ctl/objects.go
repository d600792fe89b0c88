package ctl

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/minik8s/minik8s/api/scheme"
	"github.com/minik8s/minik8s/ctl/manifest"
	"github.com/minik8s/minik8s/ctl/printer"
)

// fileObject is an object read from -f with the resource that serves it.
type fileObject struct {
	doc   *manifest.Doc
	obj   *unstructured.Unstructured
	m     *mapping
	ns    string         // effective namespace; "" for cluster-scoped kinds
	typed runtime.Object // an empty object of its Go type, nil if unknown
}

func (f *fileObject) name() string { return printer.ResourceName(f.m.GVK(), f.obj.GetName()) }

// where names the object's origin for errors.
func (f *fileObject) where() string {
	if f.doc == nil {
		return ""
	}
	return fmt.Sprintf("%q (document %d)", f.doc.Source, f.doc.Index)
}

// fileFlags are the -f/-R/--validate flags of the commands reading
// manifests.
type fileFlags struct {
	filenames []string
	recursive bool
	validate  string
}

func (ff *fileFlags) add(cmd *cobra.Command, what string) {
	f := cmd.Flags()
	f.StringSliceVarP(&ff.filenames, "filename", "f", nil, "Files or directories (.yaml, .yml, .json) "+what+"; - reads stdin")
	f.BoolVarP(&ff.recursive, "recursive", "R", false, "Read directories given with -f recursively")
	f.StringVar(&ff.validate, "validate", "strict", "strict: reject unknown or duplicate fields (checked locally and by the server); warn: let the server warn; ignore (or false): no checks")
	f.Lookup("validate").NoOptDefVal = "strict"
}

// fieldValidation maps --validate to the server's fieldValidation.
func (ff *fileFlags) fieldValidation() (string, error) {
	switch ff.validate {
	case "strict", "true":
		return "Strict", nil
	case "warn":
		return "Warn", nil
	case "ignore", "false":
		return "Ignore", nil
	}
	return "", fmt.Errorf("--validate must be strict, warn or ignore, not %q", ff.validate)
}

// readObjects reads the manifests, resolves every object's resource and
// namespace, and (with --validate=strict) checks known kinds strictly. Any
// problem stops everything before a single write, so a broken file never
// half-applies.
func (e *env) readObjects(ctx context.Context, ff *fileFlags, needName bool) ([]*fileObject, error) {
	if len(ff.filenames) == 0 {
		return nil, errors.New("must specify -f with a file, a directory, or - for stdin")
	}
	if _, err := ff.fieldValidation(); err != nil {
		return nil, err
	}
	docs, err := manifest.Read(ff.filenames, ff.recursive, e.streams.In)
	if err != nil {
		return nil, err
	}
	if len(docs) == 0 {
		return nil, errors.New("no objects passed to the command (the files hold no documents)")
	}
	if _, err := e.client(); err != nil {
		return nil, err
	}
	mp, err := e.discovery(ctx)
	if err != nil {
		return nil, err
	}
	defNS, err := e.ns()
	if err != nil {
		return nil, err
	}
	var out []*fileObject
	var errs []error
	for _, d := range docs {
		fo := &fileObject{doc: d, obj: d.Object}
		fo.m, err = mp.forKind(d.Object.GroupVersionKind())
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", d.Pos(), err))
			continue
		}
		if needName && d.Object.GetName() == "" {
			errs = append(errs, &manifest.Error{Source: d.Source, Line: d.LineOf("metadata"), Index: d.Index,
				Field: "metadata.name", Msg: "required: every object needs a name"})
			continue
		}
		if fo.m.Namespaced {
			ns := d.Object.GetNamespace()
			switch {
			case ns == "":
				ns = defNS
				d.Object.SetNamespace(ns)
			case e.namespace != "" && ns != e.namespace:
				errs = append(errs, fmt.Errorf("%s: the namespace from the provided object %q does not match the namespace %q; pass --namespace=%s or change the file",
					d, ns, e.namespace, ns))
				continue
			}
			fo.ns = ns
		}
		if t, err := scheme.Scheme.New(fo.m.GVK()); err == nil {
			fo.typed = t
		}
		if ff.validate == "strict" || ff.validate == "true" {
			if _, err := d.Check(scheme.StrictCodecs.UniversalDeserializer()); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		out = append(out, fo)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("nothing was changed; fix these first:\n%w", errors.Join(errs...))
	}
	return out, nil
}

// dryRunFlag is --dry-run=none|client|server.
type dryRunFlag struct{ value string }

func (d *dryRunFlag) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&d.value, "dry-run", "none", `"none", "client" (only print what would be sent) or "server" (the server runs every check but stores nothing)`)
	cmd.Flags().Lookup("dry-run").NoOptDefVal = "client"
}

func (d *dryRunFlag) check() error {
	switch d.value {
	case "none", "client", "server", "":
		return nil
	}
	return fmt.Errorf("--dry-run must be none, client or server, not %q", d.value)
}

func (d *dryRunFlag) client() bool { return d.value == "client" }
func (d *dryRunFlag) server() bool { return d.value == "server" }

// suffix is what kubectl appends to messages in dry-run mode.
func (d *dryRunFlag) suffix() string {
	switch d.value {
	case "client":
		return " (dry run)"
	case "server":
		return " (server dry run)"
	}
	return ""
}

// resultPrinter prints the outcome of writes: "deployment.apps/web
// created" by default, or the objects with -o.
type resultPrinter struct {
	e      *env
	output string
	p      printer.ObjectPrinter
	objs   []*unstructured.Unstructured
}

func (e *env) newResultPrinter(output string) (*resultPrinter, error) {
	rp := &resultPrinter{e: e, output: output}
	if output != "" {
		p, err := printer.New(output, false)
		if err != nil {
			return nil, err
		}
		rp.p = p
	}
	return rp, nil
}

// done reports one object: with -o name it prints the name at once; other
// formats collect the objects for flush.
func (rp *resultPrinter) done(name, verb string, obj *unstructured.Unstructured) {
	switch {
	case rp.p == nil:
		fmt.Fprintf(rp.e.streams.Out, "%s %s\n", name, verb)
	case rp.output == "name":
		fmt.Fprintln(rp.e.streams.Out, name)
	default:
		if obj != nil {
			rp.objs = append(rp.objs, obj)
		}
	}
}

func (rp *resultPrinter) flush() error {
	if rp.p == nil || rp.output == "name" || len(rp.objs) == 0 {
		return nil
	}
	return rp.p.Print(rp.e.streams.Out, rp.objs, len(rp.objs) == 1)
}

// readDocsLocal reads -f manifests without contacting the server.
func readDocsLocal(e *env, ff fileFlags) ([]*unstructured.Unstructured, error) {
	docs, err := manifest.Read(ff.filenames, ff.recursive, e.streams.In)
	if err != nil {
		return nil, err
	}
	out := make([]*unstructured.Unstructured, len(docs))
	for i, d := range docs {
		out[i] = d.Object
	}
	return out, nil
}
