package ctl

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/client/stream"
)

type portForwardOptions struct {
	addresses []string
}

func newPortForwardCommand(e *env) *cobra.Command {
	o := &portForwardOptions{}
	cmd := &cobra.Command{
		Use:   "port-forward (POD | TYPE/NAME) [LOCAL_PORT:]REMOTE_PORT [...[LOCAL_PORT_N:]REMOTE_PORT_N]",
		Short: "Forward one or more local ports to a pod",
		Long: `Listen on local ports and forward each connection to a port of a pod, through
the API server and the pod's kubelet (POST
/api/v1/namespaces/{ns}/pods/{name}/portforward, upgraded to a SPDY
connection that the kubelet hands to the container runtime, which connects
inside the pod's network namespace). Runs until Ctrl-C, or until the
connection to the pod is lost.

REMOTE_PORT is a number or the name of a container port. LOCAL_PORT
defaults to REMOTE_PORT's number; ":REMOTE_PORT" (empty LOCAL_PORT) picks a
free local port. For svc/NAME, REMOTE_PORT is a port of the Service (number
or name): ctl picks one of its pods and forwards to the port the Service
targets there. deploy/NAME, rs/NAME pick one of their pods.

Like kubectl, ctl prints "Forwarding from ADDRESS:LOCAL -> REMOTE" for each
port once it listens, and "Handling connection for LOCAL" for each
connection.`,
		Example: examples(`
# local 8080 to the pod's 8080
ctl port-forward pod/web-7d9f8-abcde 8080

# local 9000 to the container port named http of a deployment's pod
ctl port-forward deploy/web 9000:http

# a random local port to the Service's port 80 (its pod's targetPort)
ctl port-forward svc/web :80

# listen on every address, not only 127.0.0.1
ctl port-forward --address 0.0.0.0 pod/web-7d9f8-abcde 8080:8080`),
		ValidArgsFunction: e.completePods,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return usageError(cmd, "give a pod (or TYPE/NAME) and at least one [LOCAL_PORT:]REMOTE_PORT")
			}
			specs, err := parsePortSpecs(args[1:])
			if err != nil {
				return usageError(cmd, "%v", err)
			}
			return o.run(cmd.Context(), e, args[0], specs)
		},
	}
	cmd.Flags().StringSliceVar(&o.addresses, "address", []string{"127.0.0.1"},
		"Addresses to listen on (comma-separated IPs, or localhost for 127.0.0.1 and ::1)")
	return cmd
}

// portSpec is one [LOCAL:]REMOTE argument; remote is a number or a name.
type portSpec struct {
	arg      string
	local    string // "" = same number as remote; "0" = any free port
	remote   string
	explicit bool // LOCAL: was given (maybe empty)
}

func parsePortSpecs(args []string) ([]portSpec, error) {
	var out []portSpec
	for _, a := range args {
		s := portSpec{arg: a}
		if l, r, ok := strings.Cut(a, ":"); ok {
			s.local, s.remote, s.explicit = l, r, true
			if l == "" {
				s.local = "0" // ":80" picks a free local port
			}
		} else {
			s.remote = a
		}
		bad := fmt.Errorf("%q is not [LOCAL_PORT:]REMOTE_PORT (ports 1-65535, REMOTE_PORT may be a port name)", a)
		if s.explicit {
			if n, err := strconv.Atoi(s.local); err != nil || n < 0 || n > 65535 {
				return nil, bad
			}
		}
		if n, err := strconv.Atoi(s.remote); err != nil {
			if s.remote == "" || strings.ContainsAny(s.remote, " /") {
				return nil, bad
			}
		} else if n < 1 || n > 65535 {
			return nil, bad
		}
		out = append(out, s)
	}
	return out, nil
}

