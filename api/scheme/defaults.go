package scheme

import (
	"github.com/minik8s/minik8s/api/defaults"
	"k8s.io/apimachinery/pkg/runtime"
)

// addDefaultingFuncs registers per-type defaulters so Scheme.Default(obj),
// and every decoder from Codecs.UniversalDecoder, applies api/defaults.
func addDefaultingFuncs(s *runtime.Scheme) error {
	return defaults.RegisterDefaults(s)
}
