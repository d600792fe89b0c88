package v1

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestPodStatusSetCondition(t *testing.T) {
	t1, t2 := metav1.NewTime(time.Unix(100, 0)), metav1.NewTime(time.Unix(200, 0))
	cond := PodCondition{Type: DisruptionTarget, Status: ConditionTrue, Reason: "DeletionByPodGC", LastTransitionTime: t1}
	var st PodStatus
	st.Conditions = []PodCondition{{Type: PodReady, Status: ConditionTrue}}
	st.SetCondition(cond)
	if len(st.Conditions) != 2 || st.Conditions[1].Reason != "DeletionByPodGC" || !st.Conditions[1].LastTransitionTime.Equal(&t1) {
		t.Fatalf("added: %+v", st.Conditions)
	}
	cond.Message, cond.LastTransitionTime = "again", t2
	st.SetCondition(cond)
	if len(st.Conditions) != 2 || st.Conditions[1].Message != "again" || !st.Conditions[1].LastTransitionTime.Equal(&t1) {
		t.Fatalf("same status must keep its transition time: %+v", st.Conditions)
	}
	cond.Status = ConditionFalse
	st.SetCondition(cond)
	if len(st.Conditions) != 2 || !st.Conditions[1].LastTransitionTime.Equal(&t2) {
		t.Fatalf("a new status must take the new transition time: %+v", st.Conditions)
	}
}
