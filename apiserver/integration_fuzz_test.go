package apiserver_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	k8scorev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"

	"github.com/minik8s/minik8s/apiserver/apiservertest"
)

// fuzzTargets are the endpoints and body encodings FuzzCreateBody picks
// from with its first argument.
var (
	fuzzPaths        = []string{"/api/v1/namespaces/default/configmaps", "/api/v1/namespaces/default/pods"}
	fuzzContentTypes = []string{"application/json", "application/yaml", "application/vnd.kubernetes.protobuf", ""}
)

// FuzzCreateBody POSTs arbitrary bytes as a ConfigMap or Pod body (as
// JSON, YAML, protobuf or without a content type) to one real API server
// and checks the server's contract for bad input: the answer is 201 or a
// 4xx Kubernetes Status — never a 5xx, never a dropped connection.
//
// target selects the path (bit 0) and the content type (bits 1-2).
func FuzzCreateBody(f *testing.F) {
	s := apiservertest.Start(f)
	for _, seed := range protobufSeeds(f) {
		f.Add(uint8(0b100), seed) // configmaps, protobuf
		f.Add(uint8(0b101), seed) // pods, protobuf
	}
	pool := x509.NewCertPool()
	ca, err := os.ReadFile(filepath.Join(s.DataDir, "pki", "ca.crt"))
	if err != nil {
		f.Fatal(err)
	}
	pool.AppendCertsFromPEM(ca)
	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	f.Fuzz(func(t *testing.T, target uint8, body []byte) {
		path := fuzzPaths[int(target)&1]
		ct := fuzzContentTypes[int(target>>1)&3]
		req, err := http.NewRequest("POST", s.URL+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+s.AdminToken)
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("POST %s (%s, %d bytes): connection failed: %v", path, ct, len(body), err)
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("POST %s (%s): reading the answer: %v", path, ct, err)
		}
		switch {
		case resp.StatusCode == http.StatusCreated:
			var m metav1.PartialObjectMetadata
			if err := json.Unmarshal(data, &m); err != nil || m.Name == "" || m.UID == "" || m.ResourceVersion == "" {
				t.Fatalf("201 without a stored object (%v): %s", err, data)
			}
		case resp.StatusCode >= 400 && resp.StatusCode < 500:
			var st metav1.Status
			if err := json.Unmarshal(data, &st); err != nil || st.Kind != "Status" || st.Status != metav1.StatusFailure ||
				int(st.Code) != resp.StatusCode || st.Message == "" {
				t.Fatalf("%d without a Status naming the problem (%v): %s", resp.StatusCode, err, data)
			}
		default:
			t.Fatalf("POST %s (%s) answered %d: %s\nbody: %q", path, ct, resp.StatusCode, data, body)
		}
	})
}

// protobufSeeds are valid Kubernetes protobuf bodies (as client-go sends
// them) for the fuzzer to mutate; they cannot be written by hand.
func protobufSeeds(f *testing.F) [][]byte {
	sch := runtime.NewScheme()
	if err := k8scorev1.AddToScheme(sch); err != nil {
		f.Fatal(err)
	}
	ser := protobuf.NewSerializer(sch, sch)
	var out [][]byte
	for _, obj := range []runtime.Object{
		&k8scorev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{GenerateName: "pb-", Labels: map[string]string{"a": "b"}}, Data: map[string]string{"k": "v"}},
		&k8scorev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: metav1.ObjectMeta{GenerateName: "pb-"},
			Spec: k8scorev1.PodSpec{Containers: []k8scorev1.Container{{Name: "c", Image: "minik8s.local/busybox:1.35",
				Ports: []k8scorev1.ContainerPort{{ContainerPort: 80}}}}}},
	} {
		var buf bytes.Buffer
		if err := ser.Encode(obj, &buf); err != nil {
			f.Fatal(err)
		}
		out = append(out, buf.Bytes())
	}
	return out
}
