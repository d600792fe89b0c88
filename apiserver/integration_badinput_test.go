package apiserver_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik8s/minik8s/apiserver/apiservertest"
)

// rawResponse is a raw HTTP answer: code, headers and the decoded body.
type rawResponse struct {
	code   int
	header http.Header
	body   map[string]any
	raw    string
}

// doRaw is client.do that also returns the headers.
func (c *client) doRaw(method, path, contentType string, body []byte) rawResponse {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	out := rawResponse{code: resp.StatusCode, header: resp.Header, raw: string(data)}
	_ = json.Unmarshal(data, &out.body)
	return out
}

// checkStatus checks that r is a Status error with the code, and that its
// message (or a cause's field) mentions every string in mention.
func checkStatus(t *testing.T, what string, r rawResponse, code int, mention ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("%s: HTTP %d, want %d: %s", what, r.code, code, r.raw)
		return
	}
	if r.body["kind"] != "Status" || r.body["status"] != "Failure" || r.body["code"] != float64(code) {
		t.Errorf("%s: body is not a Failure Status with code %d: %s", what, code, r.raw)
		return
	}
	text := r.raw // message plus details.causes[].field
	for _, m := range mention {
		if !strings.Contains(text, m) {
			t.Errorf("%s: Status does not mention %q: %s", what, m, r.raw)
		}
	}
}

const validDeployment = `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"%s"},
 "spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},
  "template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"web","image":"minik8s.local/web:v1"}]}}}}`

