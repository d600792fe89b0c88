package informer

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
)

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

func nodeIndex(obj runtime.Object) ([]string, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, errors.New("not a pod")
	}
	if p.Spec.NodeName == "" {
		return nil, nil
	}
	return []string{p.Spec.NodeName}, nil
}

func onNode(p *corev1.Pod, node string) *corev1.Pod { p.Spec.NodeName = node; return p }

func TestIndexer(t *testing.T) {
	type op struct {
		del bool
		obj runtime.Object
	}
	tests := []struct {
		name     string
		ops      []op
		wantKeys string
		wantN1   string // keys on node n1
		wantNsA  string // keys in namespace a
	}{
		{"add", []op{{obj: onNode(pod("a", "p", "1", nil), "n1")}}, "[a/p]", "[a/p]", "[a/p]"},
		{"update moves index entry", []op{
			{obj: onNode(pod("a", "p", "1", nil), "n1")},
			{obj: onNode(pod("a", "p", "2", nil), "n2")},
		}, "[a/p]", "[]", "[a/p]"},
		{"delete clears indices", []op{
			{obj: onNode(pod("a", "p", "1", nil), "n1")},
			{del: true, obj: pod("a", "p", "", nil)},
		}, "[]", "[]", "[]"},
		{"delete of missing is fine", []op{{del: true, obj: pod("a", "zz", "", nil)}}, "[]", "[]", "[]"},
		{"cluster scoped key", []op{{obj: onNode(pod("", "c", "1", nil), "n1")}}, "[c]", "[c]", "[]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewIndexer(Indexers{"node": nodeIndex})
			for _, o := range tt.ops {
				var err error
				if o.del {
					err = s.Delete(o.obj)
				} else {
					err = s.Add(o.obj)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			n1, _ := s.IndexKeys("node", "n1")
			nsA, _ := s.IndexKeys(NamespaceIndex, "a")
			got := [3]string{fmt.Sprint(s.ListKeys()), fmt.Sprint(n1), fmt.Sprint(nsA)}
			want := [3]string{tt.wantKeys, tt.wantN1, tt.wantNsA}
			if got != want {
				t.Errorf("keys/node n1/ns a = %v, want %v", got, want)
			}
		})
	}
}

func TestIndexerRejectsAtomically(t *testing.T) {
	s := NewIndexer(Indexers{"node": nodeIndex})
	if err := s.Add(onNode(pod("a", "p", "1", nil), "n1")); err != nil {
		t.Fatal(err)
	}
	// A Node is not a pod: the index func fails, nothing may change.
	bad := &corev1.Node{}
	bad.Name, bad.Namespace = "p", "a"
	if err := s.Add(bad); err == nil {
		t.Fatal("Add with failing index func succeeded")
	}
	obj, _ := s.Get("a/p")
	if _, ok := obj.(*corev1.Pod); !ok {
		t.Fatalf("stored object replaced by %T", obj)
	}
	if keys, _ := s.IndexKeys("node", "n1"); fmt.Sprint(keys) != "[a/p]" {
		t.Errorf("index changed: %v", keys)
	}
	if err := s.Replace([]runtime.Object{bad}); err == nil {
		t.Fatal("Replace with failing index func succeeded")
	}
	if s.Len() != 1 {
		t.Errorf("Replace changed the store on failure")
	}
}

func TestIndexerAddIndexersAndReplace(t *testing.T) {
	s := NewIndexer(nil)
	_ = s.Add(onNode(pod("a", "p1", "1", nil), "n1"))
	_ = s.Add(onNode(pod("b", "p2", "1", nil), "n2"))
	if err := s.AddIndexers(Indexers{"node": nodeIndex}); err != nil {
		t.Fatal(err)
	}
	if keys, _ := s.IndexKeys("node", "n2"); fmt.Sprint(keys) != "[b/p2]" {
		t.Errorf("new index missed existing objects: %v", keys)
	}
	if err := s.AddIndexers(Indexers{"node": nodeIndex}); err == nil {
		t.Error("duplicate indexer accepted")
	}
	if err := s.Replace([]runtime.Object{onNode(pod("c", "p3", "1", nil), "n1")}); err != nil {
		t.Fatal(err)
	}
	n1, _ := s.IndexKeys("node", "n1")
	nsA, _ := s.IndexKeys(NamespaceIndex, "a")
	if fmt.Sprint(s.ListKeys(), n1, nsA) != "[c/p3] [c/p3] []" {
		t.Errorf("after Replace: keys %v, n1 %v, ns a %v", s.ListKeys(), n1, nsA)
	}
}

func TestKeys(t *testing.T) {
	tests := []struct {
		obj     any
		want    string
		wantErr bool
	}{
		{pod("ns", "p", "", nil), "ns/p", false},
		{&corev1.Node{}, "", true},
		{DeletedFinalStateUnknown{Key: "ns/gone"}, "ns/gone", false},
		{"ns/already-a-key", "ns/already-a-key", false},
		{42, "", true},
	}
	for _, tt := range tests {
		got, err := MetaNamespaceKeyFunc(tt.obj)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("MetaNamespaceKeyFunc(%T) = %q, %v", tt.obj, got, err)
		}
	}
	split := []struct {
		key, ns, name string
		wantErr       bool
	}{
		{"ns/p", "ns", "p", false},
		{"node1", "", "node1", false},
		{"", "", "", true},
		{"a/b/c", "", "", true},
		{"/p", "", "", true},
		{"ns/", "", "", true},
	}
	for _, tt := range split {
		ns, name, err := SplitMetaNamespaceKey(tt.key)
		if ns != tt.ns || name != tt.name || (err != nil) != tt.wantErr {
			t.Errorf("Split(%q) = %q, %q, %v", tt.key, ns, name, err)
		}
	}
	p := pod("ns", "p", "1", nil)
	if got, ok := ObjectOf[*corev1.Pod](DeletedFinalStateUnknown{Key: "ns/p", Obj: p}); !ok || got != p {
		t.Error("ObjectOf did not unwrap a tombstone")
	}
	if _, ok := ObjectOf[*corev1.Node](p); ok {
		t.Error("ObjectOf accepted the wrong type")
	}
}
