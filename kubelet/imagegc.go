package kubelet

import (
	"context"
	"fmt"
	"sort"
	"syscall"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Image garbage collection, as Kubernetes' image GC manager does it: when
// the filesystem holding the runtime's images is more than
// ImageGCHighThresholdPercent full, images no container uses are removed,
// least recently used first, until it is ImageGCLowThresholdPercent full.
// An image is "used" while any container of the runtime (not only this
// node's: hollow nodes and tests share one) refers to it; the sandbox
// (pause) image is never removed, since the runtime needs it for every new
// pod and there may be no registry to pull it from again. Images first
// seen less than ImageMinimumGCAge ago are kept, so a just-pulled image
// is not removed before its container is created.

// imageRecord is what the kubelet remembers about an image.
type imageRecord struct {
	firstSeen time.Time
	lastUsed  time.Time // zero: never seen in use
	size      uint64
	tags      []string
}

// imageGC holds the records between passes; only imageGCLoop touches it.
type imageGC struct {
	images map[string]*imageRecord // by image id
}

func (k *Kubelet) imageGCLoop(ctx context.Context) {
	if k.cfg.Hollow || k.cfg.ImageGCHighThresholdPercent >= 100 {
		return
	}
	gc := &imageGC{images: map[string]*imageRecord{}}
	every(ctx, k.cfg.ImageGCInterval, 5*time.Minute, true, func(gctx context.Context) {
		if freed, err := k.imageGCPass(gctx, gc); err != nil {
			if ctx.Err() == nil {
				k.log.Warn("image garbage collection failed", "err", err)
			}
		} else if freed > 0 {
			k.log.Info("image garbage collection freed space", "bytes", freed)
		}
	})
}

// imageGCPass updates the records and, when the image filesystem is over
// the high threshold, removes images until it is under the low one. It
// returns the bytes freed (per the images' sizes).
func (k *Kubelet) imageGCPass(ctx context.Context, gc *imageGC) (uint64, error) {
	now := k.clock.Now()
	images, err := k.rt.ListImages(ctx)
	if err != nil {
		return 0, err
	}
	containers, err := k.rt.ListContainers(ctx, nil)
	if err != nil {
		return 0, err
	}
	inUse := map[string]bool{}
	for _, c := range containers {
		inUse[c.ImageRef] = true
		inUse[c.GetImage().GetImage()] = true
	}
	if sb, err := k.rt.SandboxImage(ctx); err != nil {
		return 0, err
	} else if sb != "" {
		inUse[sb] = true
	}
	seen := map[string]bool{}
	for _, img := range images {
		seen[img.Id] = true
		r := gc.images[img.Id]
		if r == nil {
			r = &imageRecord{firstSeen: now}
			gc.images[img.Id] = r
		}
		r.size, r.tags = img.Size, img.RepoTags
		if imageUsed(img, inUse) {
			r.lastUsed = now
		}
	}
	for id := range gc.images {
		if !seen[id] {
			delete(gc.images, id)
		}
	}

	fss, err := k.rt.ImageFsInfo(ctx)
	if err != nil {
		return 0, err
	}
	var toFree uint64
	for _, fs := range fss {
		var st syscall.Statfs_t
		mp := fs.GetFsId().GetMountpoint()
		if err := syscall.Statfs(mp, &st); err != nil {
			return 0, fmt.Errorf("image filesystem %s: %w", mp, err)
		}
		capacity := st.Blocks * uint64(st.Bsize)
		used := capacity - st.Bavail*uint64(st.Bsize)
		if capacity == 0 || used*100 < capacity*uint64(k.cfg.ImageGCHighThresholdPercent) {
			continue
		}
		want := used - min(used, capacity*uint64(k.cfg.ImageGCLowThresholdPercent)/100)
		k.log.Info("image filesystem over the high threshold", "mountpoint", mp, "usedPercent", used*100/capacity,
			"highThresholdPercent", k.cfg.ImageGCHighThresholdPercent, "toFree", want)
		toFree = max(toFree, want)
	}
	if toFree == 0 {
		return 0, nil
	}
	var freed uint64
	for _, id := range gcCandidates(images, inUse, gc.images, now, k.cfg.ImageMinimumGCAge) {
		if freed >= toFree {
			break
		}
		if err := k.rt.RemoveImage(ctx, id); err != nil {
			k.log.Warn("removing an unused image failed", "image", id, "tags", gc.images[id].tags, "err", err)
			continue
		}
		k.log.Info("removed unused image", "image", id, "tags", gc.images[id].tags, "size", gc.images[id].size)
		freed += gc.images[id].size
		delete(gc.images, id)
	}
	if freed < toFree {
		return freed, fmt.Errorf("wanted to free %d bytes of images but only %d could be freed", toFree, freed)
	}
	return freed, nil
}

// imageUsed reports whether any in-use reference names img (by id, tag or
// digest).
func imageUsed(img *runtimeapi.Image, inUse map[string]bool) bool {
	if inUse[img.Id] {
		return true
	}
	for _, ref := range append(append([]string{}, img.RepoTags...), img.RepoDigests...) {
		if inUse[ref] {
			return true
		}
	}
	return false
}

// gcCandidates are the ids of the images that may be removed, in the order
// to remove them: least recently used first (never used before used), then
// the oldest known.
func gcCandidates(images []*runtimeapi.Image, inUse map[string]bool, records map[string]*imageRecord, now time.Time, minAge time.Duration) []string {
	var ids []string
	for _, img := range images {
		r := records[img.Id]
		if r == nil || img.Pinned || imageUsed(img, inUse) || now.Sub(r.firstSeen) < minAge {
			continue
		}
		ids = append(ids, img.Id)
	}
	sort.SliceStable(ids, func(i, j int) bool {
		a, b := records[ids[i]], records[ids[j]]
		if !a.lastUsed.Equal(b.lastUsed) {
			return a.lastUsed.Before(b.lastUsed)
		}
		return a.firstSeen.Before(b.firstSeen)
	})
	return ids
}
