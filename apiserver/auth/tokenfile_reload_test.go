package auth

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minik8s/minik8s/internal/syncbuf"
)

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 5s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWatchFileReloads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.csv")
	f, err := EnsureTokens(path, []string{UserAdmin})
	if err != nil {
		t.Fatal(err)
	}
	admin, _ := f.Token(UserAdmin)
	var logs syncbuf.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var mu sync.Mutex
	changes := 0
	go func() {
		defer close(done)
		f.WatchFile(ctx, 10*time.Millisecond, log, func() { mu.Lock(); changes++; mu.Unlock() })
	}()
	defer func() { cancel(); <-done }()
	nChanges := func() int { mu.Lock(); defer mu.Unlock(); return changes }

	// Another process adds a token: it takes effect.
	join, err := CreateToken(path, UserNodeJoin, DefaultGroups(UserNodeJoin))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "created token accepted", func() bool { _, ok := f.AuthenticateToken(join); return ok })
	if u, _ := f.AuthenticateToken(join); u.Name != UserNodeJoin || !u.InGroup(GroupNodes) {
		t.Fatalf("created token is %+v", u)
	}
	waitFor(t, "change callback", func() bool { return nChanges() == 1 })

	// A broken file keeps the previous tokens, logged once.
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(good, []byte("only-a-token\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "parse error logged", func() bool { return strings.Contains(logs.String(), "token file not reloaded") })
	time.Sleep(50 * time.Millisecond) // several more polls of the same broken file
	if n := strings.Count(logs.String(), "token file not reloaded"); n != 1 {
		t.Errorf("parse error logged %d times, want once:\n%s", n, logs.String())
	}
	for _, tok := range []string{admin, join} {
		if _, ok := f.AuthenticateToken(tok); !ok {
			t.Fatalf("token %s lost after a broken file", MaskToken(tok))
		}
	}

	// So does a missing file.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "missing file logged", func() bool { return strings.Count(logs.String(), "token file not reloaded") == 2 })
	if _, ok := f.AuthenticateToken(admin); !ok {
		t.Fatal("admin token lost after the file was removed")
	}

	// Fixed and without the join token: the join token is refused.
	if err := os.WriteFile(path, []byte(admin+",admin,admin,system:masters\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "deleted token refused", func() bool { _, ok := f.AuthenticateToken(join); return !ok })
	if _, ok := f.AuthenticateToken(admin); !ok {
		t.Fatal("admin token lost")
	}
	if nChanges() != 2 {
		t.Errorf("change callback ran %d times, want 2", nChanges())
	}
}

// A rewrite with the same content is no change; a replacement of the same
// size (one token deleted, another created) is.
func TestReloadComparesContent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.csv")
	f, err := EnsureTokens(path, []string{UserAdmin, UserNodeJoin})
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := f.reload(); err != nil || changed {
		t.Fatalf("reload of the file just written: changed=%v err=%v", changed, err)
	}
	old, _ := f.Token(UserNodeJoin)
	fi, _ := os.Stat(path)
	if _, err := DeleteToken(path, old, nil); err != nil {
		t.Fatal(err)
	}
	tok, err := CreateToken(path, UserNodeJoin, DefaultGroups(UserNodeJoin))
	if err != nil {
		t.Fatal(err)
	}
	if fi2, _ := os.Stat(path); fi2.Size() != fi.Size() {
		t.Fatalf("size %d -> %d; the test wants a same-size change", fi.Size(), fi2.Size())
	}
	if changed, err := f.reload(); err != nil || !changed {
		t.Fatalf("reload after a same-size change: changed=%v err=%v", changed, err)
	}
	if _, ok := f.AuthenticateToken(tok); !ok {
		t.Fatal("new token not accepted")
	}
	if _, ok := f.AuthenticateToken(old); ok {
		t.Fatal("deleted token still accepted")
	}
}

func TestCreateAndDeleteToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.csv")
	if _, err := EnsureTokens(path, []string{UserAdmin, UserNodeJoin}); err != nil {
		t.Fatal(err)
	}
	f, _ := LoadTokenFile(path)
	first, _ := f.Token(UserNodeJoin)
	second, err := CreateToken(path, UserNodeJoin, DefaultGroups(UserNodeJoin))
	if err != nil {
		t.Fatal(err)
	}
	if second == first {
		t.Fatal("CreateToken returned the existing token")
	}
	f, _ = LoadTokenFile(path)
	if got := len(f.Entries()); got != 3 {
		t.Fatalf("%d lines, want 3", got)
	}

	if _, err := DeleteToken(path, second[:MinTokenPrefix-1], nil); err == nil || !strings.Contains(err.Error(), "at least 8") {
		t.Errorf("too short a prefix: %v", err)
	}
	if _, err := DeleteToken(path, "ffffffffffffffffff", nil); err == nil || !strings.Contains(err.Error(), "no token starts with") {
		t.Errorf("unknown prefix: %v", err)
	}
	e, err := DeleteToken(path, first[:MinTokenPrefix], nil)
	if err != nil || e.Token != first || e.User.Name != UserNodeJoin {
		t.Fatalf("delete by prefix: %+v %v", e, err)
	}
	if e, err := DeleteToken(path, second, nil); err != nil || e.Token != second {
		t.Fatalf("delete whole token: %+v %v", e, err)
	}
	f, _ = LoadTokenFile(path)
	if got := f.Entries(); len(got) != 1 || got[0].User.Name != UserAdmin {
		t.Fatalf("left %+v, want the admin line", got)
	}

	// Two tokens sharing the prefix: ambiguous, nothing removed.
	if err := os.WriteFile(path, []byte("aaaaaaaa1111,u1,u1\naaaaaaaa2222,u2,u2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := DeleteToken(path, "aaaaaaaa", nil); err == nil || !strings.Contains(err.Error(), "2 tokens start with") {
		t.Errorf("ambiguous prefix: %v", err)
	}
	if f, _ := LoadTokenFile(path); len(f.Entries()) != 2 {
		t.Error("an ambiguous delete changed the file")
	}
}

func TestMaskToken(t *testing.T) {
	for in, want := range map[string]string{
		"0123456789abcdef0123": "01234567…",
		"short":                "sh…",
		"":                     "…",
	} {
		if got := MaskToken(in); got != want {
			t.Errorf("MaskToken(%q) = %q, want %q", in, got, want)
		}
	}
}
