package rest

import (
	"encoding/json"
	"fmt"

	k8sappsv1 "k8s.io/api/apps/v1"
	k8sautoscalingv1 "k8s.io/api/autoscaling/v1"
	k8scoordinationv1 "k8s.io/api/coordination/v1"
	k8scorev1 "k8s.io/api/core/v1"
	k8spolicyv1 "k8s.io/api/policy/v1"
	k8spolicyv1beta1 "k8s.io/api/policy/v1beta1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
)

// Stock clients (kubectl create, client-go's typed clients) send request
// bodies of built-in kinds as Kubernetes protobuf. minik8s keeps its own
// types JSON-only, so a protobuf body is transcoded once at the edge: it is
// decoded with the upstream k8s.io/api types, which carry the generated
// protobuf code, and re-encoded as JSON that then goes through the normal
// JSON pipeline (strict field checks, defaults, validation). Responses are
// always JSON, which every client accepts.
var protobufCodec = func() runtime.Decoder {
	s := runtime.NewScheme()
	utilruntime.Must(k8scorev1.AddToScheme(s))
	utilruntime.Must(k8sappsv1.AddToScheme(s))
	utilruntime.Must(k8scoordinationv1.AddToScheme(s))
	utilruntime.Must(k8sautoscalingv1.AddToScheme(s))
	utilruntime.Must(k8spolicyv1.AddToScheme(s)) // Eviction (pods/eviction)
	utilruntime.Must(k8spolicyv1beta1.AddToScheme(s))
	metav1.AddToGroupVersion(s, metav1.SchemeGroupVersion)
	return protobuf.NewSerializer(s, s)
}()

func protobufToJSON(data []byte) ([]byte, error) {
	obj, _, err := protobufCodec.Decode(data, nil, nil)
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid protobuf body: %v", err))
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("protobuf body of kind %T cannot be represented as JSON: %v", obj, err))
	}
	return out, nil
}
