// Package proxytest gives tests of the proxy (and e2e tests that need a
// node's network) a private network namespace, so they never touch the
// host's iptables. It only creates and deletes namespaces it names itself.
package proxytest

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
)

var seq atomic.Int64

// Need skips t unless it runs as root with the named programs installed.
func Need(t testing.TB, programs ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	for _, p := range append([]string{"ip"}, programs...) {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("needs %s (apt-get install iptables conntrack iproute2)", p)
		}
	}
}

// Netns creates a fresh network namespace with loopback up and deletes it
// when the test ends. It returns the name (for `ip netns exec` and
// proxy.Config.Netns). It skips unless root with ip and iptables.
func Netns(t testing.TB) string {
	t.Helper()
	Need(t, "iptables", "iptables-restore", "iptables-save")
	name := fmt.Sprintf("mk8s-px-%d-%d", os.Getpid(), seq.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	Exec(t, name, "ip", "link", "set", "lo", "up")
	return name
}

// Exec runs a command inside the namespace and returns its output,
// failing the test on error.
func Exec(t testing.TB, netns string, args ...string) string {
	t.Helper()
	out, err := ExecErr(netns, args...)
	if err != nil {
		t.Fatalf("ip netns exec %s %s: %v: %s", netns, strings.Join(args, " "), err, out)
	}
	return out
}

// ExecErr runs a command inside the namespace and returns its combined
// output and error.
func ExecErr(netns string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", netns}, args...)...).CombinedOutput()
	return string(out), err
}
