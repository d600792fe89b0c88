package testenv

import (
	"context"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	coordinationv1 "github.com/minik8s/minik8s/api/coordination/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/client/informer"
	"github.com/minik8s/minik8s/client/typed"
	"github.com/minik8s/minik8s/client/workqueue"
)

// FakeKubelet stands in for the scheduler and for one kubelet per node:
//   - it binds unbound pods to the registered node with the fewest pods
//     among those without NoSchedule/NoExecute taints;
//   - for pods on a live node it reports them Running with a pod IP and,
//     if Ready says so, Ready; it finishes their graceful deletion at once;
//   - it renews each live node's Lease in kube-node-lease every second.
//
// Stop(node) makes a node go silent, as if it lost power.
type FakeKubelet struct {
	e  *Env
	cs *typed.Clientset

	// Ready decides whether a pod on a live node becomes Ready; nil means
	// every pod. Set it before Run, or call Resync after changing it.
	Ready func(*corev1.Pod) bool
	// ReadyDelay is how long a pod stays Running-but-not-ready first.
	ReadyDelay time.Duration

	mu       sync.Mutex
	nodes    []string
	alive    map[string]bool
	seen     map[string]time.Time // pod key -> first seen running
	nextIP   int
	queue    *workqueue.Queue
	pods     informer.Lister[*corev1.Pod]
	nodeList informer.Lister[*corev1.Node]
}

// NewFakeKubelet registers nodes (Node objects reporting Ready, and their
// Leases); call Run to start it.
func NewFakeKubelet(e *Env, nodes ...string) *FakeKubelet {
	e.T.Helper()
	k := &FakeKubelet{e: e, cs: e.Clientset("fake-kubelet"), alive: map[string]bool{}, seen: map[string]time.Time{}}
	for _, n := range nodes {
		k.nodes = append(k.nodes, n)
		k.alive[n] = true
		now := metav1.Now()
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: n, Labels: map[string]string{"kubernetes.io/hostname": n}},
			Status: corev1.NodeStatus{
				Capacity: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourcePods: resource.MustParse("110")},
				Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
					Reason: "KubeletReady", LastHeartbeatTime: now, LastTransitionTime: now}},
				Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: k.hostIP(n)}},
			},
		}
		created, err := e.CS.Nodes.Create(e.Ctx, node, metav1.CreateOptions{})
		if err != nil {
			e.T.Fatalf("create node %s: %v", n, err)
		}
		created.Status = node.Status
		if _, err := e.CS.Nodes.UpdateStatus(e.Ctx, created, metav1.UpdateOptions{}); err != nil {
			e.T.Fatalf("node %s status: %v", n, err)
		}
		if err := k.renew(e.Ctx, n); err != nil {
			e.T.Fatalf("lease for node %s: %v", n, err)
		}
	}
	return k
}

func (k *FakeKubelet) hostIP(node string) string {
	for i, n := range k.nodes {
		if n == node {
			return fmt.Sprintf("192.168.0.%d", i+10)
		}
	}
	return "192.168.0.1"
}

// Stop makes node silent: no more heartbeats, status reports or
// deletions for pods on it.
func (k *FakeKubelet) Stop(node string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.alive[node] = false
}

// Resume brings a stopped node back: heartbeats start again and it
// reports Ready, as a restarted kubelet does.
func (k *FakeKubelet) Resume(node string) error {
	k.mu.Lock()
	k.alive[node] = true
	k.mu.Unlock()
	for range 10 {
		n, err := k.cs.Nodes.Get(k.e.Ctx, node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := metav1.Now()
		var conds []corev1.NodeCondition
		for _, c := range n.Status.Conditions {
			if c.Type != corev1.NodeReady {
				conds = append(conds, c)
			}
		}
		n.Status.Conditions = append(conds, corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
			Reason: "KubeletReady", LastHeartbeatTime: now, LastTransitionTime: now})
		if _, err = k.cs.Nodes.UpdateStatus(k.e.Ctx, n, metav1.UpdateOptions{}); err == nil {
			return k.renew(k.e.Ctx, node)
		}
		if !apierrors.IsConflict(err) {
			return err
		}
	}
	return fmt.Errorf("resume %s: conflicts", node)
}

// Resync re-examines every pod (after Ready changed).
func (k *FakeKubelet) Resync() {
	pods, _ := k.pods.List(nil)
	for _, p := range pods {
		k.queue.Add(p.Namespace + "/" + p.Name)
	}
}

func (k *FakeKubelet) isAlive(node string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.alive[node]
}

// Run starts the fake in goroutines owned by the test.
func (k *FakeKubelet) Run() {
	f := k.e.Factory(k.cs)
	podInf := f.Pods()
	nodeInf := f.Nodes()
	k.pods = podInf.Lister()
	k.nodeList = nodeInf.Lister()
	q, err := workqueue.New(workqueue.Options{Name: "fake-kubelet"})
	if err != nil {
		k.e.T.Fatal(err)
	}
	k.queue = q
	add := func(obj any) {
		if key, err := informer.MetaNamespaceKeyFunc(obj); err == nil {
			q.Add(key)
		}
	}
	_ = podInf.AddEventHandler(informer.Handler{
		AddFunc:    func(obj runtime.Object) { add(obj) },
		UpdateFunc: func(_, obj runtime.Object) { add(obj) },
	})
	// A node losing its taints may make pending pods schedulable.
	_ = nodeInf.AddEventHandler(informer.Handler{UpdateFunc: func(_, _ runtime.Object) { k.Resync() }})
	Go(k.e.T, k.e.Ctx, func(ctx context.Context) {
		f.Start(ctx)
		defer f.Wait()
		defer q.ShutDown()
		if !f.WaitForCacheSync(ctx) {
			return
		}
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				for {
					key, quit := q.Get()
					if quit {
						return
					}
					if ctx.Err() == nil {
						if err := k.sync(ctx, key); err != nil {
							q.AddRateLimited(key)
						} else {
							q.Forget(key)
						}
					}
					q.Done(key)
				}
			})
		}
		<-ctx.Done()
		q.ShutDown()
		wg.Wait()
	})
	Go(k.e.T, k.e.Ctx, func(ctx context.Context) {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			for _, n := range k.nodes {
				if k.isAlive(n) {
					_ = k.renew(ctx, n)
				}
			}
		}
	})
}

