//go:build !unix

package ctl

// watchResize: without SIGWINCH the remote terminal keeps the size it had
// at the start.
func watchResize(done <-chan struct{}, _ func()) { <-done }
