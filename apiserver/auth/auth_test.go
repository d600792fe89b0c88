package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var componentUsers = []string{UserAdmin, UserControllerManager, UserScheduler, NodeUser("node-1"), UserProxy}

func TestEnsureTokensCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth", "tokens.csv")
	f, err := EnsureTokens(path, componentUsers)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != len(componentUsers) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(componentUsers), data)
	}
	wantLine := map[string]*regexp.Regexp{
		UserAdmin:             regexp.MustCompile(`^[0-9a-f]{64},admin,admin,system:masters$`),
		UserControllerManager: regexp.MustCompile(`^[0-9a-f]{64},system:kube-controller-manager,system:kube-controller-manager$`),
		UserScheduler:         regexp.MustCompile(`^[0-9a-f]{64},system:kube-scheduler,system:kube-scheduler$`),
		NodeUser("node-1"):    regexp.MustCompile(`^[0-9a-f]{64},system:node:node-1,system:node:node-1,system:nodes$`),
		UserProxy:             regexp.MustCompile(`^[0-9a-f]{64},system:kube-proxy,system:kube-proxy$`),
	}
	for i, u := range componentUsers {
		if !wantLine[u].MatchString(lines[i]) {
			t.Errorf("line %d = %q, want match %v", i, lines[i], wantLine[u])
		}
	}
	seen := map[string]bool{}
	for _, e := range f.Entries() {
		if seen[e.Token] {
			t.Error("duplicate token")
		}
		seen[e.Token] = true
		u, ok := f.AuthenticateToken(e.Token)
		if !ok || u.Name != e.User.Name || !slices.Equal(u.Groups, DefaultGroups(e.User.Name)) {
			t.Errorf("token of %s authenticates as %+v", e.User.Name, u)
		}
	}
}

func TestEnsureTokensReuseAndAdd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.csv")
	f1, err := EnsureTokens(path, []string{UserAdmin, UserScheduler})
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	if _, err := EnsureTokens(path, []string{UserAdmin, UserScheduler}); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Fatal("file changed although no user was added")
	}
	f2, err := EnsureTokens(path, []string{UserAdmin, UserScheduler, NodeUser("n2")})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{UserAdmin, UserScheduler} {
		a, _ := f1.Token(u)
		b, _ := f2.Token(u)
		if a != b || a == "" {
			t.Errorf("token of %s changed across restarts", u)
		}
	}
	tok, ok := f2.Token(NodeUser("n2"))
	if !ok {
		t.Fatal("missing user not added")
	}
	if u, ok := f2.AuthenticateToken(tok); !ok || !u.InGroup(GroupNodes) {
		t.Fatalf("new node user: %+v", u)
	}
	if after, _ := os.ReadFile(path); !strings.HasPrefix(string(after), string(before)) {
		t.Fatal("existing lines were rewritten")
	}
}

func TestParseKubernetesFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.csv")
	content := "tok1,alice,1001,\"dev,ops\"\n" +
		"tok2,bob,1002\n" +
		"tok3, carol ,1003,\" qa , \"\n" +
		"tok1,alice2,1004,x\n" // duplicate token: the later line wins
	os.WriteFile(path, []byte(content), 0o600)
	f, err := LoadTokenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		token  string
		ok     bool
		name   string
		uid    string
		groups []string
	}{
		{"tok1", true, "alice2", "1004", []string{"x"}},
		{"tok2", true, "bob", "1002", nil},
		{"tok3", true, "carol ", "1003", []string{"qa"}},
		{"tok4", false, "", "", nil},
		{"", false, "", "", nil},
		{"tok", false, "", "", nil},
	}
	for _, c := range cases {
		u, ok := f.AuthenticateToken(c.token)
		if ok != c.ok {
			t.Errorf("%q: ok=%v", c.token, ok)
			continue
		}
		if ok && (u.Name != c.name || u.UID != c.uid || !slices.Equal(u.Groups, c.groups)) {
			t.Errorf("%q: got %+v", c.token, u)
		}
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct{ name, content, want string }{
		{"two columns", "tok,alice,1\ntok2,bob\n", "line 2"},
		{"empty token", ",alice,1\n", "empty token"},
		{"empty user", "tok,,1\n", "empty user"},
		{"bad quote", "tok,\"alice,1\n", "tokens.csv"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tokens.csv")
			os.WriteFile(path, []byte(c.content), 0o600)
			_, err := LoadTokenFile(path)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("want error naming %s and %q, got %v", path, c.want, err)
			}
			// EnsureTokens must not overwrite a file it cannot read.
			if _, err := EnsureTokens(path, []string{UserAdmin}); err == nil {
				t.Fatal("EnsureTokens accepted a broken file")
			}
			if b, _ := os.ReadFile(path); string(b) != c.content {
				t.Fatal("broken file was modified")
			}
		})
	}
}

