package apiserver_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minik8s/minik8s/apiserver"
	"github.com/minik8s/minik8s/apiserver/apiservertest"
	"github.com/minik8s/minik8s/apiserver/auth"
	"github.com/minik8s/minik8s/client/join"
)

// TestTokenRotationWithoutRestart does what `minik8s token create` and
// `minik8s token delete` do (the same functions) against a running server:
// a created join token works within the reload interval, through the same
// handshake an agent makes; a deleted one is refused; node-token follows.
func TestTokenRotationWithoutRestart(t *testing.T) {
	s := apiservertest.Start(t)
	wait := 5*apiserver.TokenReloadInterval + 5*time.Second
	status := func(bearer string) int {
		c := newClient(t, s)
		c.token = bearer
		code, _ := c.do("GET", "/api/v1/namespaces/default", "", "")
		return code
	}
	nodeToken := func() string {
		b, err := os.ReadFile(filepath.Join(s.DataDir, "node-token"))
		if errors.Is(err, os.ErrNotExist) {
			return ""
		}
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	original := nodeToken()
	orig, err := join.Parse(original)
	if err != nil {
		t.Fatalf("node-token %q: %v", original, err)
	}

	created, err := apiserver.CreateJoinToken(s.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := join.Parse(created)
	if err != nil {
		t.Fatalf("created token %q: %v", created, err)
	}
	if tok.CAHash != orig.CAHash || tok.Bearer == orig.Bearer {
		t.Fatalf("created %q next to node-token %q: want the same CA hash, another bearer", created, original)
	}
	itEventually(t, wait, "created token accepted", func() error {
		if code := status(tok.Bearer); code != 200 {
			return fmt.Errorf("GET with the created token: %d", code)
		}
		return nil
	})
	// As an agent joins: pin the CA by the token's hash, then use the bearer.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	kc, err := join.Discover(ctx, s.URL, tok)
	if err != nil {
		t.Fatalf("join with the created token: %v", err)
	}
	if kc.Token != tok.Bearer || string(kc.CAData) != string(s.CA()) {
		t.Fatalf("join kubeconfig: token %q CA %q", auth.MaskToken(kc.Token), kc.CAData)
	}
	if nodeToken() != original {
		t.Fatal("node-token changed though its token is still valid")
	}

	// The original is the token of the server's own node-join.kubeconfig:
	// deleting it needs force, and without it nothing changes.
	if _, err := apiserver.DeleteToken(s.DataDir, orig.Bearer, false); err == nil ||
		!strings.Contains(err.Error(), "node-join.kubeconfig") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("delete a token the server's kubeconfigs use, without force: %v", err)
	}
	if code := status(orig.Bearer); code != 200 {
		t.Fatalf("a refused delete changed the token: %d", code)
	}
	// Retire it with force, by the prefix `token list` shows: it is
	// refused, the created one still works, and node-token now holds it.
	e, err := apiserver.DeleteToken(s.DataDir, auth.MaskToken(orig.Bearer)[:auth.MinTokenPrefix], true)
	if err != nil || e.Token != orig.Bearer || e.User.Name != auth.UserNodeJoin {
		t.Fatalf("delete the original join token: %+v %v", e, err)
	}
	itEventually(t, wait, "deleted token refused", func() error {
		if code := status(orig.Bearer); code != 401 {
			return fmt.Errorf("GET with the deleted token: %d", code)
		}
		return nil
	})
	if code := status(tok.Bearer); code != 200 {
		t.Fatalf("the created token stopped working: %d", code)
	}
	itEventually(t, wait, "node-token rewritten", func() error {
		if got := nodeToken(); got != created {
			return fmt.Errorf("node-token is %q, want the created token", got)
		}
		return nil
	})

	// Delete the last join token by its whole K10 form: refused, and no
	// node-token is left holding it. The admin token is untouched.
	if _, err := apiserver.DeleteToken(s.DataDir, created, false); err != nil {
		t.Fatal(err)
	}
	itEventually(t, wait, "last join token refused", func() error {
		if code := status(tok.Bearer); code != 401 {
			return fmt.Errorf("GET with the deleted token: %d", code)
		}
		return nil
	})
	itEventually(t, wait, "node-token removed", func() error {
		if got := nodeToken(); got != "" {
			return fmt.Errorf("node-token still holds %q", got)
		}
		return nil
	})
	if code := status(s.AdminToken); code != 200 {
		t.Fatalf("admin after the deletes: %d", code)
	}

	// A restart mints a join token again, as on first start.
	s.Stop()
	s2 := apiservertest.StartIn(t, s.DataDir)
	again, err := join.Parse(nodeToken())
	if err != nil {
		t.Fatalf("node-token after restart: %v", err)
	}
	c := newClient(t, s2)
	c.token = again.Bearer
	if code, body := c.do("GET", "/api/v1/namespaces/default", "", ""); code != 200 {
		t.Fatalf("join token minted at restart: %d %v", code, body)
	}
}
