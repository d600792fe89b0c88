package scheme

import (
	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
	autoscalingv1 "github.com/minik8s/minik8s/api/autoscaling/v1"
	coordinationv1 "github.com/minik8s/minik8s/api/coordination/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
	policyv1 "github.com/minik8s/minik8s/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
)

var (
	// Scheme knows every minik8s type and its defaults.
	Scheme = runtime.NewScheme()
	// Codecs builds JSON/YAML encoders and decoders over Scheme. Decoding is
	// lenient about unknown fields, as the API server is by default.
	Codecs = serializer.NewCodecFactory(Scheme)
	// StrictCodecs reject unknown and duplicate fields; use them for
	// fieldValidation=Strict requests and for manifests read by ctl.
	StrictCodecs = serializer.NewCodecFactory(Scheme, serializer.EnableStrict)
	// ParameterCodec converts query parameters to and from option structs
	// such as metav1.ListOptions.
	ParameterCodec = runtime.NewParameterCodec(Scheme)
)

// groups lists every API group's registration, in one place so AddToScheme
// and init cannot drift apart.
var groups = []func(*runtime.Scheme) error{
	corev1.AddToScheme,
	appsv1.AddToScheme,
	coordinationv1.AddToScheme,
	autoscalingv1.AddToScheme,
	policyv1.AddToScheme,
}

// AddToScheme registers every minik8s group, the meta types and the
// defaulting functions with s. Scheme is built with it; tests may build
// their own.
func AddToScheme(s *runtime.Scheme) error {
	// Unversioned meta types (Status, APIVersions, ...) and option types
	// under the legacy "v1" and under meta.k8s.io/v1, which is where
	// clients put DeleteOptions and where Table lives.
	metav1.AddToGroupVersion(s, schema.GroupVersion{Version: "v1"})
	metav1.AddToGroupVersion(s, metav1.SchemeGroupVersion)
	if err := metav1.AddMetaToScheme(s); err != nil {
		return err
	}
	for _, add := range groups {
		if err := add(s); err != nil {
			return err
		}
	}
	return addDefaultingFuncs(s)
}

func init() {
	// Registration only fails on programming errors (conflicting kinds),
	// which must stop the binary at start-up, not later.
	utilruntime.Must(AddToScheme(Scheme))
}
