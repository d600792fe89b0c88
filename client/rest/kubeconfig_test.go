package rest

import (
	"context"
	"encoding/pem"
	"fmt"
	"net/http"
	"testing"

	"github.com/minik8s/minik8s/client/kubeconfig"
)

func TestConfigFromKubeconfig(t *testing.T) {
	srv := newFakeAPIServer(t, true, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, podJSON) })
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	cfg, err := ConfigFromKubeconfig(&kubeconfig.Config{Server: srv.URL, CAData: caPEM, Token: "tok", Namespace: "ns"})
	if err != nil {
		t.Fatal(err)
	}
	c := newTestClient(t, *cfg)
	if err := c.Get().Version("v1").Resource("pods").Do(context.Background()).Error(); err != nil {
		t.Fatalf("request through kubeconfig-derived client: %v", err)
	}
	if got := srv.recorded()[0].Header.Get("Authorization"); got != "Bearer tok" {
		t.Errorf("Authorization = %q", got)
	}
	if _, err := ConfigFromKubeconfig(&kubeconfig.Config{Server: "https://x", CAData: caPEM, Insecure: true}); err == nil {
		t.Error("insecure + CA must be refused")
	}
	if _, err := ConfigFromKubeconfig(nil); err == nil {
		t.Error("nil kubeconfig must be refused")
	}
}
