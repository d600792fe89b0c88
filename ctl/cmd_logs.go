package ctl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/spf13/cobra"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
)

type logsOptions struct {
	container     string
	allContainers bool
	follow        bool
	previous      bool
	tail          int64
	timestamps    bool
	since         time.Duration
	sinceTime     string
	limitBytes    int64
	selector      string
	prefix        bool
	maxRequests   int
}

func newLogsCommand(e *env) *cobra.Command {
	o := &logsOptions{}
	cmd := &cobra.Command{
		Use:   "logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]",
		Short: "Print the logs for a container in a pod",
		Long: `Print a container's log, read by the pod's kubelet through the API server
(GET /api/v1/namespaces/{ns}/pods/{name}/log). TYPE/NAME may name a
deployment, replica set or service: one of its pods is used. Without -c, a
pod with several containers shows its default container
(kubectl.kubernetes.io/default-container, else the first).`,
		Example: examples(`
# a pod's log, and follow it
ctl logs web-7d9f8-abcde
ctl logs -f deploy/web

# the last 20 lines of the sidecar, and of the crashed instance before
ctl logs web-7d9f8-abcde -c log --tail=20
ctl logs web-7d9f8-abcde -p

# every pod labelled app=web, every container, with pod/container prefixes
ctl logs -l app=web --all-containers --prefix`),
		ValidArgsFunction: e.completeResources,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 && o.container == "" {
				o.container = args[1] // kubectl's old form: logs POD CONTAINER
				args = args[:1]
			}
			if (len(args) == 0) == (o.selector == "") {
				return usageError(cmd, "give a pod (or TYPE/NAME), or -l SELECTOR")
			}
			return o.run(cmd.Context(), e, args)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.container, "container", "c", "", "The container to read")
	f.BoolVar(&o.allContainers, "all-containers", false, "Read every container of the pod(s)")
	f.BoolVarP(&o.follow, "follow", "f", false, "Keep streaming new lines")
	f.BoolVarP(&o.previous, "previous", "p", false, "Read the previous (terminated) instance of the container")
	f.Int64Var(&o.tail, "tail", -1, "Only the last N lines (-1 = all; 10 with -l)")
	f.BoolVar(&o.timestamps, "timestamps", false, "Prefix each line with its RFC3339 timestamp")
	f.DurationVar(&o.since, "since", 0, "Only lines newer than this (e.g. 5m, 1h)")
	f.StringVar(&o.sinceTime, "since-time", "", "Only lines after this RFC3339 time")
	f.Int64Var(&o.limitBytes, "limit-bytes", 0, "Stop after this many bytes")
	f.StringVarP(&o.selector, "selector", "l", "", "Read every pod matching this label selector")
	f.BoolVar(&o.prefix, "prefix", false, "Prefix each line with [pod/NAME/CONTAINER]")
	f.IntVar(&o.maxRequests, "max-log-requests", 5, "With -l and -f, the most logs streamed at once")
	return cmd
}

// logStream is one container's log to read.
type logStream struct {
	pod, container string
	ns             string
}

func (o *logsOptions) run(ctx context.Context, e *env, args []string) error {
	if o.since > 0 && o.sinceTime != "" {
		return errors.New("--since and --since-time cannot be given together")
	}
	if _, err := e.client(); err != nil {
		return err
	}
	ns, err := e.ns()
	if err != nil {
		return err
	}
	pods, err := e.podsFor(ctx, ns, args, o.selector)
	if err != nil {
		return err
	}
	if len(pods) == 0 {
		e.noResources(nil, ns)
		return nil
	}
	if o.selector != "" && o.tail == -1 {
		o.tail = 10
	}
	var streams []logStream
	for _, p := range pods {
		names, err := e.pickContainers(p, o.container, o.allContainers)
		if err != nil {
			return err
		}
		for _, c := range names {
			streams = append(streams, logStream{pod: p.Name, container: c, ns: p.Namespace})
		}
	}
	if o.follow && len(streams) > o.maxRequests {
		return fmt.Errorf("you are attempting to follow %d log streams, but the maximum allowed is %d; use --max-log-requests to raise it", len(streams), o.maxRequests)
	}
	prefix := o.prefix
	if o.follow && len(streams) > 1 {
		// Interleaved lines must say where they come from.
		prefix = true
		var mu sync.Mutex
		var wg sync.WaitGroup
		errs := make([]error, len(streams))
		for i, s := range streams {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = o.stream(ctx, e, s, prefix, &mu)
			}()
		}
		wg.Wait()
		return errors.Join(errs...)
	}
	var mu sync.Mutex
	failed := false
	for _, s := range streams {
		if err := o.stream(ctx, e, s, prefix, &mu); err != nil {
			if len(streams) == 1 {
				return err
			}
			e.reportError(err) // and go on with the other containers
			failed = true
		}
	}
	if failed {
		return errPrinted
	}
	return nil
}

