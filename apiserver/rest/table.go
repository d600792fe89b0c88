package rest

import (
	"mime"
	"net/http"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/minik8s/minik8s/apiserver/registry"
)

// wantsTable reports whether the Accept header asks for a meta.k8s.io/v1
// Table (kubectl get sends "application/json;as=Table;v=v1;g=meta.k8s.io,
// application/json"). The first acceptable media type wins.
func wantsTable(r *http.Request) (bool, error) {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if mt != "application/json" && mt != "*/*" && mt != "application/*" {
			continue
		}
		if params["as"] == "" {
			return false, nil
		}
		if params["as"] == "Table" && params["g"] == "meta.k8s.io" && (params["v"] == "v1" || params["v"] == "v1beta1") {
			return true, nil
		}
	}
	return false, nil
}

var defaultColumns = []metav1.TableColumnDefinition{
	{Name: "Name", Type: "string", Format: "name", Description: "Name of the object"},
	{Name: "Age", Type: "string", Description: "Time since the object was created"},
}

// toTable renders objects as a Table with the resource's columns. Each row
// carries the object's metadata (includeObject=Metadata, the default) or
// the whole object (includeObject=Object), so clients can still show
// namespaces and labels.
func (a *API) toTable(res *registry.Resource, r *http.Request, objs []runtime.Object, withColumns bool) *metav1.Table {
	t := &metav1.Table{TypeMeta: metav1.TypeMeta{Kind: "Table", APIVersion: "meta.k8s.io/v1"}}
	cols := res.Columns
	if cols == nil {
		cols = defaultColumns
	}
	if withColumns {
		t.ColumnDefinitions = cols
	}
	include := r.URL.Query().Get("includeObject")
	t.Rows = make([]metav1.TableRow, 0, len(objs))
	for _, obj := range objs {
		row := metav1.TableRow{}
		if res.Row != nil {
			row.Cells = res.Row(obj)
		} else {
			m, _ := meta.Accessor(obj)
			row.Cells = []any{m.GetName(), registry.Age(m.GetCreationTimestamp())}
		}
		switch include {
		case "None":
		case "Object":
			setTypeMeta(a.Scheme, obj)
			row.Object = runtime.RawExtension{Object: obj}
		default:
			if m, err := meta.Accessor(obj); err == nil {
				pom := &metav1.PartialObjectMetadata{
					TypeMeta: metav1.TypeMeta{Kind: "PartialObjectMetadata", APIVersion: "meta.k8s.io/v1"},
				}
				pom.ObjectMeta = *metaCopy(m)
				row.Object = runtime.RawExtension{Object: pom}
			}
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

func metaCopy(m metav1.Object) *metav1.ObjectMeta {
	if om, ok := m.(*metav1.ObjectMeta); ok {
		return om.DeepCopy()
	}
	return &metav1.ObjectMeta{Name: m.GetName(), Namespace: m.GetNamespace(), UID: m.GetUID(),
		Labels: m.GetLabels(), Annotations: m.GetAnnotations(), ResourceVersion: m.GetResourceVersion(),
		CreationTimestamp: m.GetCreationTimestamp()}
}
