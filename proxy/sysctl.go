package proxy

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// sysctlSetting is a kernel setting the proxy needs.
type sysctlSetting struct {
	name     string // dotted, as sysctl(8) spells it
	value    string
	why      string
	optional bool // the file may be missing (module not loaded)
}

var sysctlSettings = []sysctlSetting{
	{name: "net.ipv4.ip_forward", value: "1", why: "forward service traffic to pods on other hosts and namespaces"},
	{name: "net.ipv4.conf.all.route_localnet", value: "1", why: "serve node ports on 127.0.0.1 (DNAT of loopback traffic)"},
	{name: "net.bridge.bridge-nf-call-iptables", value: "1", why: "let service rules see traffic between pods on one bridge", optional: true},
}

// sysctlRoot is /proc/sys; tests may point it elsewhere.
var sysctlRoot = "/proc/sys"

// ensureSysctls sets the kernel settings the proxy needs and logs each one
// it changed. Settings under net/ belong to the network namespace of the
// calling thread.
func ensureSysctls(log *slog.Logger) error {
	var errs []error
	for _, s := range sysctlSettings {
		path := filepath.Join(sysctlRoot, strings.ReplaceAll(s.name, ".", "/"))
		old, err := os.ReadFile(path)
		if err != nil {
			if s.optional && errors.Is(err, fs.ErrNotExist) {
				log.Info("sysctl not present; leaving it", "sysctl", s.name, "why", s.why)
				continue
			}
			errs = append(errs, fmt.Errorf("read sysctl %s: %w", s.name, err))
			continue
		}
		if strings.TrimSpace(string(old)) == s.value {
			log.Debug("sysctl already set", "sysctl", s.name, "value", s.value)
			continue
		}
		if err := os.WriteFile(path, []byte(s.value+"\n"), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("set sysctl %s=%s (%s): %w", s.name, s.value, s.why, err))
			continue
		}
		log.Info("set sysctl", "sysctl", s.name, "from", strings.TrimSpace(string(old)), "to", s.value, "why", s.why)
	}
	return errors.Join(errs...)
}