func (o *logsOptions) params(container string) map[string]string {
	p := map[string]string{"container": container}
	if o.follow {
		p["follow"] = "true"
	}
	if o.previous {
		p["previous"] = "true"
	}
	if o.timestamps {
		p["timestamps"] = "true"
	}
	if o.tail >= 0 {
		p["tailLines"] = strconv.FormatInt(o.tail, 10)
	}
	if o.since > 0 {
		p["sinceSeconds"] = strconv.FormatInt(int64((o.since+time.Second-1)/time.Second), 10)
	}
	if o.sinceTime != "" {
		p["sinceTime"] = o.sinceTime
	}
	if o.limitBytes > 0 {
		p["limitBytes"] = strconv.FormatInt(o.limitBytes, 10)
	}
	return p
}

// stream copies one container's log to stdout, line by line when
// prefixed (so concurrent streams do not mix within a line).
func (o *logsOptions) stream(ctx context.Context, e *env, s logStream, prefix bool, mu *sync.Mutex) error {
	r := e.rc.Get().Version("v1").Namespace(s.ns).Resource("pods").Name(s.pod).SubResource("log")
	for k, v := range o.params(s.container) {
		r = r.Param(k, v)
	}
	body, err := r.Stream(ctx)
	if err != nil {
		return e.kubeletError(err, "read the log of", s.pod, s.container)
	}
	defer body.Close()
	if !prefix {
		mu.Lock()
		defer mu.Unlock()
		_, err := io.Copy(e.streams.Out, body)
		if err != nil && ctx.Err() != nil {
			return nil
		}
		return err
	}
	tag := fmt.Sprintf("[pod/%s/%s] ", s.pod, s.container)
	br := bufio.NewReader(body)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			mu.Lock()
			fmt.Fprint(e.streams.Out, tag+line)
			if !strings.HasSuffix(line, "\n") {
				fmt.Fprintln(e.streams.Out)
			}
			mu.Unlock()
		}
		if err != nil {
			if errors.Is(err, io.EOF) || ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// kubeletError explains failures of requests the API server passes to a
// kubelet (logs, exec, port-forward).
func (e *env) kubeletError(err error, what, pod, container string) error {
	var se *apierrors.StatusError
	if errors.As(err, &se) {
		// A kubelet answers in plain text, which reaches us as a
		// synthesized Status whose cause holds the text.
		if d := se.ErrStatus.Details; d != nil && se.ErrStatus.Code != http.StatusServiceUnavailable {
			for _, c := range d.Causes {
				if c.Type == metav1.CauseTypeUnexpectedServerResponse && c.Message != "" {
					where := "pod " + pod
					if container != "" {
						where += " (container " + container + ")"
					}
					return fmt.Errorf("cannot %s %s: the kubelet answered %d: %s", what, where, se.ErrStatus.Code, c.Message)
				}
			}
		}
		switch se.ErrStatus.Code {
		case http.StatusServiceUnavailable:
			return fmt.Errorf("cannot %s pod %s: the API server could not reach the pod's kubelet: %s", what, pod, se.ErrStatus.Message)
		case http.StatusNotFound:
			if se.ErrStatus.Details != nil && se.ErrStatus.Details.Kind == "pods" {
				return err // the pod itself is missing: the server's words are clear
			}
			return fmt.Errorf("cannot %s pod %s: the kubelet answered 404: %s", what, pod, se.ErrStatus.Message)
		}
	}
	return err
}

// onePod resolves the single pod an exec or attach targets (a pod name,
// or TYPE/NAME of something with a selector) in the current namespace.
func (e *env) onePod(ctx context.Context, podArg string) (*corev1.Pod, error) {
	if _, err := e.client(); err != nil {
		return nil, err
	}
	ns, err := e.ns()
	if err != nil {
		return nil, err
	}
	pods, err := e.podsFor(ctx, ns, []string{podArg}, "")
	if err != nil {
		return nil, err
	}
	return pods[0], nil
}

// podsFor resolves the pods a logs/exec command targets: a pod name,
// TYPE/NAME of something with a selector, or -l.
func (e *env) podsFor(ctx context.Context, ns string, args []string, selector string) ([]*corev1.Pod, error) {
	mp, err := e.discovery(ctx)
	if err != nil {
		return nil, err
	}
	pm, err := mp.resource("pods")
	if err != nil {
		return nil, err
	}
	listPods := func(sel string) ([]*corev1.Pod, error) {
		items, _, err := e.listObjects(ctx, pm, ns, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return nil, err
		}
		var out []*corev1.Pod
		for _, it := range items {
			p, err := toPod(it)
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
		return out, nil
	}
	if selector != "" {
		return listPods(selector)
	}
	typ, name, ok := strings.Cut(args[0], "/")
	if !ok {
		typ, name = "pods", args[0]
	}
	m, err := mp.resource(typ)
	if err != nil {
		return nil, err
	}
	obj, err := e.getObject(ctx, m, nsIf(m, ns), name)
	if err != nil {
		return nil, err
	}
	if m.Kind == "Pod" {
		p, err := toPod(obj)
		if err != nil {
			return nil, err
		}
		return []*corev1.Pod{p}, nil
	}
	sel, err := selectorOf(obj)
	if err != nil {
		return nil, err
	}
	pods, err := listPods(sel)
	if err != nil {
		return nil, err
	}
	if len(pods) == 0 {
		return nil, fmt.Errorf("%s/%s has no pods (selector %s)", strings.ToLower(m.Kind), name, sel)
	}
	best := pickPod(pods)
	if len(pods) > 1 {
		fmt.Fprintf(e.streams.ErrOut, "Found %d pods, using pod/%s\n", len(pods), best.Name)
	}
	return []*corev1.Pod{best}, nil
}

func toPod(u *unstructured.Unstructured) (*corev1.Pod, error) {
	p := &corev1.Pod{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, p); err != nil {
		return nil, fmt.Errorf("decoding pod %s: %w", u.GetName(), err)
	}
	return p, nil
}

// selectorOf is the pod selector of a deployment, replica set or service.
func selectorOf(obj *unstructured.Unstructured) (string, error) {
	if ml, ok, _ := unstructured.NestedStringMap(obj.Object, "spec", "selector", "matchLabels"); ok && len(ml) > 0 {
		sel := &metav1.LabelSelector{MatchLabels: ml}
		if exprs, ok, _ := unstructured.NestedSlice(obj.Object, "spec", "selector", "matchExpressions"); ok && len(exprs) > 0 {
			var full metav1.LabelSelector
			raw, _, _ := unstructured.NestedMap(obj.Object, "spec", "selector")
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &full); err == nil {
				sel = &full
			}
		}
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil {
			return "", err
		}
		return s.String(), nil
	}
	if m, ok, _ := unstructured.NestedStringMap(obj.Object, "spec", "selector"); ok && len(m) > 0 {
		s := metav1.SetAsLabelSelector(m)
		sel, err := metav1.LabelSelectorAsSelector(s)
		if err != nil {
			return "", err
		}
		return sel.String(), nil
	}
	return "", fmt.Errorf("%s/%s has no pod selector", strings.ToLower(obj.GetKind()), obj.GetName())
}

// pickPod prefers a running, ready pod, then the newest.
func pickPod(pods []*corev1.Pod) *corev1.Pod {
	score := func(p *corev1.Pod) int {
		s := 0
		if p.Status.Phase == corev1.PodRunning {
			s += 2
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				s++
			}
		}
		if p.DeletionTimestamp != nil {
			s -= 4
		}
		return s
	}
	best := pods[0]
	for _, p := range pods[1:] {
		if score(p) > score(best) || score(p) == score(best) && p.CreationTimestamp.After(best.CreationTimestamp.Time) {
			best = p
		}
	}
	return best
}

// DefaultContainerAnnotation names the container commands use when none
// is given.
const DefaultContainerAnnotation = "kubectl.kubernetes.io/default-container"

// pickContainers chooses the containers to read: -c, all, or the default.
func (e *env) pickContainers(p *corev1.Pod, container string, all bool) ([]string, error) {
	var names []string
	for _, c := range p.Spec.Containers {
		names = append(names, c.Name)
	}
	if all {
		var every []string
		for _, c := range p.Spec.InitContainers {
			every = append(every, c.Name)
		}
		return append(every, names...), nil
	}
	if container != "" {
		for _, c := range append(append([]corev1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...) {
			if c.Name == container {
				return []string{container}, nil
			}
		}
		return nil, fmt.Errorf("container %s is not valid for pod %s; choose one of: %s", container, p.Name, strings.Join(names, ", "))
	}
	if len(names) == 1 {
		return names, nil
	}
	def := p.Annotations[DefaultContainerAnnotation]
	if def == "" && len(names) > 0 {
		def = names[0]
	}
	fmt.Fprintf(e.streams.ErrOut, "Defaulted container %q out of: %s\n", def, strings.Join(names, ", "))
	return []string{def}, nil
}
