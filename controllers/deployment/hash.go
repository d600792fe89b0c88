package deployment

import (
	"encoding/binary"
	"encoding/json"
	"hash/fnv"

	"k8s.io/apimachinery/pkg/api/equality"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
)

// hashAlphabet has no vowels (so no words) and no look-alikes.
const hashAlphabet = "bcdfghjklmnpqrstvwxz2456789"

// TemplateHash is the pod-template-hash of a pod template: FNV-1a over its
// JSON form (struct fields in declaration order, map keys sorted, so it is
// stable) without any pod-template-hash label, plus the collision count
// when there is one, written in a vowel-free alphabet.
func TemplateHash(t *corev1.PodTemplateSpec, collisionCount *int32) string {
	t = withoutHash(t)
	data, err := json.Marshal(t)
	if err != nil {
		panic("pod template does not marshal: " + err.Error()) // plain data: cannot happen
	}
	h := fnv.New32a()
	h.Write(data)
	if collisionCount != nil {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], uint32(*collisionCount))
		h.Write(b[:])
	}
	return encodeHash(h.Sum32())
}

func encodeHash(v uint32) string {
	var out []byte
	n := uint32(len(hashAlphabet))
	for {
		out = append(out, hashAlphabet[v%n])
		v /= n
		if v == 0 {
			break
		}
	}
	return string(out)
}

// withoutHash returns a copy of t without the pod-template-hash label.
func withoutHash(t *corev1.PodTemplateSpec) *corev1.PodTemplateSpec {
	c := t.DeepCopy()
	delete(c.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	if len(c.Labels) == 0 {
		c.Labels = nil
	}
	return c
}

// EqualIgnoreHash reports whether two pod templates are the same apart
// from their pod-template-hash labels.
func EqualIgnoreHash(a, b *corev1.PodTemplateSpec) bool {
	return equality.Semantic.DeepEqual(withoutHash(a), withoutHash(b))
}
