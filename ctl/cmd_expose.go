package ctl

import (
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/spf13/cobra"

	"github.com/minik8s/minik8s/ctl/printer"
)

type exposeOptions struct {
	files      fileFlags
	port       string
	targetPort string
	protocol   string
	name       string
	typ        string
	selector   string
	labels     string
	externalIP string
	portName   string
	clusterIP  string
	dryRun     dryRunFlag
	output     string
}

func newExposeCommand(e *env) *cobra.Command {
	o := &exposeOptions{}
	cmd := &cobra.Command{
		Use:   "expose (-f FILENAME | TYPE NAME) [--port=port] [--protocol=TCP|UDP|SCTP] [--target-port=number-or-name] [--name=name] [--type=type]",
		Short: "Take a deployment, replica set, pod or service and expose it as a new Kubernetes service",
		Long: `Create a Service in front of existing pods. The selector is taken from the
object: a deployment's or replica set's selector (matchLabels only), a pod's
labels, or another service's selector. Without --port the ports are the
containers' ports (several ports get the names port-1, port-2 ...).`,
		Example: examples(`
# a cluster IP service on port 80 for the web deployment's pods
ctl expose deployment web --port=80 --target-port=8080

# reachable on every node's port too
ctl expose deployment web --type=NodePort --name=web-public

# a pod's container ports under another name
ctl expose pod web-1 --name=web-debug`),
		ValidArgsFunction: e.completeResources,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.dryRun.check(); err != nil {
				return err
			}
			return o.run(cmd, e, args)
		},
	}
	f := cmd.Flags()
	f.StringSliceVarP(&o.files.filenames, "filename", "f", nil, "Expose the objects these files define")
	f.StringVar(&o.port, "port", "", "The port the service serves on (default: the containers' ports)")
	f.StringVar(&o.targetPort, "target-port", "", "The container port (number or name) traffic goes to (default: --port, or the container port)")
	f.StringVar(&o.protocol, "protocol", "", "TCP (default), UDP or SCTP")
	f.StringVar(&o.name, "name", "", "The service's name (default: the object's)")
	f.StringVar(&o.typ, "type", "", "ClusterIP (default), NodePort, LoadBalancer or ExternalName")
	f.StringVar(&o.selector, "selector", "", "The selector (default: taken from the object), e.g. app=web")
	f.StringVarP(&o.labels, "labels", "l", "", "Labels of the service (default: the object's)")
	f.StringVar(&o.externalIP, "external-ip", "", "An external IP the service also answers on")
	f.StringVar(&o.portName, "port-name", "", "Name of the port (when there is one)")
	f.StringVar(&o.clusterIP, "cluster-ip", "", "A cluster IP to ask for; \"None\" makes a headless service")
	o.dryRun.add(cmd)
	f.StringVarP(&o.output, "output", "o", "", "Print the service: "+printer.Formats)
	return cmd
}

func (o *exposeOptions) run(cmd *cobra.Command, e *env, args []string) error {
	ctx := cmd.Context()
	targets, err := e.resolveTargets(ctx, cmd, args, o.files, "", "", false, false)
	if err != nil {
		return err
	}
	if len(targets) != 1 && o.name != "" {
		return fmt.Errorf("--name works with one object, not %d", len(targets))
	}
	mp, err := e.discovery(ctx)
	if err != nil {
		return err
	}
	svcM, err := mp.resource("services")
	if err != nil {
		return err
	}
	rp, err := e.newResultPrinter(o.output)
	if err != nil {
		return err
	}
	failed := false
	for _, t := range targets {
		src, err := e.getObject(ctx, t.m, t.ns, t.name)
		if err != nil {
			e.reportError(err)
			failed = true
			continue
		}
		svc, err := o.service(src)
		if err != nil {
			e.reportError(fmt.Errorf("cannot expose %s: %w", printer.ResourceName(t.m.GVK(), t.name), err))
			failed = true
			continue
		}
		svc.SetNamespace(t.ns)
		out := svc
		if !o.dryRun.client() {
			out, err = e.createObject(ctx, svcM, t.ns, svc, writeOpts{dryRun: o.dryRun.server(), fieldValidation: "Strict"})
			if err != nil {
				e.reportError(err)
				failed = true
				continue
			}
		}
		rp.done("service/"+svc.GetName(), "exposed"+o.dryRun.suffix(), out)
	}
	if err := rp.flush(); err != nil {
		return err
	}
	if failed {
		return errPrinted
	}
	return nil
}