func (o *portForwardOptions) run(ctx context.Context, e *env, target string, specs []portSpec) error {
	if _, err := e.client(); err != nil {
		return err
	}
	ns, err := e.ns()
	if err != nil {
		return err
	}
	pods, err := e.podsFor(ctx, ns, []string{target}, "")
	if err != nil {
		return err
	}
	p := pods[0]
	if p.Status.Phase != corev1.PodRunning {
		return fmt.Errorf("unable to forward port because pod %s is not running. Current status=%s", p.Name, p.Status.Phase)
	}
	var svc *corev1.Service
	if typ, name, ok := strings.Cut(target, "/"); ok && isServiceType(typ) {
		if svc, err = e.getService(ctx, ns, name); err != nil {
			return err
		}
	}
	var ports []stream.Port
	for _, s := range specs {
		remote, local, err := resolvePort(s, p, svc)
		if err != nil {
			return err
		}
		ports = append(ports, stream.Port{Local: local, Remote: remote})
	}
	d, err := e.streamDialer()
	if err != nil {
		return err
	}
	u, err := e.podURL(p.Namespace, p.Name, "portforward", nil)
	if err != nil {
		return err
	}
	err = d.PortForward(ctx, u, stream.PortForwardOptions{
		Addresses: o.addresses, Ports: ports, Out: e.streams.Out, ErrOut: e.streams.ErrOut,
	})
	switch {
	case err == nil, ctx.Err() != nil:
		return nil // Ctrl-C
	case errors.Is(err, stream.ErrLostConnection):
		return fmt.Errorf("lost connection to pod %s", p.Name)
	}
	return fmt.Errorf("port-forward to pod %s: %w", p.Name, err)
}

func isServiceType(t string) bool {
	switch strings.ToLower(t) {
	case "svc", "service", "services", "service.v1.", "services.v1.":
		return true
	}
	return false
}

// getService reads a Service as a typed object.
func (e *env) getService(ctx context.Context, ns, name string) (*corev1.Service, error) {
	mp, err := e.discovery(ctx)
	if err != nil {
		return nil, err
	}
	m, err := mp.resource("services")
	if err != nil {
		return nil, err
	}
	u, err := e.getObject(ctx, m, ns, name)
	if err != nil {
		return nil, err
	}
	svc := &corev1.Service{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, svc); err != nil {
		return nil, fmt.Errorf("decoding service %s: %w", name, err)
	}
	return svc, nil
}

// resolvePort turns one argument into pod port numbers, as kubectl does:
// for a Service the remote port is the Service's and the pod's port is its
// targetPort (a number, or a container port name looked up in the pod);
// otherwise a name is a container port of the pod. The local port defaults
// to the number given (the Service's port for svc/NAME).
func resolvePort(s portSpec, p *corev1.Pod, svc *corev1.Service) (remote, local int, err error) {
	local = -1
	if s.explicit {
		local, _ = strconv.Atoi(s.local)
	}
	if svc != nil {
		var sp *corev1.ServicePort
		for i := range svc.Spec.Ports {
			port := &svc.Spec.Ports[i]
			if strconv.Itoa(int(port.Port)) == s.remote || port.Name == s.remote {
				sp = port
			}
		}
		if sp == nil {
			return 0, 0, fmt.Errorf("service %s does not have a service port %s", svc.Name, s.remote)
		}
		if local < 0 {
			local = int(sp.Port)
		}
		tp := sp.TargetPort
		switch {
		case tp.Type == intstr.String && tp.StrVal != "":
			n, ok := containerPortByName(p, tp.StrVal)
			if !ok {
				return 0, 0, fmt.Errorf("service %s port %d targets the port named %q, which pod %s does not have", svc.Name, sp.Port, tp.StrVal, p.Name)
			}
			return n, local, nil
		case tp.Type == intstr.Int && tp.IntVal != 0:
			return int(tp.IntVal), local, nil
		}
		return int(sp.Port), local, nil
	}
	remote, err = strconv.Atoi(s.remote)
	if err != nil {
		n, ok := containerPortByName(p, s.remote)
		if !ok {
			return 0, 0, fmt.Errorf("pod %s has no container port named %q", p.Name, s.remote)
		}
		remote = n
	}
	if local < 0 {
		local = remote
	}
	return remote, local, nil
}

func containerPortByName(p *corev1.Pod, name string) (int, bool) {
	for _, c := range p.Spec.Containers {
		for _, port := range c.Ports {
			if port.Name == name {
				return int(port.ContainerPort), true
			}
		}
	}
	return 0, false
}

// completePods completes the first argument of exec, attach and
// port-forward: pod names, or TYPE/NAME once a type and "/" are typed.
func (e *env) completePods(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	if typ, prefix, ok := strings.Cut(toComplete, "/"); ok {
		names, dir := e.completeResources(cmd, []string{typ}, prefix)
		for i := range names {
			names[i] = typ + "/" + names[i]
		}
		return names, dir
	}
	return e.completeResources(cmd, []string{"pods"}, toComplete)
}
