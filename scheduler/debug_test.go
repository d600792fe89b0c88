package scheduler

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/minik8s/minik8s/client/rest"
	"github.com/minik8s/minik8s/client/typed"
)

// TestDebugPodsEmptyIsAnEmptyArray: with nothing pending /debug/pods is
// the JSON array [] (what scripts doing `jq length` or `.[]` expect), not
// null.
func TestDebugPodsEmptyIsAnEmptyArray(t *testing.T) {
	// New does not talk to the server; the address is never dialed.
	cs, err := typed.NewForConfig(&rest.Config{Host: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Client: cs, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/pods", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	body, _ := io.ReadAll(rec.Body)
	if got := strings.TrimSpace(string(body)); got != "[]" {
		t.Errorf("/debug/pods with nothing pending = %q, want []", got)
	}
}
