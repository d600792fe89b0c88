package kubeconfig

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

// DefaultAdminPath is where `make up` and `minik8s server` write the admin
// kubeconfig; it is the last place LoadDefault looks.
const DefaultAdminPath = "/var/lib/minik8s/admin.kubeconfig"

// Config is one resolved context of a kubeconfig: where the API server is,
// how to trust it and who we are.
type Config struct {
	// Server is the API server URL, e.g. https://127.0.0.1:6443.
	Server string
	// CAData is the PEM bundle that signs the server's certificate; empty
	// means the system roots.
	CAData []byte
	// TLSServerName overrides the name checked against the server
	// certificate (tls-server-name).
	TLSServerName string
	// Insecure skips server certificate verification (never with CAData).
	Insecure bool
	// Token is a bearer token.
	Token string
	// ClientCertData and ClientKeyData are a PEM client certificate and key.
	ClientCertData, ClientKeyData []byte
	// Namespace is the context's default namespace; "" means "default".
	Namespace string
	// ContextName is the context Load resolved; Write ignores it.
	ContextName string
	// Path is the file Load read; Write ignores it.
	Path string
}

// NamespaceOrDefault returns Namespace, or "default" when it is empty, as
// kubectl does.
func (c *Config) NamespaceOrDefault() string {
	if c.Namespace == "" {
		return "default"
	}
	return c.Namespace
}

// The on-disk shape. Only the fields minik8s understands are modelled;
// Write edits files generically so other fields survive.
type fileConfig struct {
	APIVersion     string         `json:"apiVersion,omitempty"`
	Kind           string         `json:"kind,omitempty"`
	Clusters       []namedCluster `json:"clusters"`
	Users          []namedUser    `json:"users"`
	Contexts       []namedContext `json:"contexts"`
	CurrentContext string         `json:"current-context"`
}

type namedCluster struct {
	Name    string      `json:"name"`
	Cluster fileCluster `json:"cluster"`
}

type fileCluster struct {
	Server                   string `json:"server"`
	TLSServerName            string `json:"tls-server-name,omitempty"`
	InsecureSkipTLSVerify    bool   `json:"insecure-skip-tls-verify,omitempty"`
	CertificateAuthority     string `json:"certificate-authority,omitempty"`
	CertificateAuthorityData string `json:"certificate-authority-data,omitempty"`
}

type namedUser struct {
	Name string   `json:"name"`
	User fileUser `json:"user"`
}

type fileUser struct {
	Token                 string `json:"token,omitempty"`
	TokenFile             string `json:"tokenFile,omitempty"`
	TokenFileAlt          string `json:"token-file,omitempty"` // accepted on read; kubectl spells it tokenFile
	ClientCertificate     string `json:"client-certificate,omitempty"`
	ClientCertificateData string `json:"client-certificate-data,omitempty"`
	ClientKey             string `json:"client-key,omitempty"`
	ClientKeyData         string `json:"client-key-data,omitempty"`
	Username              string `json:"username,omitempty"`
	Exec                  any    `json:"exec,omitempty"`
	AuthProvider          any    `json:"auth-provider,omitempty"`
}

type namedContext struct {
	Name    string      `json:"name"`
	Context fileContext `json:"context"`
}

type fileContext struct {
	Cluster   string `json:"cluster"`
	User      string `json:"user"`
	Namespace string `json:"namespace,omitempty"`
}