// renew creates or renews node's Lease in kube-node-lease.
func (k *FakeKubelet) renew(ctx context.Context, node string) error {
	leases := k.cs.Leases.Namespace(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	dur := int32(40)
	l, err := leases.Get(ctx, node, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = leases.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: node, Namespace: corev1.NamespaceNodeLease},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: &node, LeaseDurationSeconds: &dur, RenewTime: &now},
		}, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	l.Spec.RenewTime = &now
	_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
	return err
}

func (k *FakeKubelet) sync(ctx context.Context, key string) error {
	ns, name, err := informer.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := k.pods.Get(ns, name)
	if apierrors.IsNotFound(err) {
		k.mu.Lock()
		delete(k.seen, key)
		k.mu.Unlock()
		return nil
	}
	if err != nil {
		return err
	}
	pods := k.cs.Pods.Namespace(ns)
	if pod.Spec.NodeName == "" {
		if pod.DeletionTimestamp != nil {
			return nil
		}
		node := k.pickNode()
		if node == "" {
			return nil // nowhere to go; a node update will resync
		}
		err := pods.Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: pod.UID},
			Target: corev1.ObjectReference{Kind: "Node", Name: node}}, metav1.CreateOptions{})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil
		}
		return err
	}
	if !k.isAlive(pod.Spec.NodeName) {
		return nil
	}
	if pod.DeletionTimestamp != nil {
		zero := int64(0)
		uid := pod.UID
		err := pods.Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &uid}})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil
		}
		return err
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return nil
	}
	ready := k.Ready == nil || k.Ready(pod)
	now := time.Now()
	k.mu.Lock()
	first, ok := k.seen[key]
	if !ok {
		first = now
		k.seen[key] = now
	}
	k.mu.Unlock()
	if ready && k.ReadyDelay > 0 && now.Sub(first) < k.ReadyDelay {
		k.queue.AddAfter(key, k.ReadyDelay-now.Sub(first))
		ready = false
	}
	isReady := podReady(pod)
	if pod.Status.Phase == corev1.PodRunning && pod.Status.PodIP != "" && isReady == ready {
		return nil
	}
	next := pod.DeepCopy()
	k.setStatus(next, ready)
	_, err = pods.UpdateStatus(ctx, next, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // a newer version is on its way to us
	}
	return err
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (k *FakeKubelet) setStatus(p *corev1.Pod, ready bool) {
	now := metav1.Now()
	st := &p.Status
	st.Phase = corev1.PodRunning
	if st.PodIP == "" {
		k.mu.Lock()
		k.nextIP++
		n := k.nextIP
		k.mu.Unlock()
		st.PodIP = fmt.Sprintf("10.244.%d.%d", n/250, n%250+2)
		st.PodIPs = []corev1.PodIP{{IP: st.PodIP}}
		st.HostIP = k.hostIP(p.Spec.NodeName)
		st.HostIPs = []corev1.HostIP{{IP: st.HostIP}}
		st.StartTime = &now
	}
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	setCond := func(t corev1.PodConditionType, s corev1.ConditionStatus) {
		for i := range st.Conditions {
			if st.Conditions[i].Type == t {
				if st.Conditions[i].Status != s {
					st.Conditions[i].Status = s
					st.Conditions[i].LastTransitionTime = now
				}
				return
			}
		}
		st.Conditions = append(st.Conditions, corev1.PodCondition{Type: t, Status: s, LastTransitionTime: now})
	}
	setCond(corev1.PodScheduled, corev1.ConditionTrue)
	setCond(corev1.PodInitialized, corev1.ConditionTrue)
	setCond(corev1.ContainersReady, status)
	setCond(corev1.PodReady, status)
	st.ContainerStatuses = nil
	for _, c := range p.Spec.Containers {
		st.ContainerStatuses = append(st.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: c.Image, Ready: ready, Started: &ready,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
}

// pickNode returns the registered node with the fewest pods among those a
// scheduler would use (no NoSchedule/NoExecute taints), or "".
func (k *FakeKubelet) pickNode() string {
	best, bestN := "", 0
	for _, n := range k.nodes {
		node, err := k.nodeList.Get("", n)
		if err != nil {
			continue
		}
		tainted := false
		for _, t := range node.Spec.Taints {
			tainted = tainted || t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute
		}
		if tainted {
			continue
		}
		count := 0
		pods, _ := k.pods.List(nil)
		for _, p := range pods {
			if p.Spec.NodeName == n {
				count++
			}
		}
		if best == "" || count < bestN {
			best, bestN = n, count
		}
	}
	return best
}
