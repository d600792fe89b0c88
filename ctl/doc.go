// Package ctl is the minik8s command-line client: a cobra command tree that
// behaves like kubectl (get, describe, apply, create, replace, delete, edit,
// diff, patch, label, annotate, scale, set image, expose, rollout, logs,
// exec, attach, port-forward, cordon, uncordon, drain, version,
// cluster-info, api-resources).
//
// It works on any kind the server lists in discovery: objects travel as
// unstructured JSON, tables come from the server (meta.k8s.io/v1 Table), and
// the typed structs of api/scheme are used only where they matter (strict
// manifest checks, strategic-merge patch keys). It talks to the API server
// only through client/rest and reads credentials only through
// client/kubeconfig; it must hold no state between invocations.
//
// Subpackages: printer (output formats), jsonpath (templates), manifest
// (reading -f files), apply (the three-way merge), describe (human-readable
// object reports), rollout (deployment rollout status and history logic).
package ctl
