package ctl

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/spf13/cobra"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
)

// ExitCodeHeader is where minik8s's kubelet reports the exit code of a
// non-interactive exec.
const ExitCodeHeader = "X-Minik8s-Exit-Code"

type execOptions struct {
	container string
	stdin     bool
	tty       bool
	timeout   int
}

func newExecCommand(e *env) *cobra.Command {
	o := &execOptions{}
	cmd := &cobra.Command{
		Use:   "exec (POD | TYPE/NAME) [-c CONTAINER] -- COMMAND [args...]",
		Short: "Execute a command in a container",
		Long: `Run a command in a running container, through the API server and the pod's
kubelet (POST /api/v1/namespaces/{ns}/pods/{name}/exec?command=...).

minik8s's kubelet runs commands non-interactively: the command runs to
completion (or --timeout) and its output is printed then; ctl exits with the
command's exit code, as kubectl does. Interactive sessions (-i, -t) need a
streaming protocol the kubelet does not offer yet.`,
		Example: examples(`
# list a container's root
ctl exec web-7d9f8-abcde -- ls /

# in a given container of a deployment's pod
ctl exec deploy/web -c log -- cat /var/log/web.log`),
		ValidArgsFunction: e.completeResources,
		RunE: func(cmd *cobra.Command, args []string) error {
			dash := cmd.ArgsLenAtDash()
			if dash < 0 || dash == len(args) {
				return usageError(cmd, "give the command after --, e.g. `ctl exec POD -- ls /`")
			}
			if dash != 1 {
				return usageError(cmd, "give exactly one pod (or TYPE/NAME) before --")
			}
			if o.stdin || o.tty {
				return fmt.Errorf("interactive exec (-i/-t) needs a streaming connection, which minik8s's kubelet does not offer yet; " +
					"run the command without -i/-t: its output is printed when it finishes")
			}
			return o.run(cmd.Context(), e, args[0], args[dash:])
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.container, "container", "c", "", "The container (default: kubectl.kubernetes.io/default-container, else the first)")
	f.BoolVarP(&o.stdin, "stdin", "i", false, "Pass stdin to the command (not supported by minik8s's kubelet yet)")
	f.BoolVarP(&o.tty, "tty", "t", false, "Allocate a terminal (not supported by minik8s's kubelet yet)")
	f.IntVar(&o.timeout, "timeout", 0, "Seconds the command may run before the kubelet stops it (0 = the kubelet's default, 60)")
	return cmd
}

func (o *execOptions) run(ctx context.Context, e *env, podArg string, command []string) error {
	if _, err := e.client(); err != nil {
		return err
	}
	ns, err := e.ns()
	if err != nil {
		return err
	}
	pods, err := e.podsFor(ctx, ns, []string{podArg}, "")
	if err != nil {
		return err
	}
	p := pods[0]
	cs, err := e.pickContainers(p, o.container, false)
	if err != nil {
		return err
	}
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return fmt.Errorf("cannot exec into a container in a completed pod; current phase is %s", p.Status.Phase)
	}
	q := url.Values{"container": {cs[0]}, "stdout": {"true"}, "stderr": {"true"}, "command": command}
	if o.timeout > 0 {
		q.Set("timeoutSeconds", strconv.Itoa(o.timeout))
	}
	resp, err := e.rawRequest(ctx, http.MethodPost, podPath(p.Namespace, p.Name, "exec"), q, nil)
	if err != nil {
		return e.kubeletError(err, "exec in", p.Name, cs[0])
	}
	defer resp.Body.Close()
	if _, err := io.Copy(e.streams.Out, resp.Body); err != nil {
		return fmt.Errorf("reading the output of exec in pod %s: %w", p.Name, err)
	}
	if v := resp.Header.Get(ExitCodeHeader); v != "" && v != "0" {
		code, err := strconv.Atoi(v)
		if err != nil || code < 0 {
			code = 1
		}
		return &exitError{code: code, msg: fmt.Sprintf("command terminated with exit code %s", v)}
	}
	return nil
}

func podPath(ns, name, sub string) string {
	return "/api/v1/namespaces/" + url.PathEscape(ns) + "/pods/" + url.PathEscape(name) + "/" + sub
}

