package plugins

// Plugin names, as in kube-scheduler where a namesake exists.
const (
	NodeUnschedulableName  = "NodeUnschedulable"
	NodeNameName           = "NodeName"
	TaintTolerationName    = "TaintToleration"
	NodeAffinityName       = "NodeAffinity"
	NodePortsName          = "NodePorts"
	NodeResourcesFitName   = "NodeResourcesFit"
	BalancedAllocationName = "NodeResourcesBalancedAllocation"
	InterPodAffinityName   = "InterPodAffinity"
	OwnerSpreadName        = "OwnerSpread"
	DefaultBinderName      = "DefaultBinder"
)

// Reasons, in Kubernetes' words, as they appear in "0/3 nodes are
// available: ..." messages.
const (
	ReasonNodeUnschedulable       = "node(s) were unschedulable"
	ReasonNodeName                = "node(s) didn't match the requested node name"
	ReasonNodeAffinity            = "node(s) didn't match Pod's node affinity/selector"
	ReasonNodePorts               = "node(s) didn't have free ports for the requested pod ports"
	ReasonTooManyPods             = "Too many pods"
	ReasonAntiAffinityRulesNotMet = "node(s) didn't match pod anti-affinity rules"
	ReasonExistingAntiAffinity    = "node(s) didn't satisfy existing pods anti-affinity rules"
	// ReasonUntoleratedTaintFormat takes the taint's key and value.
	ReasonUntoleratedTaintFormat = "node(s) had untolerated taint {%s: %s}"
	// ReasonInsufficientPrefix is followed by the resource name.
	ReasonInsufficientPrefix = "Insufficient "
)
