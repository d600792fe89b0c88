package kubelet

import (
	"os"
	"path/filepath"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
)

type mapConfigs struct {
	cms     map[string]*corev1.ConfigMap
	secrets map[string]*corev1.Secret
}

func (m mapConfigs) ConfigMap(_, name string) (*corev1.ConfigMap, error) {
	if c, ok := m.cms[name]; ok {
		return c, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "configmaps"}, name)
}

func (m mapConfigs) Secret(_, name string) (*corev1.Secret, error) {
	if s, ok := m.secrets[name]; ok {
		return s, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "secrets"}, name)
}

func TestEnvResolution(t *testing.T) {
	src := mapConfigs{
		cms:     map[string]*corev1.ConfigMap{"cfg": {Data: map[string]string{"a": "1", "b": "2"}}},
		secrets: map[string]*corev1.Secret{"sec": {Data: map[string][]byte{"pw": []byte("hunter2")}}},
	}
	yes := true
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "prod", UID: "u1", Labels: map[string]string{"app": "web"}}}
	c := &corev1.Container{
		Name:    "app",
		EnvFrom: []corev1.EnvFromSource{{Prefix: "CFG_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
		Env: []corev1.EnvVar{
			{Name: "CFG_a", Value: "override"},
			{Name: "PW", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}, Key: "pw"}}},
			{Name: "NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			{Name: "NS", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
			{Name: "IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
			{Name: "APP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
			{Name: "OPT", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "missing"}, Key: "x", Optional: &yes}}},
			{Name: "URL", Value: "http://$(IP):$(PORT)/$(NAME) $$(NAME)"},
		},
	}
	env, err := envFor(pod, c, src, "10.0.0.9", "192.168.0.1", "node-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range env {
		got[kv.Key] = string(kv.Value)
	}
	want := map[string]string{"CFG_a": "override", "CFG_b": "2", "PW": "hunter2", "NAME": "web", "NS": "prod", "IP": "10.0.0.9",
		"APP": "web", "URL": "http://10.0.0.9:$(PORT)/web $(NAME)"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if _, ok := got["OPT"]; ok || len(got) != len(want) {
		t.Errorf("env %v", got)
	}

	for _, bad := range []corev1.EnvVar{
		{Name: "X", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "missing"}, Key: "x"}}},
		{Name: "X", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Key: "nokey"}}},
		{Name: "X", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "nosecret"}, Key: "pw"}}},
	} {
		_, err := envFor(pod, &corev1.Container{Name: "app", Env: []corev1.EnvVar{bad}}, src, "", "", "", nil)
		var ce *ConfigError
		if err == nil || !asConfigError(err, &ce) {
			t.Errorf("env %+v: err %v, want a ConfigError", bad.ValueFrom, err)
		}
	}
}

func asConfigError(err error, ce **ConfigError) bool {
	e, ok := err.(*ConfigError)
	*ce = e
	return ok
}

func TestResourcesAndQoS(t *testing.T) {
	q := resource.MustParse
	c := &corev1.Container{Resources: corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: q("250m"), corev1.ResourceMemory: q("64Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: q("500m"), corev1.ResourceMemory: q("128Mi")},
	}}
	r := linuxResources(c, corev1.PodQOSBurstable, 1<<30)
	if r.CpuShares != 256 || r.CpuQuota != 50000 || r.CpuPeriod != 100000 || r.MemoryLimitInBytes != 128<<20 {
		t.Errorf("resources %+v", r)
	}
	if r.OomScoreAdj < 2 || r.OomScoreAdj > 999 {
		t.Errorf("burstable oom_score_adj %d", r.OomScoreAdj)
	}
	if r := linuxResources(&corev1.Container{}, corev1.PodQOSBestEffort, 0); r.CpuShares != 2 || r.CpuQuota != 0 || r.MemoryLimitInBytes != 0 || r.OomScoreAdj != 1000 {
		t.Errorf("best effort %+v", r)
	}
	pod := func(cs ...corev1.Container) *corev1.Pod { return &corev1.Pod{Spec: corev1.PodSpec{Containers: cs}} }
	guaranteed := corev1.Container{Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: q("1"), corev1.ResourceMemory: q("1Gi")}}}
	if got := qosClass(pod(corev1.Container{})); got != corev1.PodQOSBestEffort {
		t.Errorf("qos %s", got)
	}
	if got := qosClass(pod(guaranteed)); got != corev1.PodQOSGuaranteed {
		t.Errorf("qos %s", got)
	}
	if got := qosClass(pod(*c)); got != corev1.PodQOSBurstable {
		t.Errorf("qos %s", got)
	}
}