func TestAddUser(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.csv")
	f, err := EnsureTokens(path, []string{UserAdmin})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := AddUser(path, NodeUser("worker"), []string{GroupNodes})
	if err != nil {
		t.Fatal(err)
	}
	again, err := AddUser(path, NodeUser("worker"), []string{GroupNodes})
	if err != nil || again != tok {
		t.Fatalf("AddUser not idempotent: %q vs %q, %v", again, tok, err)
	}
	if _, ok := f.AuthenticateToken(tok); ok {
		t.Fatal("running authenticator saw the user before Reload")
	}
	if err := f.Reload(); err != nil {
		t.Fatal(err)
	}
	if u, ok := f.AuthenticateToken(tok); !ok || u.Name != "system:node:worker" {
		t.Fatalf("after Reload: %+v %v", u, ok)
	}
	for _, bad := range []struct {
		user   string
		groups []string
	}{{"", nil}, {"a\nb", nil}, {"u", []string{"g,h"}}, {"u", []string{`"`}}} {
		if _, err := AddUser(path, bad.user, bad.groups); err == nil {
			t.Errorf("AddUser(%q, %q) accepted", bad.user, bad.groups)
		}
	}
}

func TestAddUserConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.csv")
	const n = 20
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, err := AddUser(path, NodeUser(fmt.Sprint("n", i)), []string{GroupNodes}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	f, err := LoadTokenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(f.Entries()); got != n {
		t.Fatalf("%d entries after %d concurrent AddUser, want %d (lost update)", got, n, n)
	}
}

func TestBearerToken(t *testing.T) {
	ws := func(tok string) string {
		return "base64url.bearer.authorization.k8s.io." + base64.RawURLEncoding.EncodeToString([]byte(tok))
	}
	cases := []struct {
		name    string
		headers map[string]string
		token   string
		ok      bool
	}{
		{"none", nil, "", false},
		{"bearer", map[string]string{"Authorization": "Bearer abc"}, "abc", true},
		{"lowercase scheme, extra spaces", map[string]string{"Authorization": "  bearer   abc  "}, "abc", true},
		{"basic", map[string]string{"Authorization": "Basic YTpi"}, "", false},
		{"empty bearer", map[string]string{"Authorization": "Bearer "}, "", false},
		{"websocket", map[string]string{"Sec-WebSocket-Protocol": "v5.channel.k8s.io, " + ws("xyz")}, "xyz", true},
		{"websocket bad base64", map[string]string{"Sec-WebSocket-Protocol": "base64url.bearer.authorization.k8s.io.!!"}, "", false},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/api", nil)
		for k, v := range c.headers {
			r.Header.Set(k, v)
		}
		tok, ok := BearerToken(r)
		if tok != c.token || ok != c.ok {
			t.Errorf("%s: got %q %v, want %q %v", c.name, tok, ok, c.token, c.ok)
		}
	}
}

