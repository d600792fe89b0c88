// Package defaults fills in the fields Kubernetes defaults when a client
// leaves them empty (restartPolicy Always, imagePullPolicy from the tag,
// service type ClusterIP, deployment strategy 25%/25%, ...). Default(obj)
// dispatches on type; RegisterDefaults wires the same functions into a
// runtime.Scheme so decoding through api/scheme defaults too.
//
// Defaulting only fills empty fields and is idempotent: running it twice,
// or on an object read back from storage, changes nothing. It never
// validates; bad values are left for api/validation to report. It must not
// depend on cluster state (allocating IPs, node ports, names is the API
// server's job).
package defaults
