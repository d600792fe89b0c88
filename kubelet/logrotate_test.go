package kubelet

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minik8s/minik8s/internal/syncbuf"
	"github.com/minik8s/minik8s/kubelet/runtime"
)

// runningContainer starts a container on the fake runtime whose log lives
// under dir, and returns its id and log path.
func runningContainer(t *testing.T, fake *runtime.Fake, dir string) (string, string) {
	t.Helper()
	ctx := context.Background()
	sbCfg := nil2cfg()
	sbCfg.LogDirectory = dir
	sb, err := fake.RunPodSandbox(ctx, sbCfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg := ctrCfg("app")
	cfg.LogPath = "app/0.log"
	cfg.Labels[runtime.LabelNode] = "n1" // unitKubelet's node
	id, err := fake.CreateContainer(ctx, sb, cfg, sbCfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := fake.StartContainer(ctx, id); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "app", "0.log")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	return id, path
}

func TestRotateContainerLog(t *testing.T) {
	fake := runtime.NewFake()
	k := unitKubelet(t, fake, mapConfigs{})
	k.cfg.ContainerLogMaxSize, k.cfg.ContainerLogMaxFiles = 1024, 3
	id, path := runningContainer(t, fake, t.TempDir())
	ctx := context.Background()
	write := func(n int, tag string) {
		line := fmt.Sprintf("2026-01-01T00:00:00.000000000Z stdout F %s %s\n", tag, strings.Repeat("x", 50))
		if err := os.WriteFile(path, bytes.Repeat([]byte(line), n), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	// Under the limit: left alone.
	write(5, "small")
	if err := k.rotateContainerLog(ctx, id, path); err != nil {
		t.Fatal(err)
	}
	if old, _ := rotatedLogs(path); len(old) != 0 {
		t.Fatalf("a small log was rotated: %v", old)
	}
	// Over it, four times: the runtime is asked to reopen each time, and
	// only MaxFiles files remain (current + 2 rotated), the newest ones.
	for i := range 4 {
		write(30, fmt.Sprint("round", i))
		if err := k.rotateContainerLog(ctx, id, path); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(path); err != nil || fi.Size() != 0 {
			t.Fatalf("round %d: current log after rotation: %v %v", i, fi, err)
		}
		time.Sleep(time.Millisecond) // distinct rotated names
	}
	if n := count(fake.Calls(), "ReopenContainerLog"); n != 4 {
		t.Errorf("%d reopens, want 4", n)
	}
	old, _ := rotatedLogs(path)
	if len(old) != 2 {
		t.Fatalf("rotated files %v, want 2", old)
	}
	for i, p := range old {
		data, _ := os.ReadFile(p)
		if want := fmt.Sprint("round", i+2); !strings.Contains(string(data), want) {
			t.Errorf("%s does not hold %s", p, want)
		}
	}

	// A runtime that cannot reopen keeps writing to the old file, so it
	// keeps its name.
	if err := fake.StopContainer(ctx, id, 0); err != nil {
		t.Fatal(err)
	}
	write(30, "stopped")
	if err := k.rotateContainerLog(ctx, id, path); err == nil {
		t.Error("rotation succeeded though the runtime could not reopen the log")
	}
	if data, _ := os.ReadFile(path); !strings.Contains(string(data), "stopped") {
		t.Error("the log was not renamed back after the failed reopen")
	}
	if now, _ := rotatedLogs(path); len(now) > 2 {
		t.Errorf("rotated files %v", now)
	}

	// A removed container's logs go with it.
	if err := removeContainerLogs(path); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 0 {
		t.Errorf("left behind %v", entries)
	}
}

// rotateLogs finds the node's running containers by itself.
func TestRotateLogsPass(t *testing.T) {
	fake := runtime.NewFake()
	k := unitKubelet(t, fake, mapConfigs{})
	k.cfg.ContainerLogMaxSize, k.cfg.ContainerLogMaxFiles = 100, 5
	_, path := runningContainer(t, fake, t.TempDir())
	if err := os.WriteFile(path, bytes.Repeat([]byte("2026-01-01T00:00:00Z stdout F hello\n"), 10), 0o640); err != nil {
		t.Fatal(err)
	}
	k.rotateLogs(context.Background())
	if old, _ := rotatedLogs(path); len(old) != 1 {
		t.Errorf("rotated files %v, want 1", old)
	}
}

// Following a log goes on in the new file when the log is rotated.
func TestReadLogsFollowsRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	line := func(s string) string { return "2026-01-01T00:00:00.000000000Z stdout F " + s + "\n" }
	if err := os.WriteFile(path, []byte(line("one")), 0o640); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	running := true
	var out syncbuf.Buffer
	done := make(chan error, 1)
	go func() {
		done <- ReadLogs(context.Background(), path, LogOptions{TailLines: -1, Follow: true}, &out, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return running
		})
	}()
	waitFor(t, "the first line", func() (bool, error) { return out.String() == "one\n", nil })
	// The runtime writes one more line to the old file after the rename
	// (before it reopens), then goes on in the new file.
	if err := os.Rename(path, path+".20260101-000000.000000000"); err != nil {
		t.Fatal(err)
	}
	appendTo(t, path+".20260101-000000.000000000", line("two"))
	appendTo(t, path, line("three"))
	waitFor(t, "the lines around the rotation", func() (bool, error) { return out.String() == "one\ntwo\nthree\n", nil })
	appendTo(t, path, line("four"))
	mu.Lock()
	running = false
	mu.Unlock()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("follow did not end when the container stopped")
	}
	if got := out.String(); got != "one\ntwo\nthree\nfour\n" {
		t.Errorf("followed %q", got)
	}
}

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}
