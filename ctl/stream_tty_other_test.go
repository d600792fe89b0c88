//go:build !linux

package ctl

func testExecTerminal(h *harness) { h.t.Skip("the pseudo-terminal test is Linux-only") }
