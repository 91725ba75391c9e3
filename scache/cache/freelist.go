package cache

// Recycling lists of entries, list heads and ttl classes. They earn their
// place by the allocation-free request path (TestServer_cycleAllocs): in
// smtp(8)'s cycle on labels the cache knows, find_dest takes the only
// session of an endpoint (its entry and its list head go) and save_endp
// brings it back. Without the lists that cycle allocates 2 objects, 104 B
// (BenchmarkCache_cycle/hot10: 104 B/op, 2 allocs/op); with them, none.

// maxFree bounds each recycling list: enough for bursts, small enough
// (about 120 KB in all) not to matter after the cache shrinks.
const maxFree = 1024

// newEntry returns a zeroed entry, recycled if possible. c.mu must be held.
func (c *Cache) newEntry() *entry {
	e := c.freeEntries
	if e == nil {
		return &entry{}
	}
	c.freeEntries, e.next = e.next, nil
	c.nFreeE--
	return e
}

// freeEntry recycles an entry that is no longer linked anywhere. Clearing
// it drops its strings. c.mu must be held.
func (c *Cache) freeEntry(e *entry) {
	*e = entry{}
	if c.nFreeE < maxFree {
		e.next = c.freeEntries
		c.freeEntries = e
		c.nFreeE++
	}
}

// newHead returns an empty list head, recycled if possible. c.mu must be
// held.
func (c *Cache) newHead(label string) *head {
	if h := popFree(&c.freeHeads); h != nil {
		h.label = label
		return h
	}
	return &head{label: label}
}

// popFree takes the last struct off a recycling list, or returns nil when
// the list is empty.
func popFree[T any](free *[]*T) *T {
	n := len(*free)
	if n == 0 {
		return nil
	}
	x := (*free)[n-1]
	(*free)[n-1] = nil
	*free = (*free)[:n-1]
	return x
}

// freeHead recycles an empty head that was removed from its table. c.mu must
// be held.
func (c *Cache) freeHead(h *head) {
	*h = head{}
	if len(c.freeHeads) < maxFree {
		c.freeHeads = append(c.freeHeads, h)
	}
}
