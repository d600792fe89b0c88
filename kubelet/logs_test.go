package kubelet

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestReadLogs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	data := "2026-01-01T00:00:01.000000000Z stdout F one\n" +
		"2026-01-01T00:00:02.000000000Z stderr P tw\n" +
		"2026-01-01T00:00:02.100000000Z stderr F o\n" +
		"2026-01-01T00:00:03.000000000Z stdout F three\n"
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	read := func(o LogOptions) string {
		var b bytes.Buffer
		if err := ReadLogs(context.Background(), path, o, &b, func() bool { return false }); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	if got := read(LogOptions{TailLines: -1}); got != "one\ntwo\nthree\n" {
		t.Errorf("all: %q", got)
	}
	if got := read(LogOptions{TailLines: 1}); got != "three\n" {
		t.Errorf("tail 1: %q", got)
	}
	if got := read(LogOptions{TailLines: 0}); got != "" {
		t.Errorf("tail 0: %q", got)
	}
	if got := read(LogOptions{TailLines: 1, Timestamps: true}); got != "2026-01-01T00:00:03.000000000Z three\n" {
		t.Errorf("timestamps: %q", got)
	}
	if got := read(LogOptions{TailLines: -1, LimitBytes: 6}); got != "one\ntw" {
		t.Errorf("limit: %q", got)
	}
	// Following a finished container returns once the file is drained.
	if got := read(LogOptions{TailLines: -1, Follow: true}); got != "one\ntwo\nthree\n" {
		t.Errorf("follow: %q", got)
	}
}
