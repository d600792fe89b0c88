package encryption

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func newT(t *testing.T) *AESGCM {
	t.Helper()
	key, err := LoadOrCreateKey(filepath.Join(t.TempDir(), "enc.key"))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewAESGCM(key)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestRoundTrip(t *testing.T) {
	tr := newT(t)
	for _, plain := range [][]byte{
		nil,
		[]byte(`{"kind":"Secret","data":{"password":"aHVudGVyMg=="}}`),
		bytes.Repeat([]byte("x"), 1<<20),
	} {
		key := "/registry/secrets/default/db"
		enc, err := tr.TransformToStorage(key, plain)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(enc, []byte(Prefix)) {
			t.Fatalf("stored value lacks prefix: %q", enc[:min(len(enc), 40)])
		}
		if len(plain) > 8 && bytes.Contains(enc, plain[:min(len(plain), 64)]) {
			t.Fatal("ciphertext contains the plaintext")
		}
		got, err := tr.TransformFromStorage(key, enc)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, plain) {
			t.Fatalf("round trip mismatch: %d bytes vs %d", len(got), len(plain))
		}
	}
}

func TestCiphertextHidesPlaintextAndNoncesDiffer(t *testing.T) {
	tr := newT(t)
	plain := []byte("supersecretpassword")
	a, _ := tr.TransformToStorage("/k", plain)
	b, _ := tr.TransformToStorage("/k", plain)
	if bytes.Contains(a, plain) || bytes.Contains(a, []byte("supersecret")) {
		t.Fatalf("ciphertext contains plaintext: %q", a)
	}
	if bytes.Equal(a, b) {
		t.Fatal("two encryptions of the same value are identical (nonce reuse)")
	}
}

func TestFromStorageFailures(t *testing.T) {
	tr := newT(t)
	key := "/registry/secrets/default/db"
	enc, err := tr.TransformToStorage(key, []byte("payload"))
	if err != nil {
		t.Fatal(err)
	}
	other := newT(t)
	tamper := func(i int) []byte {
		c := bytes.Clone(enc)
		c[i] ^= 0x01
		return c
	}
	cases := []struct {
		name   string
		tr     *AESGCM
		key    string
		stored []byte
	}{
		{"wrong AAD (value moved to another key)", tr, "/registry/secrets/default/other", enc},
		{"tampered nonce", tr, key, tamper(len(Prefix))},
		{"tampered ciphertext", tr, key, tamper(len(Prefix) + 12)},
		{"tampered tag", tr, key, tamper(len(enc) - 1)},
		{"truncated", tr, key, enc[:len(Prefix)+5]},
		{"wrong key", other, key, enc},
		{"unknown provider", tr, key, []byte("k8s:enc:kms:v2:foo:xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.tr.TransformFromStorage(c.key, c.stored)
			if !errors.Is(err, ErrDecrypt) {
				t.Fatalf("want ErrDecrypt, got %v (value %q)", err, got)
			}
			if !strings.Contains(err.Error(), c.key) {
				t.Errorf("error %q does not name the key", err)
			}
		})
	}
}

func TestPlaintextPassthrough(t *testing.T) {
	tr := newT(t)
	for _, v := range []string{`{"kind":"Secret"}`, "", "k8s:"} {
		got, err := tr.TransformFromStorage("/registry/secrets/a/b", []byte(v))
		if err != nil || string(got) != v {
			t.Fatalf("%q: got %q, %v", v, got, err)
		}
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "enc.key")
	k1, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != KeySize {
		t.Fatalf("key length %d", len(k1))
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	k2, err := LoadOrCreateKey(path)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("reload changed the key: %v", err)
	}
	data, _ := os.ReadFile(path)
	if dec, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data))); !bytes.Equal(dec, k1) {
		t.Fatal("file is not the base64 of the key")
	}

	bad := []struct{ name, content string }{
		{"not base64", "!!!"},
		{"wrong length", base64.StdEncoding.EncodeToString([]byte("short"))},
	}
	for _, b := range bad {
		p := filepath.Join(dir, b.name)
		os.WriteFile(p, []byte(b.content), 0o600)
		if _, err := LoadOrCreateKey(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: want error naming the file, got %v", b.name, err)
		}
	}
}

func TestLoadOrCreateKeyConcurrentFirstStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "enc.key")
	const n = 8
	keys := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			k, err := LoadOrCreateKey(path)
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		})
	}
	wg.Wait()
	for i := 1; i < n; i++ {
		if !bytes.Equal(keys[0], keys[i]) {
			t.Fatal("concurrent first starts produced different keys")
		}
	}
}
