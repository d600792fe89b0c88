// Package plugins holds the scheduler's filter, score and bind plugins,
// each named and behaving like its kube-scheduler namesake:
//
//	Filter: NodeUnschedulable, NodeName, TaintToleration (NoSchedule,
//	        NoExecute), NodeAffinity (nodeSelector and required node
//	        affinity), NodePorts, NodeResourcesFit (cpu, memory,
//	        ephemeral-storage, extended resources, pod count),
//	        InterPodAffinity (required pod anti-affinity, both directions,
//	        any topology key)
//	Score:  NodeResourcesFit (least allocated), NodeResourcesBalancedAllocation,
//	        NodeAffinity (preferred terms), TaintToleration (PreferNoSchedule),
//	        OwnerSpread (pods of the same controller apart, by node and zone)
//	Bind:   DefaultBinder (POST pods/{name}/binding)
//
// Default returns them in kube-scheduler's order with its weights. Plugins
// only read the NodeInfo snapshot and the pod; only DefaultBinder writes.
package plugins
