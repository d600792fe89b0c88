package kubelet

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/minik8s/minik8s/kubelet/runtime"
)

// diskRuntime is the fake runtime with its images on a real filesystem
// (for the usage) and a sandbox image.
type diskRuntime struct {
	*runtime.Fake
	mountpoint, sandbox string
}

func (d *diskRuntime) ImageFsInfo(context.Context) ([]*runtimeapi.FilesystemUsage, error) {
	return []*runtimeapi.FilesystemUsage{{FsId: &runtimeapi.FilesystemIdentifier{Mountpoint: d.mountpoint}}}, nil
}

func (d *diskRuntime) SandboxImage(context.Context) (string, error) { return d.sandbox, nil }

func TestImageGCPass(t *testing.T) {
	ctx := context.Background()
	rt := &diskRuntime{Fake: runtime.NewFake(), mountpoint: t.TempDir(), sandbox: "pause:1"}
	for _, img := range []string{"pause:1", "used:1", "old:1", "older:1"} {
		if _, err := rt.PullImage(ctx, img); err != nil {
			t.Fatal(err)
		}
	}
	k := unitKubelet(t, rt, mapConfigs{})
	// Any disk with anything on it is over 1%: everything unused may go.
	k.cfg.ImageGCHighThresholdPercent, k.cfg.ImageGCLowThresholdPercent = 1, 1
	k.cfg.ImageMinimumGCAge = time.Hour
	sbCfg := nil2cfg()
	sb, _ := rt.RunPodSandbox(ctx, sbCfg)
	cfg := ctrCfg("app")
	cfg.Image.Image = "used:1"
	if _, err := rt.CreateContainer(ctx, sb, cfg, sbCfg); err != nil {
		t.Fatal(err)
	}
	gc := &imageGC{images: map[string]*imageRecord{}}
	removed := func() []string {
		var out []string
		for _, c := range rt.Calls() {
			if s, ok := strings.CutPrefix(c, "RemoveImage "); ok {
				out = append(out, s)
			}
		}
		slices.Sort(out)
		return out
	}
	// Too young: nothing goes (and the pass says it could not free enough).
	if _, err := k.imageGCPass(ctx, gc); err == nil {
		t.Error("no error though nothing could be freed")
	}
	if r := removed(); len(r) != 0 {
		t.Fatalf("removed images younger than the minimum age: %v", r)
	}
	k.cfg.ImageMinimumGCAge = time.Nanosecond
	time.Sleep(time.Millisecond)
	freed, _ := k.imageGCPass(ctx, gc)
	if r := removed(); !slices.Equal(r, []string{"fake://old:1", "fake://older:1"}) {
		t.Errorf("removed %v, want the two unused images (not the sandbox image, not the one a container uses)", r)
	}
	if freed != 2*(2<<20) {
		t.Errorf("freed %d bytes", freed)
	}
	// Under the threshold nothing is removed.
	k.cfg.ImageGCHighThresholdPercent = 100
	if _, err := rt.PullImage(ctx, "new:1"); err != nil {
		t.Fatal(err)
	}
	if _, err := k.imageGCPass(ctx, gc); err != nil || len(removed()) != 2 {
		t.Errorf("below the threshold: %v, removed %v", err, removed())
	}
}

func TestImageGCOrder(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	img := func(id string, tags ...string) *runtimeapi.Image { return &runtimeapi.Image{Id: id, RepoTags: tags} }
	images := []*runtimeapi.Image{img("a", "a:1"), img("b", "b:1"), img("c", "c:1"), img("d", "d:1"), img("e", "e:1"), {Id: "p", Pinned: true}}
	records := map[string]*imageRecord{
		"a": {firstSeen: t0, lastUsed: t0.Add(3 * time.Minute)},
		"b": {firstSeen: t0, lastUsed: t0.Add(time.Minute)},
		"c": {firstSeen: t0.Add(time.Minute)}, // never used, seen later
		"d": {firstSeen: t0},                  // never used, seen first
		"e": {firstSeen: t0, lastUsed: t0.Add(time.Minute)},
		"p": {firstSeen: t0},
	}
	got := gcCandidates(images, map[string]bool{"e:1": true}, records, t0.Add(time.Hour), time.Minute)
	if want := []string{"d", "c", "b", "a"}; !slices.Equal(got, want) {
		t.Errorf("order %v, want %v (never used oldest first, then least recently used; not in use, not pinned)", got, want)
	}
}