// rawRequest sends a request whose response headers matter (exec's exit
// code) or that upgrades the connection, with the kubeconfig's
// credentials. Non-2xx answers become *apierrors.StatusError: the server's
// Status, or one made from the status code and text (a kubelet's plain
// error passed through).
func (e *env) rawRequest(ctx context.Context, method, path string, q url.Values, hdr http.Header) (*http.Response, error) {
	kc, err := e.config()
	if err != nil {
		return nil, err
	}
	tlsCfg, err := kc.TLSConfig()
	if err != nil {
		return nil, err
	}
	// HTTP/1.1 only: exec and port-forward may upgrade the connection,
	// which HTTP/2 cannot.
	tlsCfg.NextProtos = []string{"http/1.1"}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	tr.ForceAttemptHTTP2 = false
	tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	hc := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()
	u := kc.Server + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "ctl/"+Version)
	if kc.Token != "" {
		req.Header.Set("Authorization", "Bearer "+kc.Token)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 || resp.StatusCode == http.StatusSwitchingProtocols {
		return resp, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var st metav1.Status
	if json.Unmarshal(body, &st) == nil && st.Kind == "Status" {
		if st.Code == 0 {
			st.Code = int32(resp.StatusCode)
		}
		st.Status = metav1.StatusFailure
		return nil, &apierrors.StatusError{ErrStatus: st}
	}
	return nil, apierrors.NewGenericServerResponse(resp.StatusCode, strings.ToLower(method), schema.GroupResource{Resource: "pods"}, "",
		strings.TrimSpace(string(body)), 0, true)
}

func newPortForwardCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "port-forward (POD | TYPE/NAME) [LOCAL_PORT:]REMOTE_PORT [...[LOCAL_PORT_N:]REMOTE_PORT_N]",
		Short: "Forward one or more local ports to a pod",
		Long: `Forward local ports to a pod's ports through the API server and the pod's
kubelet (POST /api/v1/namespaces/{ns}/pods/{name}/portforward?ports=...).

ctl checks the pod and asks the kubelet for the port-forward stream, and
reports the server's answer. minik8s's kubelet does not serve port
forwarding yet, so today this ends with its error; use a Service with
type NodePort to reach pods from outside meanwhile.`,
		Example: examples(`
# local 8080 to the pod's 80
ctl port-forward pod/web-7d9f8-abcde 8080:80

# a deployment's pod, same port on both sides
ctl port-forward deploy/web 8080`),
		ValidArgsFunction: e.completeResources,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return usageError(cmd, "give a pod (or TYPE/NAME) and at least one [LOCAL:]REMOTE port")
			}
			var remote []string
			for _, spec := range args[1:] {
				local, rem, ok := strings.Cut(spec, ":")
				if !ok {
					rem = local
				}
				for _, p := range []string{local, rem} {
					if p == "" && ok {
						continue // ":80" picks a free local port
					}
					if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
						return usageError(cmd, "%q is not [LOCAL_PORT:]REMOTE_PORT with ports 1-65535", spec)
					}
				}
				remote = append(remote, rem)
			}
			ctx := cmd.Context()
			if _, err := e.client(); err != nil {
				return err
			}
			ns, err := e.ns()
			if err != nil {
				return err
			}
			pods, err := e.podsFor(ctx, ns, args[:1], "")
			if err != nil {
				return err
			}
			p := pods[0]
			if p.Status.Phase != corev1.PodRunning {
				return fmt.Errorf("unable to forward port because pod %s is not running. Current status=%s", p.Name, p.Status.Phase)
			}
			hdr := http.Header{"Connection": {"Upgrade"}, "Upgrade": {"SPDY/3.1"}, "X-Stream-Protocol-Version": {"portforward.k8s.io"}}
			resp, err := e.rawRequest(ctx, http.MethodPost, podPath(p.Namespace, p.Name, "portforward"), url.Values{"ports": remote}, hdr)
			if err != nil {
				return e.kubeletError(err, "forward ports to", p.Name, "")
			}
			resp.Body.Close()
			return fmt.Errorf("the kubelet accepted port forwarding to pod %s (HTTP %d), but ctl does not speak its stream protocol yet; use a NodePort Service", p.Name, resp.StatusCode)
		},
	}
	return cmd
}
