// Package nodeipam gives each Node a pod CIDR (spec.podCIDR) carved from
// the cluster CIDR, as Kubernetes' node IPAM controller does with
// --allocate-node-cidrs. The kubelet waits for it to configure the node's
// CNI bridge, and the agent routes other nodes' pod CIDRs via their node
// IPs. The Node objects themselves are the record of what is allocated: the
// controller keeps no state that a restart could lose.
package nodeipam
