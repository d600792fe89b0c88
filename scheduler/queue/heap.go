package queue

// podHeap is a binary heap of pods that knows each pod's position, so a
// pod can be removed or re-sorted in O(log n).
type podHeap struct {
	items []*QueuedPodInfo
	less  func(a, b *QueuedPodInfo) bool
}

func (h *podHeap) len() int { return len(h.items) }

func (h *podHeap) peek() *QueuedPodInfo { return h.items[0] }

func (h *podHeap) push(p *QueuedPodInfo) {
	p.index = len(h.items)
	h.items = append(h.items, p)
	h.up(p.index)
}

func (h *podHeap) pop() *QueuedPodInfo {
	p := h.items[0]
	h.removeAt(0)
	return p
}

func (h *podHeap) remove(p *QueuedPodInfo) {
	if p.index >= 0 && p.index < len(h.items) && h.items[p.index] == p {
		h.removeAt(p.index)
	}
}

func (h *podHeap) fix(p *QueuedPodInfo) {
	if p.index >= 0 && p.index < len(h.items) && h.items[p.index] == p {
		if !h.down(p.index) {
			h.up(p.index)
		}
	}
}

func (h *podHeap) removeAt(i int) {
	last := len(h.items) - 1
	removed := h.items[i]
	if i != last {
		h.swap(i, last)
	}
	h.items[last] = nil
	h.items = h.items[:last]
	if i != last {
		if !h.down(i) {
			h.up(i)
		}
	}
	removed.index = -1
}

func (h *podHeap) swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.items[i].index = i
	h.items[j].index = j
}

func (h *podHeap) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !h.less(h.items[i], h.items[parent]) {
			return
		}
		h.swap(i, parent)
		i = parent
	}
}

// down sifts i down; it reports whether i moved.
func (h *podHeap) down(i int) bool {
	start := i
	n := len(h.items)
	for {
		left := 2*i + 1
		if left >= n {
			break
		}
		smallest := left
		if right := left + 1; right < n && h.less(h.items[right], h.items[left]) {
			smallest = right
		}
		if !h.less(h.items[smallest], h.items[i]) {
			break
		}
		h.swap(i, smallest)
		i = smallest
	}
	return i > start
}
