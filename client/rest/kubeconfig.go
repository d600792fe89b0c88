package rest

import (
	"errors"

	"github.com/minik8s/minik8s/client/kubeconfig"
)

// ConfigFromKubeconfig turns a loaded kubeconfig context into a Config.
// UserAgent, Timeout, QPS and retries are left for the caller to set.
func ConfigFromKubeconfig(kc *kubeconfig.Config) (*Config, error) {
	if kc == nil {
		return nil, errors.New("rest: nil kubeconfig")
	}
	if kc.Insecure && len(kc.CAData) > 0 {
		// Same rule as kubectl: an explicit CA and "skip verification"
		// contradict each other, so refuse rather than guess.
		return nil, errors.New("rest: kubeconfig sets both insecure-skip-tls-verify and a certificate authority")
	}
	return &Config{
		Host:          kc.Server,
		BearerToken:   kc.Token,
		CAData:        kc.CAData,
		CertData:      kc.ClientCertData,
		KeyData:       kc.ClientKeyData,
		TLSServerName: kc.TLSServerName,
		Insecure:      kc.Insecure,
	}, nil
}
