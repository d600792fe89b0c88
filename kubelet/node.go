package kubelet

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	coordinationv1 "github.com/minik8s/minik8s/api/coordination/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
)

// detectNodeIP returns the first global IPv4 address of an up, non-pod
// interface, or 127.0.0.1.
func detectNodeIP() string {
	ifs, err := net.Interfaces()
	if err != nil {
		return "127.0.0.1"
	}
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		if strings.HasPrefix(ifc.Name, "mk8s") || strings.HasPrefix(ifc.Name, "veth") || strings.HasPrefix(ifc.Name, "cni") {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && ipn.IP.IsGlobalUnicast() {
				return ipn.IP.String()
			}
		}
	}
	return "127.0.0.1"
}

// hostMemory is MemTotal from /proc/meminfo in bytes (0 if unreadable).
func hostMemory() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fs := strings.Fields(s.Text())
		if len(fs) >= 2 && fs[0] == "MemTotal:" {
			kb, _ := strconv.ParseInt(fs[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func osImage() string {
	data, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return "Linux"
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "Linux"
}

func kernelVersion() string {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return ""
	}
	var b strings.Builder
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b.WriteByte(byte(c))
	}
	return b.String()
}

func (k *Kubelet) capacity() corev1.ResourceList {
	cpu := resource.MustParse(strconv.Itoa(goruntime.NumCPU()))
	if k.cfg.CPUCapacity != "" {
		if q, err := resource.ParseQuantity(k.cfg.CPUCapacity); err == nil {
			cpu = q
		}
	}
	mem := *resource.NewQuantity(k.memoryCapacity, resource.BinarySI)
	if k.cfg.MemoryCapacity != "" {
		if q, err := resource.ParseQuantity(k.cfg.MemoryCapacity); err == nil {
			mem = q
		}
	}
	return corev1.ResourceList{
		corev1.ResourceCPU:    cpu,
		corev1.ResourceMemory: mem,
		corev1.ResourcePods:   *resource.NewQuantity(int64(k.cfg.MaxPods), resource.DecimalSI),
	}
}

// initialNode is the Node this kubelet registers.
func (k *Kubelet) initialNode() *corev1.Node {
	labels := map[string]string{
		"kubernetes.io/hostname": k.hostname,
		"kubernetes.io/os":       goruntime.GOOS,
		"kubernetes.io/arch":     goruntime.GOARCH,
	}
	for key, v := range k.cfg.Labels {
		labels[key] = v
	}
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: k.cfg.NodeName, Labels: labels},
		Spec:       corev1.NodeSpec{Taints: append([]corev1.Taint(nil), k.cfg.Taints...)},
	}
	if k.cfg.PodCIDR != "" {
		n.Spec.PodCIDR = k.cfg.PodCIDR
		n.Spec.PodCIDRs = []string{k.cfg.PodCIDR}
	}
	return n
}

// registerNode creates the Node, or brings an existing one's labels and
// pod CIDR up to date, retrying until ctx ends.
func (k *Kubelet) registerNode(ctx context.Context) error {
	delay := 500 * time.Millisecond
	for {
		err := k.tryRegister(ctx)
		if err == nil {
			return nil
		}
		k.log.Warn("node registration failed; retrying", "err", err, "in", delay)
		select {
		case <-ctx.Done():
			return fmt.Errorf("register node %s: %w", k.cfg.NodeName, err)
		case <-time.After(delay):
		}
		delay = min(delay*2, 10*time.Second)
	}
}

