package ctl

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/minik8s/minik8s/ctl/apply"
	"github.com/minik8s/minik8s/ctl/printer"
)

type createOptions struct {
	files      fileFlags
	dryRun     dryRunFlag
	output     string
	saveConfig bool
}

func newCreateCommand(e *env) *cobra.Command {
	o := &createOptions{}
	cmd := &cobra.Command{
		Use:   "create -f FILENAME",
		Short: "Create a resource from a file or from stdin",
		Long: `Create the objects described by files (JSON or YAML, several documents per file
allowed). Unlike apply, create fails for objects that already exist.

Subcommands create common objects without a file: namespace, deployment,
configmap, secret generic.`,
		Example: examples(`
# create what a file describes
ctl create -f examples/deployment.yaml

# create, and record the configuration so a later apply can remove fields
ctl create -f web.yaml --save-config

# a namespace and a deployment, without files
ctl create namespace shop
ctl create deployment web --image=nginx:1.14.2 --replicas=3 --port=80`),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(o.files.filenames) == 0 {
				return usageError(cmd, "must specify -f (a file, directory or - for stdin), or use a subcommand such as `ctl create namespace NAME`")
			}
			if err := o.dryRun.check(); err != nil {
				return err
			}
			return o.run(cmd.Context(), e)
		},
	}
	o.files.add(cmd, "that contain the objects to create")
	o.dryRun.add(cmd)
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "Print the created objects: "+printer.Formats)
	cmd.Flags().BoolVar(&o.saveConfig, "save-config", false, "Store the configuration in the last-applied annotation, so later `ctl apply` runs can remove fields")
	cmd.AddCommand(newCreateNamespaceCommand(e), newCreateDeploymentCommand(e), newCreateConfigMapCommand(e), newCreateSecretCommand(e))
	return cmd
}

func (o *createOptions) run(ctx context.Context, e *env) error {
	objs, err := e.readObjects(ctx, &o.files, false)
	if err != nil {
		return err
	}
	fv, _ := o.files.fieldValidation()
	rp, err := e.newResultPrinter(o.output)
	if err != nil {
		return err
	}
	failed := false
	for _, fo := range objs {
		obj := fo.obj
		if o.saveConfig {
			mod, err := apply.Modified(obj)
			if err == nil {
				obj, err = decodeObject(mod)
			}
			if err != nil {
				return err
			}
		}
		out := obj
		if !o.dryRun.client() {
			out, err = e.createObject(ctx, fo.m, fo.ns, obj, writeOpts{dryRun: o.dryRun.server(), fieldValidation: fv})
			if err != nil {
				e.reportError(&objError{action: "creating", where: fo.where(), err: err})
				failed = true
				continue
			}
		}
		rp.done(printer.ResourceName(fo.m.GVK(), out.GetName()), "created"+o.dryRun.suffix(), out)
	}
	if err := rp.flush(); err != nil {
		return err
	}
	if failed {
		return errPrinted
	}
	return nil
}

// generated is the shared tail of the `create <kind>` subcommands.
type generated struct {
	dryRun dryRunFlag
	output string
}

func (g *generated) add(cmd *cobra.Command) {
	g.dryRun.add(cmd)
	cmd.Flags().StringVarP(&g.output, "output", "o", "", "Print the object: "+printer.Formats)
}

func (g *generated) create(ctx context.Context, e *env, resource string, obj map[string]any) error {
	if err := g.dryRun.check(); err != nil {
		return err
	}
	if _, err := e.client(); err != nil {
		return err
	}
	mp, err := e.discovery(ctx)
	if err != nil {
		return err
	}
	m, err := mp.resource(resource)
	if err != nil {
		return err
	}
	u := &unstructured.Unstructured{Object: obj}
	u.SetAPIVersion(m.GroupVersion().String())
	u.SetKind(m.Kind)
	ns := ""
	if m.Namespaced {
		if ns, err = e.ns(); err != nil {
			return err
		}
		u.SetNamespace(ns)
	}
	out := u
	if !g.dryRun.client() {
		out, err = e.createObject(ctx, m, ns, u, writeOpts{dryRun: g.dryRun.server(), fieldValidation: "Strict"})
		if err != nil {
			return err
		}
	}
	rp, err := e.newResultPrinter(g.output)
	if err != nil {
		return err
	}
	rp.done(printer.ResourceName(m.GVK(), out.GetName()), "created"+g.dryRun.suffix(), out)
	return rp.flush()
}

func newCreateNamespaceCommand(e *env) *cobra.Command {
	g := &generated{}
	cmd := &cobra.Command{
		Use:     "namespace NAME",
		Aliases: []string{"ns"},
		Short:   "Create a namespace with the given name",
		Example: examples(`
ctl create namespace shop`),
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.create(cmd.Context(), e, "namespaces", map[string]any{"metadata": map[string]any{"name": args[0]}})
		},
	}
	g.add(cmd)
	return cmd
}