func TestWriteAtomicProjection(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vol")
	if err := writeAtomic(dir, map[string]projectedFile{"a": {[]byte("1"), 0o644}, "sub/b": {[]byte("2"), 0o600}}); err != nil {
		t.Fatal(err)
	}
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			return "<" + err.Error() + ">"
		}
		return string(b)
	}
	if read("a") != "1" || read("sub/b") != "2" {
		t.Fatalf("first projection: %q %q", read("a"), read("sub/b"))
	}
	target1, _ := os.Readlink(filepath.Join(dir, "..data"))
	if err := writeAtomic(dir, map[string]projectedFile{"a": {[]byte("1"), 0o644}, "sub/b": {[]byte("2"), 0o600}}); err != nil {
		t.Fatal(err)
	}
	if t2, _ := os.Readlink(filepath.Join(dir, "..data")); t2 != target1 {
		t.Errorf("unchanged content was rewritten")
	}
	if err := writeAtomic(dir, map[string]projectedFile{"a": {[]byte("new"), 0o644}}); err != nil {
		t.Fatal(err)
	}
	if read("a") != "new" {
		t.Errorf("update not visible: %q", read("a"))
	}
	if _, err := os.Lstat(filepath.Join(dir, "sub")); !os.IsNotExist(err) {
		t.Errorf("removed key still visible: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 { // a, ..data, ..<timestamp>
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("entries %v", names)
	}
}

func TestEnvResourceFieldRef(t *testing.T) {
	q := resource.MustParse
	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{
		{Name: "app", Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: q("250m"), corev1.ResourceMemory: q("64Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceCPU: q("1500m"), corev1.ResourceMemory: q("128Mi")},
		}},
		{Name: "side"},
	}}}
	alloc := corev1.ResourceList{corev1.ResourceCPU: q("2"), corev1.ResourceMemory: q("4Gi")}
	ref := func(name, container, res, div string) corev1.EnvVar {
		r := &corev1.ResourceFieldSelector{ContainerName: container, Resource: res}
		if div != "" {
			r.Divisor = q(div)
		}
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: r}}
	}
	c := &corev1.Container{Name: "side", Env: []corev1.EnvVar{
		ref("APP_CPU_LIMIT", "app", "limits.cpu", ""),          // 1.5 cores rounds up to 2
		ref("APP_CPU_LIMIT_M", "app", "limits.cpu", "1m"),      // 1500
		ref("APP_MEM_LIMIT_MI", "app", "limits.memory", "1Mi"), // 128
		ref("APP_CPU_REQ_M", "app", "requests.cpu", "1m"),      // 250
		ref("APP_MEM_REQ", "app", "requests.memory", ""),       // 67108864
		ref("OWN_CPU_LIMIT", "", "limits.cpu", ""),             // unset: the node's 2
		ref("OWN_MEM_LIMIT_MI", "", "limits.memory", "1Mi"),    // unset: the node's 4096
		ref("OWN_MEM_REQ", "", "requests.memory", ""),          // unset: 0
	}}
	env, err := envFor(pod, c, mapConfigs{}, "", "", "", alloc)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range env {
		got[kv.Key] = string(kv.Value)
	}
	want := map[string]string{"APP_CPU_LIMIT": "2", "APP_CPU_LIMIT_M": "1500", "APP_MEM_LIMIT_MI": "128", "APP_CPU_REQ_M": "250",
		"APP_MEM_REQ": "67108864", "OWN_CPU_LIMIT": "2", "OWN_MEM_LIMIT_MI": "4096", "OWN_MEM_REQ": "0"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if _, err := envFor(pod, &corev1.Container{Name: "x", Env: []corev1.EnvVar{ref("X", "nope", "limits.cpu", "")}}, mapConfigs{}, "", "", "", alloc); err == nil {
		t.Error("a resourceFieldRef to a missing container resolved")
	}
}
