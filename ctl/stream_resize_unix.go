//go:build unix

package ctl

import (
	"os"
	"os/signal"
	"syscall"
)

// watchResize calls send whenever the terminal's size changes (SIGWINCH),
// until done.
func watchResize(done <-chan struct{}, send func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGWINCH)
	defer signal.Stop(ch)
	for {
		select {
		case <-ch:
			send()
		case <-done:
			return
		}
	}
}