// Load reads path and resolves context (""= current-context). Relative
// certificate-authority, client-certificate, client-key and tokenFile paths
// are resolved against the directory of path, and their contents are
// loaded into the returned Config.
func Load(path, context string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	var f fileConfig
	if err := yaml.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("kubeconfig %s: parse: %w", path, err)
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("kubeconfig %s: %s", path, fmt.Sprintf(format, args...))
	}
	if f.Kind != "" && f.Kind != "Config" {
		return nil, fail("kind is %q, want Config", f.Kind)
	}

	ctxName := context
	ctxField := "context"
	if ctxName == "" {
		ctxName, ctxField = f.CurrentContext, "current-context"
		if ctxName == "" {
			return nil, fail("current-context is not set and no context was requested")
		}
	}
	ci := -1
	for i := range f.Contexts {
		if f.Contexts[i].Name == ctxName {
			ci = i
		}
	}
	if ci < 0 {
		return nil, fail("%s %q not found in contexts", ctxField, ctxName)
	}
	kctx := f.Contexts[ci].Context

	cl := -1
	for i := range f.Clusters {
		if f.Clusters[i].Name == kctx.Cluster {
			cl = i
		}
	}
	if cl < 0 {
		return nil, fail("contexts[%d].context.cluster %q not found in clusters", ci, kctx.Cluster)
	}
	cluster := f.Clusters[cl].Cluster
	cf := fmt.Sprintf("clusters[%d].cluster", cl)

	c := &Config{ContextName: ctxName, Namespace: kctx.Namespace, Path: path,
		Insecure: cluster.InsecureSkipTLSVerify, TLSServerName: cluster.TLSServerName}
	c.Server, err = normalizeServer(cluster.Server)
	if err != nil {
		return nil, fail("%s.server: %v", cf, err)
	}
	dir := filepath.Dir(path)
	if c.CAData, err = dataOrFile(dir, cluster.CertificateAuthorityData, cluster.CertificateAuthority); err != nil {
		return nil, fail("%s.certificate-authority%s", cf, err)
	}
	if len(c.CAData) > 0 && !x509.NewCertPool().AppendCertsFromPEM(c.CAData) {
		return nil, fail("%s.certificate-authority: no PEM certificate found", cf)
	}
	if len(c.CAData) > 0 && c.Insecure {
		return nil, fail("%s: insecure-skip-tls-verify cannot be combined with a certificate authority", cf)
	}

	if kctx.User != "" {
		ui := -1
		for i := range f.Users {
			if f.Users[i].Name == kctx.User {
				ui = i
			}
		}
		if ui < 0 {
			return nil, fail("contexts[%d].context.user %q not found in users", ci, kctx.User)
		}
		u := f.Users[ui].User
		uf := fmt.Sprintf("users[%d].user", ui)
		c.Token = strings.TrimSpace(u.Token)
		tokenFile := u.TokenFile
		if tokenFile == "" {
			tokenFile = u.TokenFileAlt
		}
		if c.Token == "" && tokenFile != "" {
			b, err := os.ReadFile(resolve(dir, tokenFile))
			if err != nil {
				return nil, fail("%s.tokenFile: %v", uf, err)
			}
			if c.Token = strings.TrimSpace(string(b)); c.Token == "" {
				return nil, fail("%s.tokenFile: %s is empty", uf, resolve(dir, tokenFile))
			}
		}
		if c.ClientCertData, err = dataOrFile(dir, u.ClientCertificateData, u.ClientCertificate); err != nil {
			return nil, fail("%s.client-certificate%s", uf, err)
		}
		if c.ClientKeyData, err = dataOrFile(dir, u.ClientKeyData, u.ClientKey); err != nil {
			return nil, fail("%s.client-key%s", uf, err)
		}
		if (len(c.ClientCertData) > 0) != (len(c.ClientKeyData) > 0) {
			return nil, fail("%s: client-certificate and client-key must be given together", uf)
		}
		if len(c.ClientCertData) > 0 {
			if _, err := tls.X509KeyPair(c.ClientCertData, c.ClientKeyData); err != nil {
				return nil, fail("%s.client-certificate/client-key: %v", uf, err)
			}
		}
		if c.Token == "" && len(c.ClientCertData) == 0 {
			switch {
			case u.Exec != nil:
				return nil, fail("%s.exec: credential plugins are not supported by minik8s; use a token or client certificate", uf)
			case u.AuthProvider != nil:
				return nil, fail("%s.auth-provider: auth providers are not supported by minik8s; use a token or client certificate", uf)
			case u.Username != "":
				return nil, fail("%s.username: basic authentication is not supported by minik8s; use a token", uf)
			}
		}
	}
	if _, err := c.TLSConfig(); err != nil {
		return nil, fail("context %q: %v", ctxName, err)
	}
	return c, nil
}

// normalizeServer accepts "host:port" like kubectl (meaning https) and
// rejects anything that is not an http(s) URL with a host.
func normalizeServer(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("is empty")
	}
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%q is not a URL: %w", s, err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return "", fmt.Errorf("%q: scheme must be https or http", s)
	}
	if u.Host == "" {
		return "", fmt.Errorf("%q has no host", s)
	}
	return strings.TrimSuffix(s, "/"), nil
}

// dataOrFile returns the base64 *-data field decoded, or else the content
// of the file field. The error text starts with the field suffix ("-data"
// or "") so the caller can print the exact field name.
func dataOrFile(dir, data, file string) ([]byte, error) {
	if data != "" {
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(data))
		if err != nil {
			return nil, fmt.Errorf("-data: not valid base64: %w", err)
		}
		return b, nil
	}
	if file == "" {
		return nil, nil
	}
	b, err := os.ReadFile(resolve(dir, file))
	if err != nil {
		return nil, fmt.Errorf(": %w", err)
	}
	return b, nil
}

func resolve(dir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// LoadDefault finds the kubeconfig like kubectl and loads context from it.
// Precedence: explicitPath (the --kubeconfig flag) > $KUBECONFIG >
// ~/.kube/config > DefaultAdminPath. Unlike kubectl, $KUBECONFIG is not
// merged: the first existing file of its list is used. An explicit path
// or a $KUBECONFIG naming no existing file is an error rather than a
// fall-through, so a typo never silently talks to another cluster.
func LoadDefault(explicitPath, context string) (*Config, error) {
	path, err := DefaultPath(explicitPath)
	if err != nil {
		return nil, err
	}
	return Load(path, context)
}

// DefaultPath returns the file LoadDefault would read.
func DefaultPath(explicitPath string) (string, error) {
	if explicitPath != "" {
		return explicitPath, nil
	}
	if env := os.Getenv("KUBECONFIG"); env != "" {
		for _, p := range filepath.SplitList(env) {
			if p == "" {
				continue
			}
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
		return "", fmt.Errorf("kubeconfig: no file of $KUBECONFIG=%q exists", env)
	}
	var tried []string
	if home, err := os.UserHomeDir(); err == nil {
		p := filepath.Join(home, ".kube", "config")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		tried = append(tried, p)
	}
	if _, err := os.Stat(DefaultAdminPath); err == nil {
		return DefaultAdminPath, nil
	}
	tried = append(tried, DefaultAdminPath)
	return "", fmt.Errorf("kubeconfig: none found (use --kubeconfig or $KUBECONFIG; looked at %s)", strings.Join(tried, ", "))
}