func (k *Kubelet) tryRegister(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	want := k.initialNode()
	nodes := k.client.Nodes
	n, err := nodes.Create(ctx, want, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		n, err = nodes.Get(ctx, k.cfg.NodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		changed := false
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		for key, v := range want.Labels {
			if n.Labels[key] != v {
				n.Labels[key] = v
				changed = true
			}
		}
		if n.Spec.PodCIDR == "" && want.Spec.PodCIDR != "" {
			n.Spec.PodCIDR, n.Spec.PodCIDRs = want.Spec.PodCIDR, want.Spec.PodCIDRs
			changed = true
		}
		if changed {
			if n, err = nodes.Update(ctx, n, metav1.UpdateOptions{}); err != nil {
				return err
			}
		}
		k.log.Info("node already registered; adopted it")
	} else if err != nil {
		return err
	} else {
		k.log.Info("registered node")
	}
	k.nodeMu.Lock()
	k.lastNode = n
	k.nodeMu.Unlock()
	return k.updateNodeStatus(ctx, true)
}

// nodeStatus is the node status as observed now.
func (k *Kubelet) nodeStatus(ctx context.Context, old corev1.NodeStatus) corev1.NodeStatus {
	now := metav1.NewTime(k.clock.Now().Truncate(time.Second))
	rtName, rtVersion, rtErr := k.rt.Version(ctx)
	capa := k.capacity()
	st := corev1.NodeStatus{
		Capacity:    capa,
		Allocatable: capa.DeepCopy(),
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: k.nodeIP},
			{Type: corev1.NodeHostName, Address: k.hostname},
		},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(k.cfg.Port)}},
		NodeInfo: corev1.NodeSystemInfo{
			MachineID:               readTrim("/etc/machine-id"),
			SystemUUID:              readTrim("/sys/class/dmi/id/product_uuid"),
			BootID:                  readTrim("/proc/sys/kernel/random/boot_id"),
			KernelVersion:           kernelVersion(),
			OSImage:                 osImage(),
			ContainerRuntimeVersion: rtName + "://" + rtVersion,
			KubeletVersion:          Version,
			KubeProxyVersion:        Version,
			OperatingSystem:         goruntime.GOOS,
			Architecture:            goruntime.GOARCH,
		},
	}
	if k.cfg.Hollow {
		st.NodeInfo.MachineID, st.NodeInfo.SystemUUID = k.cfg.NodeName, k.cfg.NodeName
	}
	ready := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "kubelet is posting ready status"}
	if rtErr != nil {
		ready = corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: "KubeletNotReady",
			Message: "container runtime is down: " + rtErr.Error()}
	}
	conds := []corev1.NodeCondition{
		{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory", Message: "kubelet has sufficient memory available"},
		{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasNoDiskPressure", Message: "kubelet has no disk pressure"},
		{Type: corev1.NodePIDPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientPID", Message: "kubelet has sufficient PID available"},
		ready,
	}
	for i := range conds {
		conds[i].LastHeartbeatTime = now
		conds[i].LastTransitionTime = now
		for _, o := range old.Conditions {
			if o.Type == conds[i].Type && o.Status == conds[i].Status {
				conds[i].LastTransitionTime = o.LastTransitionTime
			}
		}
	}
	st.Conditions = conds
	if imgs, err := k.rt.ListImages(ctx); err == nil {
		for _, img := range imgs {
			if len(st.Images) >= 50 {
				break
			}
			names := append(append([]string{}, img.RepoTags...), img.RepoDigests...)
			if len(names) == 0 {
				continue
			}
			st.Images = append(st.Images, corev1.ContainerImage{Names: names, SizeBytes: int64(img.Size)})
		}
	}
	return st
}

// sameIgnoringHeartbeat compares node statuses without heartbeat times.
func sameIgnoringHeartbeat(a, b corev1.NodeStatus) bool {
	a, b = *a.DeepCopy(), *b.DeepCopy()
	for i := range a.Conditions {
		a.Conditions[i].LastHeartbeatTime = metav1.Time{}
	}
	for i := range b.Conditions {
		b.Conditions[i].LastHeartbeatTime = metav1.Time{}
	}
	return equality.Semantic.DeepEqual(a, b)
}

// updateNodeStatus writes the node status if it changed, or if force, or
// if the last write is older than NodeStatusReportFrequency.
func (k *Kubelet) updateNodeStatus(ctx context.Context, force bool) error {
	k.nodeMu.Lock()
	node := k.lastNode
	last := k.lastReported
	k.nodeMu.Unlock()
	if node == nil {
		return nil
	}
	st := k.nodeStatus(ctx, node.Status)
	if !force && sameIgnoringHeartbeat(st, node.Status) && k.clock.Now().Sub(last) < k.cfg.NodeStatusReportFrequency {
		return nil
	}
	n := node.DeepCopy()
	n.Status = st
	out, err := k.client.Nodes.UpdateStatus(ctx, n, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		fresh, gerr := k.client.Nodes.Get(ctx, k.cfg.NodeName, metav1.GetOptions{})
		if apierrors.IsNotFound(gerr) {
			// Someone deleted our Node: register again.
			fresh, gerr = k.client.Nodes.Create(ctx, k.initialNode(), metav1.CreateOptions{})
		}
		if gerr != nil {
			return fmt.Errorf("node %s status: %w", k.cfg.NodeName, gerr)
		}
		fresh.Status = st
		out, err = k.client.Nodes.UpdateStatus(ctx, fresh, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("node %s status: %w", k.cfg.NodeName, err)
	}
	k.nodeMu.Lock()
	k.lastNode = out
	k.lastReported = k.clock.Now()
	k.nodeMu.Unlock()
	return nil
}

func (k *Kubelet) nodeStatusLoop(ctx context.Context) {
	every(ctx, k.cfg.NodeStatusUpdateFrequency, 30*time.Second, false, func(uctx context.Context) {
		if err := k.updateNodeStatus(uctx, false); err != nil && ctx.Err() == nil {
			k.log.Warn("node status update failed", "err", err)
		}
	})
}

// leaseLoop renews the node's Lease in kube-node-lease every
// LeaseRenewInterval; the node lifecycle controller reads it as the
// heartbeat.
func (k *Kubelet) leaseLoop(ctx context.Context) {
	every(ctx, k.cfg.LeaseRenewInterval, k.cfg.LeaseRenewInterval, true, func(lctx context.Context) {
		if err := k.renewLease(lctx); err != nil && ctx.Err() == nil {
			k.log.Warn("lease renewal failed", "err", err)
		}
	})
}

func (k *Kubelet) renewLease(ctx context.Context) error {
	leases := k.client.Leases.Namespace(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(k.clock.Now())
	dur := int32(k.cfg.LeaseDuration / time.Second)
	holder := k.cfg.NodeName
	l, err := leases.Get(ctx, k.cfg.NodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		l = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: k.cfg.NodeName, Namespace: corev1.NamespaceNodeLease},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &dur, RenewTime: &now},
		}
		k.nodeMu.Lock()
		if n := k.lastNode; n != nil {
			l.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: n.Name, UID: n.UID}}
		}
		k.nodeMu.Unlock()
		_, err = leases.Create(ctx, l, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("create lease %s: %w", k.cfg.NodeName, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("get lease %s: %w", k.cfg.NodeName, err)
	}
	l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Spec.RenewTime = &holder, &dur, &now
	if _, err := leases.Update(ctx, l, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("renew lease %s: %w", k.cfg.NodeName, err)
	}
	return nil
}

// removePodCgroup removes a pod's (empty) cgroup directories.
func (k *Kubelet) removePodCgroup(uid string) {
	if k.cfg.CgroupRoot == "" || k.cfg.Hollow {
		return
	}
	rel := filepath.Join(k.cfg.CgroupRoot, "pod"+uid)
	hier, _ := filepath.Glob("/sys/fs/cgroup/*")
	hier = append(hier, "/sys/fs/cgroup")
	for _, h := range hier {
		_ = os.Remove(filepath.Join(h, rel))
	}
}
