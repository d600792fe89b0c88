package framework

// ClusterEvent is a kind of cluster change that can make a pod that fit
// nowhere fit somewhere.
type ClusterEvent string

// The cluster events the scheduler reacts to.
const (
	NodeAdd                     ClusterEvent = "NodeAdd"
	NodeLabelChange             ClusterEvent = "NodeLabelChange"
	NodeTaintChange             ClusterEvent = "NodeTaintChange"
	NodeAllocatableChange       ClusterEvent = "NodeAllocatableChange"
	NodeSpecUnschedulableChange ClusterEvent = "NodeSpecUnschedulableChange"
	AssignedPodDelete           ClusterEvent = "AssignedPodDelete"
	AssignedPodLabelChange      ClusterEvent = "AssignedPodLabelChange"
	// UnschedulableTimeout is the periodic flush of pods parked too long;
	// it moves every pod.
	UnschedulableTimeout ClusterEvent = "UnschedulableTimeout"
)

// EnqueueExtensions is implemented by filter plugins that can say which
// cluster events could undo their rejection: a pod rejected only by
// NodeResourcesFit is worth retrying when a pod is deleted or a node's
// allocatable grows, not when a node's labels change. A rejecting plugin
// that does not implement it is assumed to care about every event.
type EnqueueExtensions interface {
	EventsToRegister() []ClusterEvent
}

// IsInterested reports whether a pod rejected by the plugins in rejectedBy
// could fit after ev. An empty rejectedBy (the attempt failed for another
// reason) is always interested.
func (f *Framework) IsInterested(ev ClusterEvent, rejectedBy map[string]struct{}) bool {
	if ev == UnschedulableTimeout || ev == NodeAdd || len(rejectedBy) == 0 {
		return true
	}
	interested := f.interest[ev]
	for name := range rejectedBy {
		if interested[name] || f.undeclared[name] {
			return true
		}
	}
	return false
}

func (f *Framework) buildInterest(plugins []Plugin) {
	f.interest = map[ClusterEvent]map[string]bool{}
	f.undeclared = map[string]bool{}
	for _, p := range plugins {
		ext, ok := p.(EnqueueExtensions)
		if !ok {
			f.undeclared[p.Name()] = true
			continue
		}
		for _, ev := range ext.EventsToRegister() {
			if f.interest[ev] == nil {
				f.interest[ev] = map[string]bool{}
			}
			f.interest[ev][p.Name()] = true
		}
	}
}
