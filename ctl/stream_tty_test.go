//go:build linux

package ctl

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/minik8s/minik8s/internal/syncbuf"
)

// openPTY returns a new pseudo-terminal's master and slave (the slave is
// what a shell's stdin would be).
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("ptsname: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); m.Close() })
	return m, s
}

func setSize(t *testing.T, f *os.File, cols, rows uint16) {
	t.Helper()
	if err := unix.IoctlSetWinsize(int(f.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Col: cols, Row: rows}); err != nil {
		t.Fatal(err)
	}
}

func canonical(t *testing.T, f *os.File) bool {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return tio.Lflag&unix.ICANON != 0 && tio.Lflag&unix.ECHO != 0
}

// testExecTerminal: with stdin on a terminal, exec -it asks for a remote
// terminal, puts the local one in raw mode for the session and back after,
// sends its size at the start and again when it changes (SIGWINCH), and
// passes the exit code on.
func testExecTerminal(h *harness) {
	t := h.t
	_, slave := openPTY(t)
	setSize(t, slave, 80, 24)
	if !canonical(t, slave) {
		t.Fatal("a new pty should start in canonical mode with echo")
	}
	var out, errOut syncbuf.Buffer
	done := make(chan int, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() {
		done <- Main(ctx, []string{"--kubeconfig", h.s.Kubeconfig, "-n", h.ns, "exec", "-it", "web-1", "--", "sizes"},
			Streams{In: slave, Out: &out, ErrOut: &errOut})
	}()
	waitFor(t, "first size", func() bool { return strings.Contains(out.String(), "size 80x24\r\n") })
	if canonical(t, slave) {
		t.Errorf("the terminal is not in raw mode during exec -it")
	}
	setSize(t, slave, 120, 40)
	// The pty is not our controlling terminal, so the kernel does not
	// signal us; send what it would.
	if err := syscall.Kill(os.Getpid(), syscall.SIGWINCH); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "new size", func() bool { return strings.Contains(out.String(), "size 120x40\r\n") })
	select {
	case code := <-done:
		if code != 5 || !strings.Contains(errOut.String(), "command terminated with exit code 5") {
			t.Errorf("exec -it: exit %d, stderr %q", code, errOut.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("exec -it did not end")
	}
	if !canonical(t, slave) {
		t.Errorf("the terminal was left in raw mode after exec -it")
	}
	if strings.Contains(errOut.String(), "Unable to use a TTY") {
		t.Errorf("exec -it on a pty refused the terminal: %q", errOut.String())
	}
}
