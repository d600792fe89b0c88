package proxy

import (
	"crypto/sha256"
	"encoding/base32"
)

// Chain name prefixes, as kube-proxy names them.
const (
	svcChainPrefix = "KUBE-SVC-"
	sepChainPrefix = "KUBE-SEP-"
)

// nameHash is the first 16 characters of the base32 encoding of the
// SHA-256 of s: stable across restarts and nodes, short enough for
// iptables' 28-character chain names.
func nameHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base32.StdEncoding.EncodeToString(sum[:])[:16]
}

// ServiceChainName is the KUBE-SVC chain of one service port, named by
// "namespace/name:port" and protocol (lower case), like kube-proxy.
func ServiceChainName(servicePortName, protocol string) string {
	return svcChainPrefix + nameHash(servicePortName+protocol)
}

// EndpointChainName is the KUBE-SEP chain of one endpoint ("ip:port") of a
// service port.
func EndpointChainName(servicePortName, protocol, endpoint string) string {
	return sepChainPrefix + nameHash(servicePortName+protocol+endpoint)
}
