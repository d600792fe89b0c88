package kubelet

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
)

// event records an Event about a pod. Events are best effort: they are
// queued and sent by eventLoop; when the queue is full they are dropped.
func (k *Kubelet) event(pod *corev1.Pod, typ, reason, msg string) {
	if k.events == nil {
		return
	}
	now := metav1.NewTime(k.clock.Now())
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name:      fmt.Sprintf("%s.%x", pod.Name, now.UnixNano()),
			Namespace: pod.Namespace,
		},
		InvolvedObject:      corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
		Reason:              reason,
		Message:             msg,
		Source:              corev1.EventSource{Component: "kubelet", Host: k.cfg.NodeName},
		FirstTimestamp:      now,
		LastTimestamp:       now,
		Count:               1,
		Type:                typ,
		ReportingController: "kubelet",
		ReportingInstance:   k.cfg.NodeName,
	}
	select {
	case k.events <- ev:
	default:
	}
}

func (k *Kubelet) eventLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-k.events:
			ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if _, err := k.client.Events.Namespace(ev.Namespace).Create(ectx, ev, metav1.CreateOptions{}); err != nil && ctx.Err() == nil {
				k.log.Debug("event not recorded", "reason", ev.Reason, "err", err)
			}
			cancel()
		}
	}
}