func newCreateDeploymentCommand(e *env) *cobra.Command {
	g := &generated{}
	var images []string
	var replicas int32
	var port int32
	cmd := &cobra.Command{
		Use:     "deployment NAME --image=IMAGE [--replicas=N] [--port=PORT] [-- COMMAND [ARGS...]]",
		Aliases: []string{"deploy"},
		Short:   "Create a deployment with the given name",
		Long: `Create a Deployment running the given image(s). Its pods are labelled app=NAME,
which is also the selector; each container is named after its image.`,
		Example: examples(`
# one nginx pod
ctl create deployment web --image=nginx:1.14.2

# three replicas exposing port 80, then a service in front of them
ctl create deployment web --image=nginx:1.14.2 --replicas=3 --port=80
ctl expose deployment web --port=80`),
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(images) == 0 {
				return usageError(cmd, "--image is required")
			}
			name := args[0]
			var containers []any
			for _, img := range images {
				c := map[string]any{"name": containerNameFor(img), "image": img}
				if port > 0 {
					c["ports"] = []any{map[string]any{"containerPort": int64(port)}}
				}
				if len(args) > 1 && len(images) == 1 {
					c["command"] = toAny(args[1:])
				}
				containers = append(containers, c)
			}
			labels := map[string]any{"app": name}
			obj := map[string]any{
				"metadata": map[string]any{"name": name, "labels": labels},
				"spec": map[string]any{
					"replicas": int64(replicas),
					"selector": map[string]any{"matchLabels": labels},
					"template": map[string]any{
						"metadata": map[string]any{"labels": labels},
						"spec":     map[string]any{"containers": containers},
					},
				},
			}
			return g.create(cmd.Context(), e, "deployments.apps", obj)
		},
	}
	cmd.Flags().StringSliceVar(&images, "image", nil, "Image(s) to run (one container each)")
	cmd.Flags().Int32Var(&replicas, "replicas", 1, "Number of replicas")
	cmd.Flags().Int32Var(&port, "port", 0, "The port the containers expose")
	g.add(cmd)
	return cmd
}

// containerNameFor derives a container name from an image reference:
// "registry:5000/team/nginx:1.14@sha256:.." → "nginx".
func containerNameFor(image string) string {
	n := image
	if i := strings.LastIndexByte(n, '/'); i >= 0 {
		n = n[i+1:]
	}
	if i := strings.IndexAny(n, ":@"); i >= 0 {
		n = n[:i]
	}
	n = strings.ToLower(strings.Map(func(r rune) rune {
		if r == '.' || r == '_' {
			return '-'
		}
		return r
	}, n))
	if n == "" {
		return "main"
	}
	return n
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// fromSources reads --from-literal=k=v and --from-file=[key=]path.
func fromSources(literals, files []string) (map[string]string, error) {
	data := map[string]string{}
	for _, l := range literals {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--from-literal %q: want KEY=VALUE", l)
		}
		if _, dup := data[k]; dup {
			return nil, fmt.Errorf("--from-literal: key %q given twice", k)
		}
		data[k] = v
	}
	for _, f := range files {
		key, path, ok := strings.Cut(f, "=")
		if !ok {
			key, path = filepath.Base(f), f
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("--from-file: %w", err)
		}
		if _, dup := data[key]; dup {
			return nil, fmt.Errorf("--from-file: key %q given twice", key)
		}
		data[key] = string(b)
	}
	return data, nil
}

func newCreateConfigMapCommand(e *env) *cobra.Command {
	g := &generated{}
	var literals, files []string
	cmd := &cobra.Command{
		Use:     "configmap NAME [--from-literal=KEY=VALUE] [--from-file=[KEY=]PATH]",
		Aliases: []string{"cm"},
		Short:   "Create a config map from literal values or files",
		Example: examples(`
ctl create configmap game-config --from-literal=lives=3 --from-file=ui.properties`),
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := fromSources(literals, files)
			if err != nil {
				return err
			}
			d := map[string]any{}
			for k, v := range data {
				d[k] = v
			}
			return g.create(cmd.Context(), e, "configmaps", map[string]any{"metadata": map[string]any{"name": args[0]}, "data": d})
		},
	}
	cmd.Flags().StringArrayVar(&literals, "from-literal", nil, "A KEY=VALUE pair (repeatable)")
	cmd.Flags().StringArrayVar(&files, "from-file", nil, "A file whose content becomes the value of KEY (default: its base name); repeatable")
	g.add(cmd)
	return cmd
}

func newCreateSecretCommand(e *env) *cobra.Command {
	g := &generated{}
	var literals, files []string
	var typ string
	generic := &cobra.Command{
		Use:   "generic NAME [--type=TYPE] [--from-literal=KEY=VALUE] [--from-file=[KEY=]PATH]",
		Short: "Create a secret from literal values or files",
		Example: examples(`
ctl create secret generic db-user-pass --from-literal=username=admin --from-literal=password='S!B\*d$zDsb='`),
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := fromSources(literals, files)
			if err != nil {
				return err
			}
			d := map[string]any{}
			for k, v := range data {
				d[k] = base64.StdEncoding.EncodeToString([]byte(v))
			}
			obj := map[string]any{"metadata": map[string]any{"name": args[0]}, "data": d}
			if typ != "" {
				obj["type"] = typ
			}
			return g.create(cmd.Context(), e, "secrets", obj)
		},
	}
	generic.Flags().StringArrayVar(&literals, "from-literal", nil, "A KEY=VALUE pair (repeatable)")
	generic.Flags().StringArrayVar(&files, "from-file", nil, "A file whose content becomes the value of KEY (default: its base name); repeatable")
	generic.Flags().StringVar(&typ, "type", "", "The secret type (default Opaque)")
	g.add(generic)
	cmd := &cobra.Command{
		Use:   "secret",
		Short: "Create a secret (subcommand: generic)",
		Example: examples(`
ctl create secret generic db --from-literal=password=s3cret`),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError(cmd, "name the kind of secret: `ctl create secret generic NAME ...`")
		},
	}
	cmd.AddCommand(generic)
	return cmd
}

// exactArgs is cobra.ExactArgs with a message naming what is missing.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError(cmd, "expected %s (%d argument%s), got %d: %s", what, n, plural(n), len(args), strconv.Quote(strings.Join(args, " ")))
		}
		return nil
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
