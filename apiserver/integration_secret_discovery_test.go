package apiserver_test

import (
	"bytes"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"

	"github.com/minik8s/minik8s/apiserver/apiservertest"
)

// TestIntegrationSecretsEncryptedAtRest: a Secret's values never reach etcd
// in plaintext, read back decoded through the API, and stringData is
// folded into data.
func TestIntegrationSecretsEncryptedAtRest(t *testing.T) {
	s := apiservertest.Start(t)
	itBodyEncodings(t, s, func(t *testing.T, cs *kubernetes.Clientset, sfx string) {
		ctx := itCtx(t)
		name := "creds-" + sfx
		const password = "hunter2-very-secret-value"
		const token = "string-data-token-value"
		sec, err := cs.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "db"}},
			Data:       map[string][]byte{"password": []byte(password)},
			StringData: map[string]string{"token": token},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if string(sec.Data["token"]) != token || len(sec.StringData) != 0 {
			t.Errorf("create answer: stringData not folded into data: data %q stringData %v", sec.Data, sec.StringData)
		}
		if sec.Type != corev1.SecretTypeOpaque {
			t.Errorf("type %q, want Opaque", sec.Type)
		}

		key := "/registry/secrets/default/" + name
		resp, err := s.EtcdClient().Get(ctx, key)
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("raw etcd read of %s: %v (%d values)", key, err, len(resp.Kvs))
		}
		raw := resp.Kvs[0].Value
		for _, plain := range []string{password, token, "hunter2", name, `"password"`} {
			if bytes.Contains(raw, []byte(plain)) {
				t.Errorf("etcd value of %s contains %q in plaintext", key, plain)
			}
		}
		// Base64 of the value (how JSON would carry it) must not be there
		// either.
		for _, enc := range []string{"aHVudGVyMi12ZXJ5LXNlY3JldC12YWx1ZQ", "c3RyaW5nLWRhdGEtdG9rZW4tdmFsdWU"} {
			if bytes.Contains(raw, []byte(enc)) {
				t.Errorf("etcd value of %s contains the base64 of a secret", key)
			}
		}

		got, err := cs.CoreV1().Secrets("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if string(got.Data["password"]) != password || string(got.Data["token"]) != token || len(got.StringData) != 0 {
			t.Errorf("read back: data %q stringData %v", got.Data, got.StringData)
		}
		// Lists and label selectors work on the encrypted resource.
		l, err := cs.CoreV1().Secrets("default").List(ctx, metav1.ListOptions{LabelSelector: "app=db"})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, it := range l.Items {
			found = found || (it.Name == name && string(it.Data["password"]) == password)
		}
		if !found {
			t.Errorf("list did not return the decoded secret")
		}
		// stringData on update overrides data of the same key.
		got.StringData = map[string]string{"password": "rotated"}
		upd, err := cs.CoreV1().Secrets("default").Update(ctx, got, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if string(upd.Data["password"]) != "rotated" || len(upd.StringData) != 0 {
			t.Errorf("update: data %q stringData %v", upd.Data, upd.StringData)
		}
		resp, err = s.EtcdClient().Get(ctx, key)
		if err != nil || bytes.Contains(resp.Kvs[0].Value, []byte("rotated")) {
			t.Errorf("updated value is in plaintext in etcd (%v)", err)
		}
		// A ciphertext moved to another key does not decrypt there: the
		// key is bound into the encryption.
		moved := "/registry/secrets/default/moved-" + sfx
		if _, err := s.EtcdClient().Put(ctx, moved, string(resp.Kvs[0].Value)); err != nil {
			t.Fatal(err)
		}
		_, err = cs.CoreV1().Secrets("default").Get(ctx, "moved-"+sfx, metav1.GetOptions{})
		if err == nil {
			t.Errorf("a secret copied to another etcd key decrypted successfully")
		}
		if _, err := s.EtcdClient().Delete(ctx, moved); err != nil {
			t.Fatal(err)
		}
	})
	// Other kinds are stored as plain JSON (sanity check that the
	// plaintext test above can fail).
	cs := itClientset(t, s, true)
	if _, err := cs.CoreV1().ConfigMaps("default").Create(itCtx(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "plain"},
		Data: map[string]string{"k": "visible-value"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	resp, err := s.EtcdClient().Get(itCtx(t), "/registry/configmaps/default/plain")
	if err != nil || len(resp.Kvs) != 1 || !bytes.Contains(resp.Kvs[0].Value, []byte("visible-value")) {
		t.Errorf("configmap not stored as readable JSON (%v)", err)
	}
}

// TestIntegrationDiscoveryAndAuth covers discovery documents, client-go's
// discovery client, anonymous access rules and /metrics.
func TestIntegrationDiscoveryAndAuth(t *testing.T) {
	s := apiservertest.Start(t)
	c := newClient(t, s)

	code, body := c.do("GET", "/api", "", "")
	if code != 200 || body["kind"] != "APIVersions" || !slices.Contains(anySlice(body["versions"]), any("v1")) {
		t.Errorf("/api: %d %v", code, body)
	}
	code, body = c.do("GET", "/apis", "", "")
	if code != 200 || body["kind"] != "APIGroupList" {
		t.Fatalf("/apis: %d %v", code, body)
	}
	groups := map[string]bool{}
	for _, g := range anySlice(body["groups"]) {
		groups[g.(map[string]any)["name"].(string)] = true
	}
	for _, g := range []string{"apps", "coordination.k8s.io"} {
		if !groups[g] {
			t.Errorf("/apis lacks group %s: %v", g, groups)
		}
	}

	type res struct {
		short []string
		verbs []string
	}
	readList := func(path string) map[string]res {
		t.Helper()
		code, body := c.do("GET", path, "", "")
		if code != 200 || body["kind"] != "APIResourceList" {
			t.Fatalf("%s: %d %v", path, code, body)
		}
		out := map[string]res{}
		for _, r := range anySlice(body["resources"]) {
			m := r.(map[string]any)
			var rr res
			for _, s := range anySlice(m["shortNames"]) {
				rr.short = append(rr.short, s.(string))
			}
			for _, v := range anySlice(m["verbs"]) {
				rr.verbs = append(rr.verbs, v.(string))
			}
			out[m["name"].(string)] = rr
		}
		return out
	}
	allVerbs := []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
	core := readList("/api/v1")
	apps := readList("/apis/apps/v1")
	for _, tc := range []struct {
		list     map[string]res
		resource string
		short    string
	}{
		{core, "pods", "po"}, {core, "services", "svc"}, {core, "configmaps", "cm"}, {core, "namespaces", "ns"},
		{core, "nodes", "no"}, {core, "endpoints", "ep"}, {apps, "deployments", "deploy"}, {apps, "replicasets", "rs"},
	} {
		r, ok := tc.list[tc.resource]
		if !ok {
			t.Errorf("discovery lacks %s", tc.resource)
			continue
		}
		if !slices.Contains(r.short, tc.short) {
			t.Errorf("%s short names %v, want %s", tc.resource, r.short, tc.short)
		}
		for _, v := range allVerbs {
			if !slices.Contains(r.verbs, v) {
				t.Errorf("%s verbs %v lack %s", tc.resource, r.verbs, v)
			}
		}
	}
	for _, sub := range []string{"pods/status", "pods/binding", "namespaces/finalize", "services/status"} {
		if _, ok := core[sub]; !ok {
			t.Errorf("/api/v1 lacks subresource %s", sub)
		}
	}
	for _, sub := range []string{"deployments/scale", "deployments/status", "replicasets/scale"} {
		if _, ok := apps[sub]; !ok {
			t.Errorf("/apis/apps/v1 lacks subresource %s", sub)
		}
	}
	for _, r := range []string{"secrets", "events", "leases"} {
		if _, ok := core[r]; !ok && r != "leases" {
			t.Errorf("/api/v1 lacks %s", r)
		}
	}

	t.Run("client-go discovery", func(t *testing.T) {
		dc, err := discovery.NewDiscoveryClientForConfig(itConfig(t, s, false))
		if err != nil {
			t.Fatal(err)
		}
		groups, lists, err := dc.ServerGroupsAndResources()
		if err != nil {
			t.Fatalf("ServerGroupsAndResources: %v", err)
		}
		var names []string
		for _, g := range groups {
			names = append(names, g.Name)
		}
		if !slices.Contains(names, "") || !slices.Contains(names, "apps") || !slices.Contains(names, "coordination.k8s.io") {
			t.Errorf("groups %v", names)
		}
		found := map[string]bool{}
		for _, l := range lists {
			for _, r := range l.APIResources {
				found[l.GroupVersion+"/"+r.Name] = true
			}
		}
		for _, want := range []string{"v1/pods", "v1/services", "v1/endpoints", "v1/configmaps", "v1/secrets", "v1/nodes",
			"v1/events", "v1/namespaces", "apps/v1/deployments", "apps/v1/replicasets", "coordination.k8s.io/v1/leases"} {
			if !found[want] {
				t.Errorf("client-go discovery lacks %s", want)
			}
		}
		v, err := dc.ServerVersion()
		if err != nil || v.Major != "1" || v.GitVersion == "" {
			t.Errorf("ServerVersion: %+v %v", v, err)
		}
		pref, err := dc.ServerPreferredResources()
		if err != nil || len(pref) == 0 {
			t.Errorf("ServerPreferredResources: %d lists, %v", len(pref), err)
		}
	})

	t.Run("anonymous", func(t *testing.T) {
		anon := *c
		anon.token = ""
		for _, p := range []string{"/version", "/healthz", "/readyz", "/livez"} {
			code, body := anon.do("GET", p, "", "")
			if code != 200 {
				t.Errorf("anonymous %s: %d %v", p, code, body)
			}
		}
		for _, p := range []string{"/api", "/apis", "/api/v1", "/api/v1/namespaces", "/api/v1/namespaces/default/secrets",
			"/apis/apps/v1/deployments", "/metrics", "/openapi/v3", "/nope", "/api/v1/nodes?watch=1"} {
			code, body := anon.do("GET", p, "", "")
			if code != 401 || body["kind"] != "Status" || body["reason"] != "Unauthorized" {
				t.Errorf("anonymous %s: %d %v, want 401 Status Unauthorized", p, code, body)
			}
		}
		code, body := anon.do("POST", "/api/v1/namespaces/default/configmaps", "application/json", `{"metadata":{"name":"anon"}}`)
		if code != 401 {
			t.Errorf("anonymous create: %d %v", code, body)
		}
		bad := *c
		bad.token = "not-a-valid-token"
		if code, body := bad.do("GET", "/api/v1/namespaces", "", ""); code != 401 || body["kind"] != "Status" {
			t.Errorf("bad token: %d %v", code, body)
		}
		if _, err := itClientset(t, s, false).CoreV1().ConfigMaps("default").Get(itCtx(t), "anon", metav1.GetOptions{}); err == nil {
			t.Errorf("anonymous create stored an object")
		}
	})

	t.Run("metrics", func(t *testing.T) {
		// Make at least one counted request first.
		c.do("GET", "/api/v1/namespaces/default/configmaps", "", "")
		req, _ := http.NewRequest("GET", s.URL+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+s.AdminToken)
		resp, err := c.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		text := string(data)
		if resp.StatusCode != 200 || !strings.Contains(text, "apiserver_request_total") {
			t.Fatalf("/metrics: %d, apiserver_request_total missing", resp.StatusCode)
		}
		if !strings.Contains(text, `resource="configmaps"`) {
			t.Errorf("/metrics has no configmaps request series")
		}
	})
}

func anySlice(v any) []any {
	s, _ := v.([]any)
	return s
}
