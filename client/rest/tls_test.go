package rest

import (
	"context"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestTLS(t *testing.T) {
	srv := newFakeAPIServer(t, true, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, podJSON) })
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"trusted CA", Config{CAData: caPEM}, ""},
		{"unknown CA", Config{}, "certificate"},
		{"insecure", Config{Insecure: true}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Host = srv.URL
			c := newTestClient(t, cfg)
			err := c.Get().Version("v1").Resource("pods").Do(context.Background()).Error()
			if tt.wantErr == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("error = %v, want containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestBadTLSMaterial(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"garbage CA", Config{Host: "h:1", CAData: []byte("nope")}, "no PEM certificate"},
		{"cert without key", Config{Host: "h:1", CertData: []byte("x")}, "client certificate"},
	}
	for _, tt := range tests {
		if _, err := New(&tt.cfg, testScheme(t)); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: error %v, want containing %q", tt.name, err, tt.wantErr)
		}
	}
}
