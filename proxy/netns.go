package proxy

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// NetnsDir is where `ip netns add NAME` bind-mounts named namespaces.
const NetnsDir = "/run/netns"

// enterNetns moves the calling goroutine's OS thread into the named network
// namespace and locks the goroutine to it for good: the thread is never
// unlocked, so when the goroutine returns the Go runtime discards it
// instead of handing a thread in a foreign namespace to other goroutines.
// Programs started from this goroutine (iptables-restore, conntrack)
// inherit the namespace, and so do files under /proc/sys/net it opens.
// An empty name does nothing.
func enterNetns(name string) error {
	if name == "" {
		return nil
	}
	runtime.LockOSThread()
	f, err := os.Open(filepath.Join(NetnsDir, name))
	if err != nil {
		return fmt.Errorf("open network namespace %s: %w", name, err)
	}
	defer f.Close()
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("enter network namespace %s: %w", name, err)
	}
	return nil
}

// InNetns runs f on a fresh OS thread inside the named network namespace
// (in the current one for ""), and waits for it.
func InNetns(name string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		if err := enterNetns(name); err != nil {
			errc <- err
			return
		}
		errc <- f()
	}()
	return <-errc
}