// TestIntegrationBadInput: every kind of bad request gets a Kubernetes
// Status naming the problem, never a 500, and writes nothing.
func TestIntegrationBadInput(t *testing.T) {
	s := apiservertest.Start(t)
	c := newClient(t, s)
	cms := "/api/v1/namespaces/default/configmaps"
	deps := "/apis/apps/v1/namespaces/default/deployments"
	pods := "/api/v1/namespaces/default/pods"
	dep := func(name string) string { return strings.Replace(validDeployment, "%s", name, 1) }
	// Objects to update.
	if r := c.doRaw("POST", cms, "application/json", []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"exists"}}`)); r.code != 201 {
		t.Fatalf("setup: %s", r.raw)
	}
	if r := c.doRaw("POST", deps, "application/json", []byte(dep("exists"))); r.code != 201 {
		t.Fatalf("setup: %s", r.raw)
	}

	before := itEtcdHead(t, s)
	for _, tc := range []struct {
		name, method, path, ct, body string
		code                         int
		mention                      []string
	}{
		{"malformed JSON", "POST", cms, "application/json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"`, 400, []string{"JSON"}},
		{"trailing garbage", "POST", cms, "application/json", `{"metadata":{"name":"x"}} {"more":1}`, 400, nil},
		{"empty body", "POST", cms, "application/json", ``, 400, []string{"empty"}},
		{"null body", "POST", cms, "application/json", `null`, 422, []string{"metadata.name"}},
		{"array body", "POST", cms, "application/json", `[{"metadata":{"name":"x"}}]`, 400, nil},
		{"string body", "POST", cms, "application/json", `"configmap"`, 400, nil},
		{"malformed YAML", "POST", cms, "application/yaml", "metadata:\n  name: [x\n", 400, []string{"YAML"}},
		{"malformed protobuf", "POST", cms, "application/vnd.kubernetes.protobuf", "k8s\x00\x0a\xff\xff", 400, []string{"protobuf"}},
		{"wrong type replicas", "POST", deps, "application/json", strings.Replace(dep("x"), `"replicas":2`, `"replicas":"three"`, 1), 400, []string{"spec.replicas"}},
		{"wrong type data", "POST", cms, "application/json", `{"metadata":{"name":"x"},"data":{"a":1}}`, 400, []string{"data"}},
		{"wrong type labels", "POST", cms, "application/json", `{"metadata":{"name":"x","labels":["a"]}}`, 400, []string{"labels"}},
		{"bad timestamp", "POST", cms, "application/json", `{"metadata":{"name":"x","creationTimestamp":"yesterday"}}`, 400, nil},
		{"unknown field strict", "POST", cms + "?fieldValidation=Strict", "application/json", `{"metadata":{"name":"x"},"dataa":{"a":"1"}}`, 400, []string{"dataa"}},
		{"unknown nested field strict", "POST", deps + "?fieldValidation=Strict", "application/json", strings.Replace(dep("x"), `"replicas":2`, `"replicas":2,"replica":3`, 1), 400, []string{"spec.replica"}},
		{"duplicate field strict", "POST", cms + "?fieldValidation=Strict", "application/json", `{"metadata":{"name":"x"},"data":{"a":"1"},"data":{"b":"2"}}`, 400, []string{"data"}},
		{"bad fieldValidation", "POST", cms + "?fieldValidation=Loose", "application/json", `{"metadata":{"name":"x"}}`, 400, []string{"fieldValidation"}},
		{"bad dryRun", "POST", cms + "?dryRun=Some", "application/json", `{"metadata":{"name":"x"}}`, 400, []string{"dryRun"}},
		{"invalid name", "POST", cms, "application/json", `{"metadata":{"name":"Upper_case"}}`, 422, []string{"metadata.name"}},
		{"name with slash", "POST", cms, "application/json", `{"metadata":{"name":"a/b"}}`, 422, []string{"metadata.name"}},
		{"name dot-dot", "POST", cms, "application/json", `{"metadata":{"name":".."}}`, 422, []string{"metadata.name"}},
		{"name too long", "POST", cms, "application/json", `{"metadata":{"name":"` + strings.Repeat("a", 254) + `"}}`, 422, []string{"metadata.name"}},
		{"no name", "POST", cms, "application/json", `{"metadata":{}}`, 422, []string{"metadata.name"}},
		{"bad label", "POST", cms, "application/json", `{"metadata":{"name":"x","labels":{"a b":"c"}}}`, 422, []string{"metadata.labels"}},
		{"selector mismatch", "POST", deps, "application/json", strings.Replace(dep("x"), `"labels":{"app":"web"}`, `"labels":{"app":"db"}`, 1), 422, []string{"spec.template.metadata.labels"}},
		{"negative replicas", "POST", deps, "application/json", strings.Replace(dep("x"), `"replicas":2`, `"replicas":-1`, 1), 422, []string{"spec.replicas"}},
		{"pod without containers", "POST", pods, "application/json", `{"metadata":{"name":"x"},"spec":{"containers":[]}}`, 422, []string{"spec.containers"}},
		{"bad quantity", "POST", pods, "application/json", `{"metadata":{"name":"x"},"spec":{"containers":[{"name":"a","image":"i","resources":{"limits":{"cpu":"lots"}}}]}}`, 400, []string{"quantit"}},
		{"kind mismatch", "POST", cms, "application/json", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"x"}}`, 400, []string{"kind"}},
		{"apiVersion mismatch", "POST", cms, "application/json", `{"apiVersion":"apps/v1","kind":"ConfigMap","metadata":{"name":"x"}}`, 400, []string{"apiVersion"}},
		{"namespace mismatch", "POST", cms, "application/json", `{"metadata":{"name":"x","namespace":"kube-system"}}`, 400, []string{"namespace"}},
		{"update name mismatch", "PUT", cms + "/exists", "application/json", `{"metadata":{"name":"other"}}`, 400, []string{"name"}},
		{"update namespace mismatch", "PUT", cms + "/exists", "application/json", `{"metadata":{"name":"exists","namespace":"kube-system"}}`, 400, []string{"namespace"}},
		{"update wrong type", "PUT", deps + "/exists", "application/json", strings.Replace(dep("exists"), `"replicas":2`, `"replicas":"three"`, 1), 400, []string{"spec.replicas"}},
		{"update selector", "PUT", deps + "/exists", "application/json", strings.Replace(strings.ReplaceAll(dep("exists"), `"app":"web"`, `"app":"other"`), "", "", 0), 422, []string{"spec.selector"}},
		{"update missing", "PUT", cms + "/missing", "application/json", `{"metadata":{"name":"missing"}}`, 404, nil},
		{"unknown resource", "GET", "/api/v1/namespaces/default/widgets", "", ``, 404, nil},
		{"unknown group", "GET", "/apis/example.com/v1/things", "", ``, 404, nil},
		{"namespaced path for cluster kind", "GET", "/api/v1/namespaces/default/nodes", "", ``, 404, nil},
		{"create on item path", "POST", cms + "/exists", "application/json", `{"metadata":{"name":"exists"}}`, 405, nil},
		// A subresource the resource lacks is a path nobody serves: 404
		// NotFound, as Kubernetes answers; a subresource it has, with a
		// verb it lacks, is 405.
		{"unknown subresource", "GET", pods + "/x/bogus", "", ``, 404, []string{`"reason":"NotFound"`, "the server could not find the requested resource"}},
		{"unknown subresource write", "PUT", cms + "/exists/bogus", "application/json", `{}`, 404, []string{`"reason":"NotFound"`}},
		{"status of a kind without status", "GET", cms + "/exists/status", "", ``, 404, []string{`"reason":"NotFound"`}},
		{"scale of a kind without scale", "GET", cms + "/exists/scale", "", ``, 404, []string{`"reason":"NotFound"`}},
		{"binding of a non-pod", "POST", cms + "/exists/binding", "application/json", `{}`, 404, []string{`"reason":"NotFound"`}},
		{"finalize of a non-namespace", "PUT", cms + "/exists/finalize", "application/json", `{}`, 404, []string{`"reason":"NotFound"`}},
		{"unknown resource message", "GET", "/api/v1/namespaces/default/widgets/x", "", ``, 404, []string{"the server could not find the requested resource"}},
		{"get binding", "GET", pods + "/x/binding", "", ``, 405, []string{`"reason":"MethodNotAllowed"`}},
		{"delete status", "DELETE", deps + "/exists/status", "", ``, 405, []string{`"reason":"MethodNotAllowed"`}},
		{"get finalize", "GET", "/api/v1/namespaces/default/finalize", "", ``, 405, []string{`"reason":"MethodNotAllowed"`}},
		{"bad label selector", "GET", cms + "?labelSelector=a%20in%20(", "", ``, 400, []string{"labelSelector"}},
		{"bad field selector", "GET", cms + "?fieldSelector=spec.nodeName%3Dx", "", ``, 400, []string{"spec.nodeName"}},
		{"bad limit", "GET", cms + "?limit=-3", "", ``, 400, []string{"limit"}},
		{"bad continue", "GET", cms + "?limit=1&continue=garbage", "", ``, 400, []string{"continue"}},
		{"bad resourceVersion", "GET", cms + "?resourceVersion=abc", "", ``, 400, []string{"abc"}},
		{"bad watch resourceVersion", "GET", cms + "?watch=1&resourceVersion=-5", "", ``, 400, nil},
		{"bad timeoutSeconds", "GET", cms + "?watch=1&timeoutSeconds=soon", "", ``, 400, []string{"timeoutSeconds"}},
		{"bad delete options", "DELETE", cms + "/exists", "application/json", `{"propagationPolicy":7}`, 400, nil},
		{"bad grace period", "DELETE", cms + "/exists?gracePeriodSeconds=later", "", ``, 400, []string{"gracePeriodSeconds"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := c.doRaw(tc.method, tc.path, tc.ct, []byte(tc.body))
			checkStatus(t, tc.name, r, tc.code, tc.mention...)
		})
	}
	if after := itEtcdHead(t, s); after != before {
		t.Errorf("rejected requests wrote to etcd: revision %d -> %d", before, after)
	}
	cs := itClientset(t, s, false)
	l, err := cs.CoreV1().ConfigMaps("default").List(itCtx(t), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 1 || l.Items[0].Name != "exists" {
		t.Errorf("configmaps after rejected creates: %d items", len(l.Items))
	}

	t.Run("too large", func(t *testing.T) {
		big := `{"metadata":{"name":"big"},"data":{"a":"` + strings.Repeat("x", 4<<20) + `"}}`
		r := c.doRaw("POST", cms, "application/json", []byte(big))
		checkStatus(t, "4 MiB body", r, 413)
	})

	t.Run("unknown field default warns", func(t *testing.T) {
		r := c.doRaw("POST", cms, "application/json", []byte(`{"metadata":{"name":"warned"},"dataa":{"a":"1"},"data":{"b":"2"}}`))
		if r.code != 201 {
			t.Fatalf("unknown field without fieldValidation: %d %s, want 201", r.code, r.raw)
		}
		w := strings.Join(r.header.Values("Warning"), "; ")
		if !strings.HasPrefix(w, "299 ") || !strings.Contains(w, "dataa") {
			t.Errorf("Warning header %q does not name the unknown field dataa", w)
		}
		if _, ok := r.body["dataa"]; ok {
			t.Errorf("unknown field was stored: %s", r.raw)
		}
		r = c.doRaw("POST", cms, "application/json", []byte(`{"metadata":{"name":"dup"},"data":{"a":"1"},"data":{"b":"2"}}`))
		if w := strings.Join(r.header.Values("Warning"), "; "); r.code != 201 || !strings.Contains(w, "duplicate") {
			t.Errorf("duplicate field without fieldValidation: %d, Warning %q; want 201 and a duplicate-field warning", r.code, w)
		}
		r = c.doRaw("POST", cms+"?fieldValidation=Ignore", "application/json", []byte(`{"metadata":{"name":"ignored"},"dataa":{"a":"1"}}`))
		if r.code != 201 || len(r.header.Values("Warning")) != 0 {
			t.Errorf("fieldValidation=Ignore: %d warnings %v", r.code, r.header.Values("Warning"))
		}
	})

	t.Run("client-go sees the warning", func(t *testing.T) {
		// client-go's default handler logs warnings; the typed error path
		// is what matters for Strict.
		body := []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"strict"},"bogus":true}`)
		res := cs.CoreV1().RESTClient().Post().Namespace("default").Resource("configmaps").
			Param("fieldValidation", "Strict").SetHeader("Content-Type", "application/json").Body(body).Do(itCtx(t))
		st := itWantStatus(t, res.Error(), 400, metav1.StatusReasonBadRequest)
		if !strings.Contains(st.Message, "bogus") {
			t.Errorf("strict error does not name the field: %q", st.Message)
		}
	})
}