// service builds the Service for a source object.
func (o *exposeOptions) service(src *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	var selector map[string]string
	var podSpecPath []string
	var err error
	switch src.GetKind() {
	case "Deployment", "ReplicaSet":
		if _, ok, _ := unstructured.NestedSlice(src.Object, "spec", "selector", "matchExpressions"); ok && o.selector == "" {
			return nil, fmt.Errorf("its selector has matchExpressions, which a Service cannot use; pass --selector")
		}
		selector, _, err = unstructured.NestedStringMap(src.Object, "spec", "selector", "matchLabels")
		podSpecPath = []string{"spec", "template", "spec"}
	case "Pod":
		selector = src.GetLabels()
		podSpecPath = []string{"spec"}
	case "Service":
		selector, _, err = unstructured.NestedStringMap(src.Object, "spec", "selector")
	default:
		return nil, fmt.Errorf("expose works on deployments, replica sets, pods and services, not %s", src.GetKind())
	}
	if err != nil {
		return nil, err
	}
	if o.selector != "" {
		sel, err := labels.ConvertSelectorToLabelsMap(o.selector)
		if err != nil {
			return nil, fmt.Errorf("--selector: %w", err)
		}
		selector = sel
	}
	if len(selector) == 0 {
		return nil, fmt.Errorf("found no selector to use (the %s has no labels/selector); pass --selector", strings.ToLower(src.GetKind()))
	}
	ports, err := o.ports(src, podSpecPath)
	if err != nil {
		return nil, err
	}
	name := o.name
	if name == "" {
		name = src.GetName()
	}
	svcLabels := src.GetLabels()
	if o.labels != "" {
		l, err := labels.ConvertSelectorToLabelsMap(o.labels)
		if err != nil {
			return nil, fmt.Errorf("--labels: %w", err)
		}
		svcLabels = l
	}
	spec := map[string]any{"selector": toAnyMap(selector), "ports": ports}
	if o.typ != "" {
		switch o.typ {
		case "ClusterIP", "NodePort", "LoadBalancer", "ExternalName":
		default:
			return nil, fmt.Errorf("--type must be ClusterIP, NodePort, LoadBalancer or ExternalName, not %q", o.typ)
		}
		spec["type"] = o.typ
	}
	if o.externalIP != "" {
		spec["externalIPs"] = []any{o.externalIP}
	}
	if o.clusterIP != "" {
		spec["clusterIP"] = o.clusterIP
	}
	md := map[string]any{"name": name}
	if len(svcLabels) > 0 {
		md["labels"] = toAnyMap(svcLabels)
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Service", "metadata": md, "spec": spec,
	}}, nil
}

func toAnyMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// ports are the service ports: --port, else the containers' (or the
// source service's) ports.
func (o *exposeOptions) ports(src *unstructured.Unstructured, podSpecPath []string) ([]any, error) {
	proto := o.protocol
	if proto != "" && proto != "TCP" && proto != "UDP" && proto != "SCTP" {
		return nil, fmt.Errorf("--protocol must be TCP, UDP or SCTP, not %q", proto)
	}
	target := func(def any) any {
		if o.targetPort == "" {
			return def
		}
		if n, err := strconv.Atoi(o.targetPort); err == nil {
			return int64(n)
		}
		return o.targetPort
	}
	if o.port != "" {
		n, err := strconv.Atoi(o.port)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("--port %q is not a port number", o.port)
		}
		p := map[string]any{"port": int64(n), "targetPort": target(int64(n)), "protocol": orString(proto, "TCP")}
		if o.portName != "" {
			p["name"] = o.portName
		}
		return []any{p}, nil
	}
	type cport struct {
		port  int64
		proto string
	}
	var found []cport
	if podSpecPath == nil { // a service: reuse its ports
		list, _, _ := unstructured.NestedSlice(src.Object, "spec", "ports")
		for _, p := range list {
			pm := p.(map[string]any)
			n, _ := pm["port"].(int64)
			pr, _ := pm["protocol"].(string)
			found = append(found, cport{n, pr})
		}
	} else {
		cs, _, _ := unstructured.NestedSlice(src.Object, append(podSpecPath, "containers")...)
		for _, c := range cs {
			ps, _, _ := unstructured.NestedSlice(c.(map[string]any), "ports")
			for _, p := range ps {
				pm := p.(map[string]any)
				n, _ := pm["containerPort"].(int64)
				pr, _ := pm["protocol"].(string)
				found = append(found, cport{n, pr})
			}
		}
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("couldn't find a port: its containers declare none; pass --port")
	}
	var out []any
	for i, f := range found {
		p := map[string]any{"port": f.port, "targetPort": target(f.port), "protocol": orString(proto, orString(f.proto, "TCP"))}
		if len(found) > 1 {
			p["name"] = fmt.Sprintf("port-%d", i+1)
		} else if o.portName != "" {
			p["name"] = o.portName
		}
		out = append(out, p)
	}
	return out, nil
}

func orString(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
