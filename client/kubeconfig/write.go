package kubeconfig

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"
)

// Write stores c in path as a cluster, a user and a context all called name
// and makes that context current. If path already holds a kubeconfig, its
// other clusters, users and contexts (and any fields minik8s does not
// model) are kept, so writing to ~/.kube/config is safe. The file is
// written atomically with mode 0600 (it holds credentials); missing
// directories are created with mode 0700.
func Write(path, name string, c Config) error {
	if name == "" {
		return fmt.Errorf("kubeconfig %s: empty context name", path)
	}
	server, err := normalizeServer(c.Server)
	if err != nil {
		return fmt.Errorf("kubeconfig %s: server: %w", path, err)
	}
	if c.Insecure && len(c.CAData) > 0 {
		return fmt.Errorf("kubeconfig %s: insecure cannot be combined with CAData", path)
	}

	doc := map[string]any{}
	existing, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := yaml.Unmarshal(existing, &doc); err != nil {
			return fmt.Errorf("kubeconfig %s: existing file is not valid YAML, refusing to overwrite: %w", path, err)
		}
		if doc == nil {
			doc = map[string]any{}
		}
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("kubeconfig %s: %w", path, err)
	}

	cluster := map[string]any{"server": server}
	if len(c.CAData) > 0 {
		cluster["certificate-authority-data"] = base64.StdEncoding.EncodeToString(c.CAData)
	}
	if c.Insecure {
		cluster["insecure-skip-tls-verify"] = true
	}
	if c.TLSServerName != "" {
		cluster["tls-server-name"] = c.TLSServerName
	}
	user := map[string]any{}
	if c.Token != "" {
		user["token"] = c.Token
	}
	if len(c.ClientCertData) > 0 {
		user["client-certificate-data"] = base64.StdEncoding.EncodeToString(c.ClientCertData)
	}
	if len(c.ClientKeyData) > 0 {
		user["client-key-data"] = base64.StdEncoding.EncodeToString(c.ClientKeyData)
	}
	kctx := map[string]any{"cluster": name, "user": name}
	if c.Namespace != "" {
		kctx["namespace"] = c.Namespace
	}

	doc["apiVersion"] = "v1"
	doc["kind"] = "Config"
	if _, ok := doc["preferences"]; !ok {
		doc["preferences"] = map[string]any{}
	}
	for _, s := range []struct {
		list, field string
		val         map[string]any
	}{
		{"clusters", "cluster", cluster},
		{"users", "user", user},
		{"contexts", "context", kctx},
	} {
		if err := upsertNamed(doc, s.list, s.field, name, s.val); err != nil {
			return fmt.Errorf("kubeconfig %s: %w", path, err)
		}
	}
	doc["current-context"] = name

	out, err := yaml.Marshal(doc)
	if err != nil {
		return fmt.Errorf("kubeconfig %s: encode: %w", path, err)
	}
	return writeAtomic(path, out)
}

// upsertNamed replaces the entry called name in doc[list] (its inner
// object, wholesale, so stale credentials do not linger) or appends one.
func upsertNamed(doc map[string]any, list, field, name string, val map[string]any) error {
	var items []any
	if raw, ok := doc[list]; ok && raw != nil {
		items, ok = raw.([]any)
		if !ok {
			return fmt.Errorf("existing %s is not a list", list)
		}
	}
	for i, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			return fmt.Errorf("existing %s[%d] is not an object", list, i)
		}
		if m["name"] == name {
			m[field] = val
			doc[list] = items
			return nil
		}
	}
	doc[list] = append(items, map[string]any{"name": name, field: val})
	return nil
}

func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("kubeconfig %s: create dir: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.Write(data)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("kubeconfig %s: write: %w", path, err)
	}
	return nil
}
