package scache

// deadlineHeap is a binary min-heap of cache entries ordered by expiry.
// Each entry records its own index so that removal and re-keying (a
// refreshed binding) cost O(log n). It is the same algorithm as
// container/heap without the interface calls.
type deadlineHeap []*entry

func (h *deadlineHeap) push(e *entry) {
	e.idx = int32(len(*h))
	*h = append(*h, e)
	h.up(int(e.idx))
}

// remove takes e out of the heap.
func (h *deadlineHeap) remove(e *entry) {
	s := *h
	i := int(e.idx)
	n := len(s) - 1
	if i != n {
		s.swap(i, n)
	}
	s[n] = nil
	*h = s[:n]
	if i != n {
		if !h.down(i) {
			h.up(i)
		}
	}
	e.idx = -1
}

// fix restores the heap order after e.expires changed.
func (h *deadlineHeap) fix(e *entry) {
	i := int(e.idx)
	if !h.down(i) {
		h.up(i)
	}
}

func (h deadlineHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx = int32(i)
	h[j].idx = int32(j)
}

func (h deadlineHeap) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if h[i].expires <= h[j].expires {
			break
		}
		h.swap(i, j)
		j = i
	}
}

// down sifts element i0 down and reports whether it moved.
func (h deadlineHeap) down(i0 int) bool {
	n := len(h)
	i := i0
	for {
		l := 2*i + 1
		if l >= n || l < 0 {
			break
		}
		j := l
		if r := l + 1; r < n && h[r].expires < h[l].expires {
			j = r
		}
		if h[i].expires <= h[j].expires {
			break
		}
		h.swap(i, j)
		i = j
	}
	return i > i0
}
