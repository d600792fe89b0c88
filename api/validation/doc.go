// Package validation checks minik8s API objects the way Kubernetes does and
// reports every problem as a field.Error whose path and type match
// Kubernetes (e.g. "spec.containers[0].image: Required value"), so the API
// server can turn the list into a 422 Invalid Status naming the fields.
//
// ValidateCreate, ValidateUpdate and ValidateStatusUpdate dispatch on the
// object's type; per-kind functions (ValidatePod, ValidateDeploymentUpdate,
// ...) are exported for callers that know the kind. Objects are expected to
// be defaulted (api/defaults) before validation, as in Kubernetes: fields
// that always have a default (restartPolicy, imagePullPolicy, port
// protocols ...) are required here.
//
// Validation is pure: it reads only the objects passed in, never cluster
// state. Checks that need state (node port ranges, ClusterIP allocation,
// referenced objects existing) belong to the API server and controllers.
package validation
