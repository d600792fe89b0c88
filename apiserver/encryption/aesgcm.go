package encryption

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/minik8s/minik8s/apiserver/storage"
)

// Prefix marks a stored value as encrypted by this package with key "key1".
// The layout mirrors the Kubernetes envelope "k8s:enc:<provider>:v1:<keyname>:"
// so an operator inspecting etcd recognises what they are looking at.
const Prefix = "k8s:enc:aesgcm:v1:key1:"

// KeySize is the AES key length in bytes (AES-256).
const KeySize = 32

// ErrDecrypt is returned (wrapped) when a value carries the encryption
// prefix but cannot be authenticated: wrong key, wrong etcd key (AAD), or
// tampering.
var ErrDecrypt = errors.New("encryption: value failed authentication")

// AESGCM is a storage.Transformer using AES-GCM with a random 12-byte nonce
// per value. It is safe for concurrent use.
type AESGCM struct {
	aead cipher.AEAD
}

var _ storage.Transformer = (*AESGCM)(nil)

// NewAESGCM builds a transformer from a 16, 24 or 32 byte key.
func NewAESGCM(key []byte) (*AESGCM, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("encryption: bad AES key (%d bytes): %w", len(key), err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("encryption: init GCM: %w", err)
	}
	return &AESGCM{aead: aead}, nil
}

// TransformToStorage encrypts plain, binding it to the etcd key.
func (t *AESGCM) TransformToStorage(key string, plain []byte) ([]byte, error) {
	ns := t.aead.NonceSize()
	out := make([]byte, len(Prefix)+ns, len(Prefix)+ns+len(plain)+t.aead.Overhead())
	copy(out, Prefix)
	nonce := out[len(Prefix):]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("encryption: nonce for %s: %w", key, err)
	}
	return t.aead.Seal(out, nonce, plain, []byte(key)), nil
}

// TransformFromStorage decrypts a value written by TransformToStorage.
// Values without Prefix are returned unchanged: they were written before
// encryption was enabled, and the next update will encrypt them.
func (t *AESGCM) TransformFromStorage(key string, stored []byte) ([]byte, error) {
	if !bytes.HasPrefix(stored, []byte(Prefix)) {
		if bytes.HasPrefix(stored, []byte("k8s:enc:")) {
			// Some other provider or key name: reading it as plaintext
			// would hand ciphertext to the JSON decoder, so refuse clearly.
			return nil, fmt.Errorf("encryption: %s: value uses an unknown provider or key (%q): %w",
				key, envelopeHead(stored), ErrDecrypt)
		}
		return stored, nil
	}
	body := stored[len(Prefix):]
	ns := t.aead.NonceSize()
	if len(body) < ns+t.aead.Overhead() {
		return nil, fmt.Errorf("encryption: %s: value too short (%d bytes): %w", key, len(stored), ErrDecrypt)
	}
	plain, err := t.aead.Open(nil, body[:ns], body[ns:], []byte(key))
	if err != nil {
		return nil, fmt.Errorf("encryption: %s: %w", key, ErrDecrypt)
	}
	return plain, nil
}

// envelopeHead returns the "k8s:enc:provider:v1:name:" part for messages.
func envelopeHead(b []byte) string {
	s := string(b[:min(len(b), 64)])
	parts := strings.SplitN(s, ":", 6)
	if len(parts) < 6 {
		return s
	}
	return strings.Join(parts[:5], ":") + ":"
}

// LoadOrCreateKey returns the AES key stored base64-encoded at path. On
// first start (file absent) it creates a new random 32-byte key, writing the
// file with mode 0600 (and its directory with 0700). An existing file that
// does not decode to a valid AES key length is an error: replacing it would
// make every encrypted value unreadable.
func LoadOrCreateKey(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		key, derr := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
		if derr != nil {
			return nil, fmt.Errorf("encryption: key file %s: not base64: %w", path, derr)
		}
		if n := len(key); n != 16 && n != 24 && n != 32 {
			return nil, fmt.Errorf("encryption: key file %s: key is %d bytes, want 16, 24 or 32", path, n)
		}
		return key, nil
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("encryption: read key file %s: %w", path, err)
	}

	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("encryption: generate key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("encryption: create dir for %s: %w", path, err)
	}
	won, err := createExclusive(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"))
	if err != nil {
		return nil, fmt.Errorf("encryption: create key file %s: %w", path, err)
	}
	if !won {
		// Another process created the key first; use theirs so both
		// encrypt with the same key.
		return LoadOrCreateKey(path)
	}
	return key, nil
}

// createExclusive writes data to path with mode 0600 only if path does not
// exist. The content is written to a temporary file first and hard-linked
// into place, so a concurrent reader never observes a partially written
// file. It reports false when path already existed.
func createExclusive(path string, data []byte) (bool, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return false, err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Close(); err != nil {
		return false, err
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}
