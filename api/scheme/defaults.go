package scheme

import "k8s.io/apimachinery/pkg/runtime"

// addDefaultingFuncs registers per-type defaulters so Scheme.Default(obj)
// applies them. Filled in with api/defaults.
func addDefaultingFuncs(s *runtime.Scheme) error {
	return nil
}
