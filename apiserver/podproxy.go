package apiserver

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/apiserver/rest"
	"github.com/minik8s/minik8s/apiserver/storage"
)

// Pod subresources that are served by the pod's kubelet, not by etcd:
// the API server finds the node, then proxies the request (including
// protocol upgrades for exec, attach and port-forward) to the kubelet's
// own API, as Kubernetes does. The kubelet paths are Kubernetes':
//
//	pods/{name}/log          -> /containerLogs/{ns}/{pod}/{container}
//	pods/{name}/exec         -> /exec/{ns}/{pod}/{container}
//	pods/{name}/attach       -> /attach/{ns}/{pod}/{container}
//	pods/{name}/portforward  -> /portForward/{ns}/{pod}
//
// The API server authenticates to kubelets with a client certificate
// signed by the cluster CA (CN system:kube-apiserver); like Kubernetes
// without --kubelet-certificate-authority it does not verify the kubelet's
// serving certificate.
var kubeletPaths = map[string]string{
	"log": "containerLogs", "exec": "exec", "attach": "attach", "portforward": "portForward",
}

// DefaultKubeletPort is used when a node does not report its kubelet port.
const DefaultKubeletPort = 10250

// podProxyRequest reports whether r is a kubelet-served pod subresource
// and returns namespace, pod and subresource.
func podProxyRequest(r *http.Request) (ns, pod, sub string, ok bool) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	// api v1 namespaces {ns} pods {name} {sub}
	if len(parts) != 7 || parts[0] != "api" || parts[1] != "v1" || parts[2] != "namespaces" || parts[4] != "pods" {
		return "", "", "", false
	}
	if _, known := kubeletPaths[parts[6]]; !known {
		return "", "", "", false
	}
	return parts[3], parts[5], parts[6], true
}

// servePodProxy forwards a log/exec/attach/portforward request to the
// kubelet running the pod.
func (s *Server) servePodProxy(w http.ResponseWriter, r *http.Request, ns, name, sub string) {
	ctx := r.Context()
	pod := &corev1.Pod{}
	if err := s.stores[s.api.Lookup("", "v1", "pods")].Get(ctx, "/registry/pods/"+ns+"/"+name, pod); err != nil {
		if storage.IsNotFound(err) {
			rest.WriteError(w, apierrors.NewNotFound(schemaGR("pods"), name))
		} else {
			rest.WriteError(w, err)
		}
		return
	}
	if pod.Spec.NodeName == "" {
		rest.WriteError(w, apierrors.NewBadRequest(fmt.Sprintf("pod %s/%s is not scheduled to a node yet", ns, name)))
		return
	}
	q := r.URL.Query()
	path := "/" + kubeletPaths[sub] + "/" + url.PathEscape(ns) + "/" + url.PathEscape(name)
	if sub != "portforward" {
		c, err := pickContainer(pod, q.Get("container"))
		if err != nil {
			rest.WriteError(w, err)
			return
		}
		path += "/" + url.PathEscape(c)
		q.Del("container")
	}
	if sub == "log" {
		// The kubelet's parameter names for logs are the API's; only
		// tailLines is spelled "tail" on the kubelet side.
		if t := q.Get("tailLines"); t != "" {
			q.Set("tail", t)
		}
	}
	node := &corev1.Node{}
	if err := s.stores[s.api.Lookup("", "v1", "nodes")].Get(ctx, "/registry/nodes/"+pod.Spec.NodeName, node); err != nil {
		rest.WriteError(w, apierrors.NewServiceUnavailable(fmt.Sprintf("node %s of pod %s/%s: %v", pod.Spec.NodeName, ns, name, err)))
		return
	}
	host := nodeAddress(node)
	if host == "" {
		rest.WriteError(w, apierrors.NewServiceUnavailable(fmt.Sprintf("node %s reports no address", node.Name)))
		return
	}
	port := int(node.Status.DaemonEndpoints.KubeletEndpoint.Port)
	if port == 0 {
		port = DefaultKubeletPort
	}
	target := &url.URL{Scheme: "https", Host: net.JoinHostPort(host, strconv.Itoa(port))}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.URL.Path = path
			pr.Out.URL.RawPath = ""
			pr.Out.URL.RawQuery = q.Encode()
			pr.Out.Header.Del("Authorization")
		},
		Transport:     s.kubeletTransport,
		FlushInterval: -1, // stream logs as they come
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			rest.WriteError(w, apierrors.NewServiceUnavailable(fmt.Sprintf(
				"cannot reach the kubelet of node %s at %s: %v", node.Name, target.Host, err)))
		},
	}
	proxy.ServeHTTP(w, r)
}

// pickContainer resolves ?container=, defaulting to the only container.
func pickContainer(pod *corev1.Pod, name string) (string, error) {
	var names []string
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		if name == c.Name {
			return name, nil
		}
		names = append(names, c.Name)
	}
	if name != "" {
		return "", apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", name, pod.Name))
	}
	if len(pod.Spec.Containers) == 1 {
		return pod.Spec.Containers[0].Name, nil
	}
	return "", apierrors.NewBadRequest(fmt.Sprintf(
		"a container name must be specified for pod %s, choose one of: %v", pod.Name, names))
}

// nodeAddress picks how to reach a node's kubelet: InternalIP first.
func nodeAddress(n *corev1.Node) string {
	for _, t := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP, corev1.NodeHostName} {
		for _, a := range n.Status.Addresses {
			if a.Type == t && a.Address != "" {
				return a.Address
			}
		}
	}
	return ""
}

// newKubeletTransport builds the client side of API server → kubelet.
func (s *Server) newKubeletTransport() (http.RoundTripper, error) {
	cert, err := s.pki.IssueClientCert("system:kube-apiserver", []string{"system:masters"})
	if err != nil {
		return nil, err
	}
	return &http.Transport{
		TLSClientConfig: &tls.Config{
			Certificates:       []tls.Certificate{cert},
			InsecureSkipVerify: true, // see the package comment above
			MinVersion:         tls.VersionTLS12,
		},
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		TLSHandshakeTimeout: 10 * time.Second,
		// Exec and port-forward upgrade the connection; HTTP/2 cannot.
		ForceAttemptHTTP2: false,
	}, nil
}