func TestWithAuthentication(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.csv")
	f, err := EnsureTokens(path, []string{UserAdmin, UserScheduler})
	if err != nil {
		t.Fatal(err)
	}
	admin, _ := f.Token(UserAdmin)
	sched, _ := f.Token(UserScheduler)

	type seen struct {
		user          *UserInfo
		authorization string
		wsProto       string
	}
	var got *seen
	h := WithAuthentication(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := UserFrom(r.Context())
		got = &seen{user: u, authorization: r.Header.Get("Authorization"), wsProto: r.Header.Get("Sec-WebSocket-Protocol")}
		w.WriteHeader(http.StatusOK)
	}), f, nil, DefaultAnonymousPaths...)

	cases := []struct {
		name       string
		path       string
		headers    map[string]string
		wantCode   int
		wantUser   string
		wantGroups []string
	}{
		{"admin token", "/api/v1/pods", map[string]string{"Authorization": "Bearer " + admin}, 200, "admin", []string{GroupMasters, GroupAuthenticated}},
		{"component token", "/apis/apps/v1", map[string]string{"Authorization": "Bearer " + sched}, 200, UserScheduler, []string{GroupAuthenticated}},
		{"websocket token", "/api/v1/namespaces/d/pods/p/exec", map[string]string{"Sec-WebSocket-Protocol": "v5.channel.k8s.io,base64url.bearer.authorization.k8s.io." + base64.RawURLEncoding.EncodeToString([]byte(admin))}, 200, "admin", []string{GroupMasters, GroupAuthenticated}},
		{"no token", "/api/v1/pods", nil, 401, "", nil},
		{"bad token", "/api/v1/pods", map[string]string{"Authorization": "Bearer nope"}, 401, "", nil},
		{"basic auth", "/api", map[string]string{"Authorization": "Basic YTpi"}, 401, "", nil},
		{"healthz anonymous", "/healthz", nil, 200, UserAnonymous, []string{GroupUnauthenticated}},
		{"healthz subcheck anonymous", "/healthz/etcd", nil, 200, UserAnonymous, []string{GroupUnauthenticated}},
		{"livez", "/livez", nil, 200, UserAnonymous, []string{GroupUnauthenticated}},
		{"readyz", "/readyz", nil, 200, UserAnonymous, []string{GroupUnauthenticated}},
		{"version", "/version", nil, 200, UserAnonymous, []string{GroupUnauthenticated}},
		{"prefix lookalike is not anonymous", "/healthzz", nil, 401, "", nil},
		{"bad token on healthz", "/healthz", map[string]string{"Authorization": "Bearer nope"}, 401, "", nil},
		{"good token on healthz", "/healthz", map[string]string{"Authorization": "Bearer " + admin}, 200, "admin", []string{GroupMasters, GroupAuthenticated}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got = nil
			r := httptest.NewRequest("GET", c.path, nil)
			for k, v := range c.headers {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != c.wantCode {
				t.Fatalf("code %d, want %d", w.Code, c.wantCode)
			}
			if c.wantCode == 401 {
				if got != nil {
					t.Fatal("handler ran for an unauthenticated request")
				}
				var st metav1.Status
				if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil {
					t.Fatalf("body %q: %v", w.Body.String(), err)
				}
				want := metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: "Failure",
					Message: "Unauthorized", Reason: metav1.StatusReasonUnauthorized, Code: 401}
				if st.Kind != want.Kind || st.APIVersion != want.APIVersion || st.Status != want.Status ||
					st.Message != want.Message || st.Reason != want.Reason || st.Code != want.Code {
					t.Fatalf("status body %+v", st)
				}
				if ct := w.Header().Get("Content-Type"); ct != "application/json" {
					t.Fatalf("content type %q", ct)
				}
				return
			}
			if got == nil || got.user == nil {
				t.Fatal("no user in context")
			}
			if got.user.Name != c.wantUser || !slices.Equal(got.user.Groups, c.wantGroups) {
				t.Fatalf("user %+v, want %s %v", got.user, c.wantUser, c.wantGroups)
			}
			if got.authorization != "" || strings.Contains(got.wsProto, "bearer") {
				t.Fatalf("credentials forwarded to handler: %q %q", got.authorization, got.wsProto)
			}
			if c.headers["Sec-WebSocket-Protocol"] != "" && got.wsProto != "v5.channel.k8s.io" {
				t.Fatalf("other subprotocols lost: %q", got.wsProto)
			}
		})
	}

	// The caller's own unauthenticated handler is used when given.
	custom := WithAuthentication(http.NotFoundHandler(), f, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	})
	w := httptest.NewRecorder()
	custom.ServeHTTP(w, httptest.NewRequest("GET", "/healthz", nil))
	if w.Code != http.StatusTeapot {
		t.Fatalf("no anonymous paths given: code %d, want custom 418", w.Code)
	}
}

func TestUnion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.csv")
	f, _ := EnsureTokens(path, []string{UserAdmin})
	admin, _ := f.Token(UserAdmin)
	never := AuthenticatorFunc(func(*http.Request) (*UserInfo, bool, error) { return nil, false, nil })
	u := Union(never, f)
	req := func(h string) *http.Request {
		r := httptest.NewRequest("GET", "/", nil)
		if h != "" {
			r.Header.Set("Authorization", h)
		}
		return r
	}
	if got, ok, err := u.AuthenticateRequest(req("Bearer " + admin)); !ok || err != nil || got.Name != "admin" {
		t.Fatalf("good token: %+v %v %v", got, ok, err)
	}
	if _, ok, err := u.AuthenticateRequest(req("Bearer bad")); ok || err == nil {
		t.Fatalf("bad token: ok=%v err=%v", ok, err)
	}
	if _, ok, err := u.AuthenticateRequest(req("")); ok || err != nil {
		t.Fatalf("no token: ok=%v err=%v", ok, err)
	}
}

func TestAlwaysAllow(t *testing.T) {
	var a Authorizer = AlwaysAllow{}
	for _, attrs := range []Attributes{
		{User: &UserInfo{Name: "bob"}, Verb: "delete", ResourceRequest: true, Resource: "nodes", Name: "n1"},
		{User: Anonymous(), Verb: "get", Path: "/healthz"},
	} {
		d, _, err := a.Authorize(context.Background(), attrs)
		if d != DecisionAllow || err != nil {
			t.Errorf("%+v: %v %v", attrs, d, err)
		}
	}
}
